//! A plain HTTP client and a signed-in session against a running fake.

use std::collections::BTreeSet;

use fake_azure::{FakeAzure, Tenant};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// The keys of a JSON object (empty for anything else).
pub fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().map(|object| object.keys().cloned().collect()).unwrap_or_default()
}

pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub fn new() -> Self {
        Http { client: Client::builder(TokioExecutor::new()).build_http() }
    }

    pub async fn send(&self, method: &str, url: &str, headers: &[(&str, &str)], body: Option<(&str, String)>) -> Reply {
        let mut request = hyper::Request::builder().method(method).uri(url.replace(' ', "%20"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some((content_type, text)) => {
                request = request.header("content-type", content_type);
                Full::new(Bytes::from(text))
            }
            None => Full::new(Bytes::new()),
        };
        let response = self.client.request(request.body(body).expect("valid request")).await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body read").to_bytes();
        Reply { status, headers, text: String::from_utf8_lossy(&bytes).into_owned() }
    }

    pub async fn request_token(
        &self,
        azure: &FakeAzure,
        tenant: &str,
        client_id: &str,
        secret: &str,
        scope: &str,
    ) -> Reply {
        let form = form_body(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", scope),
        ]);
        let url = format!("{}/{tenant}/oauth2/v2.0/token", azure.login_url());
        self.send("POST", &url, &[], Some(("application/x-www-form-urlencoded", form))).await
    }
}

pub fn form_body(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| format!("{key}={}", value.replace('/', "%2F").replace(':', "%3A")))
        .collect::<Vec<_>>()
        .join("&")
}

/// A fake with tokens for both APIs.
pub struct Session {
    pub azure: FakeAzure,
    pub http: Http,
    pub graph_token: String,
    pub arm_token: String,
}

impl Session {
    pub async fn sample() -> Session {
        Session::start(Tenant::sample()).await
    }

    pub async fn start(tenant: Tenant) -> Session {
        let (tenant_id, client_id, secret) =
            (tenant.tenant_id.clone(), tenant.client_id.clone(), tenant.client_secret.clone());
        let azure = FakeAzure::start(tenant).await.expect("fake starts");
        let http = Http::new();
        let token = |reply: Reply| reply.json()["access_token"].as_str().expect("token").to_owned();
        let graph_token = token(http.request_token(&azure, &tenant_id, &client_id, &secret, GRAPH_SCOPE).await);
        let arm_token = token(http.request_token(&azure, &tenant_id, &client_id, &secret, ARM_SCOPE).await);
        Session { azure, http, graph_token, arm_token }
    }

    pub async fn graph(&self, path_and_query: &str) -> Reply {
        self.graph_with("GET", path_and_query, &[], None).await
    }

    /// A Graph GET with `ConsistencyLevel: eventual`.
    pub async fn graph_eventual(&self, path_and_query: &str) -> Reply {
        self.graph_with("GET", path_and_query, &[("ConsistencyLevel", "eventual")], None).await
    }

    pub async fn graph_with(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let url = if path_and_query.starts_with("http") {
            path_and_query.to_owned()
        } else {
            format!("{}{path_and_query}", self.azure.graph_url())
        };
        self.authorized(method, &url, &self.graph_token, headers, body).await
    }

    pub async fn arm(&self, path_and_query: &str) -> Reply {
        self.arm_with("GET", path_and_query, None).await
    }

    pub async fn arm_with(&self, method: &str, path_and_query: &str, body: Option<Value>) -> Reply {
        let url = if path_and_query.starts_with("http") {
            path_and_query.to_owned()
        } else {
            format!("{}{path_and_query}", self.azure.arm_url())
        };
        self.authorized(method, &url, &self.arm_token, &[], body).await
    }

    async fn authorized(
        &self,
        method: &str,
        url: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let authorization = format!("Bearer {token}");
        let mut all = vec![("authorization", authorization.as_str())];
        all.extend_from_slice(headers);
        let body = body.map(|body| ("application/json", body.to_string()));
        self.http.send(method, url, &all, body).await
    }

    /// Follows `@odata.nextLink`s (or ARM `nextLink`s) verbatim; returns every page.
    pub async fn all_pages(&self, first: Reply, link_key: &str, headers: &[(&str, &str)]) -> Vec<Value> {
        let mut pages = Vec::new();
        let mut reply = first;
        loop {
            assert_eq!(reply.status, 200, "{}", reply.text);
            let page = reply.json();
            let next = page[link_key].as_str().map(str::to_owned);
            pages.push(page);
            let Some(next) = next else { return pages };
            reply = if link_key == "nextLink" {
                self.arm_with("GET", &next, None).await
            } else {
                self.graph_with("GET", &next, headers, None).await
            };
        }
    }

    pub fn id_of_user(&self, display_name: &str) -> String {
        let tenant = self.azure.tenant();
        tenant.users.iter().find(|user| user.display_name == display_name).expect("user").id.clone()
    }

    pub fn id_of_group(&self, display_name: &str) -> String {
        let tenant = self.azure.tenant();
        tenant.groups.iter().find(|group| group.display_name == display_name).expect("group").id.clone()
    }

    pub fn id_of_service_principal(&self, display_name: &str) -> String {
        let tenant = self.azure.tenant();
        tenant
            .service_principals
            .iter()
            .find(|sp| sp.display_name == display_name)
            .expect("service principal")
            .id
            .clone()
    }
}
