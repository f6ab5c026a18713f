use fake_azure::Tenant;

use crate::client::{GRAPH_SCOPE, Http, Session};

#[tokio::test]
async fn right_secret_gets_a_bearer_token() {
    let tenant = Tenant::sample();
    let (tenant_id, client_id, secret) =
        (tenant.tenant_id.clone(), tenant.client_id.clone(), tenant.client_secret.clone());
    let azure = fake_azure::FakeAzure::start(tenant).await.unwrap();
    let reply = Http::new().request_token(&azure, &tenant_id, &client_id, &secret, GRAPH_SCOPE).await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert!(body["access_token"].as_str().is_some_and(|token| token.len() > 20));
}

#[tokio::test]
async fn wrong_secret_is_401_invalid_client_aadsts7000215() {
    let tenant = Tenant::sample();
    let (tenant_id, client_id) = (tenant.tenant_id.clone(), tenant.client_id.clone());
    let azure = fake_azure::FakeAzure::start(tenant).await.unwrap();
    let reply = Http::new().request_token(&azure, &tenant_id, &client_id, "wrong", GRAPH_SCOPE).await;
    assert_eq!(reply.status, 401);
    let body = reply.json();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_codes"][0], 7000215);
    assert!(body["error_description"].as_str().unwrap().starts_with("AADSTS7000215: Invalid client secret provided."));
}

#[tokio::test]
async fn unknown_client_tenant_and_scope_are_refused_with_their_aadsts_codes() {
    let tenant = Tenant::sample();
    let (tenant_id, client_id, secret) =
        (tenant.tenant_id.clone(), tenant.client_id.clone(), tenant.client_secret.clone());
    let azure = fake_azure::FakeAzure::start(tenant).await.unwrap();
    let http = Http::new();
    let unknown_client =
        http.request_token(&azure, &tenant_id, "11111111-1111-1111-1111-111111111111", &secret, GRAPH_SCOPE).await;
    assert_eq!((unknown_client.status, unknown_client.json()["error"].as_str()), (400, Some("unauthorized_client")));
    assert_eq!(unknown_client.json()["error_codes"][0], 700016);
    let unknown_tenant =
        http.request_token(&azure, "22222222-2222-2222-2222-222222222222", &client_id, &secret, GRAPH_SCOPE).await;
    assert_eq!((unknown_tenant.status, unknown_tenant.json()["error_codes"][0].as_u64()), (400, Some(90002)));
    let bad_scope =
        http.request_token(&azure, &tenant_id, &client_id, &secret, "https://graph.microsoft.com/User.Read").await;
    assert_eq!((bad_scope.status, bad_scope.json()["error"].as_str()), (400, Some("invalid_scope")));
    assert_eq!(bad_scope.json()["error_codes"][0], 70011);
}

#[tokio::test]
async fn national_cloud_scopes_are_accepted() {
    let tenant = Tenant::sample();
    let (tenant_id, client_id, secret) =
        (tenant.tenant_id.clone(), tenant.client_id.clone(), tenant.client_secret.clone());
    let azure = fake_azure::FakeAzure::start(tenant).await.unwrap();
    let http = Http::new();
    for scope in ["https://graph.microsoft.us/.default", "https://management.chinacloudapi.cn/.default"] {
        let reply = http.request_token(&azure, &tenant_id, &client_id, &secret, scope).await;
        assert_eq!(reply.status, 200, "{scope}: {}", reply.text);
    }
}

#[tokio::test]
async fn graph_token_is_refused_by_arm_and_arm_token_by_graph() {
    let session = Session::sample().await;
    let url = format!("{}/subscriptions?api-version=2022-12-01", session.azure.arm_url());
    let authorization = format!("Bearer {}", session.graph_token);
    let on_arm = session.http.send("GET", &url, &[("authorization", &authorization)], None).await;
    assert_eq!(on_arm.status, 401);
    assert_eq!(on_arm.json()["error"]["code"], "InvalidAuthenticationToken");

    let url = format!("{}/v1.0/users", session.azure.graph_url());
    let authorization = format!("Bearer {}", session.arm_token);
    let on_graph = session.http.send("GET", &url, &[("authorization", &authorization)], None).await;
    assert_eq!(on_graph.status, 401);
    assert_eq!(on_graph.json()["error"]["code"], "InvalidAuthenticationToken");
}

#[tokio::test]
async fn missing_bearer_token_is_401_on_both_apis() {
    let session = Session::sample().await;
    let graph = session.http.send("GET", &format!("{}/v1.0/users", session.azure.graph_url()), &[], None).await;
    let arm = session
        .http
        .send("GET", &format!("{}/tenants?api-version=2022-12-01", session.azure.arm_url()), &[], None)
        .await;
    assert_eq!((graph.status, arm.status), (401, 401));
    assert!(graph.json()["error"]["innerError"]["request-id"].is_string());
}

#[tokio::test]
async fn every_request_is_logged_with_its_raw_path_and_status() {
    let session = Session::sample().await;
    session.graph("/v1.0/users?$top=5&$select=id").await;
    let requests = session.azure.requests();
    let last = requests.last().unwrap();
    assert_eq!(last.service, fake_azure::Service::Graph);
    assert_eq!(last.path_and_query, "/v1.0/users?$top=5&$select=id");
    assert_eq!(last.status, 200);
    assert!(last.authorization.as_deref().is_some_and(|value| value.starts_with("Bearer ")));
    assert_eq!(requests.iter().filter(|request| request.service == fake_azure::Service::Login).count(), 2);
}
