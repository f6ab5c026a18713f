//! One Azure tenant as the host sees it: credentials, endpoints, options and switches, turned
//! into the connector's configuration and the gateway its sandbox talks through.
//!
//! The gateway's origins and token scopes come from the operator's configuration alone: a
//! connector asks for endpoints by name, and gets only names the host knows, bound to the URLs
//! and the cloud the operator gave. Every gateway only reads, except the one built for a grant
//! or revoke of a tenant with provisioning on.

use std::sync::Arc;

use anyhow::bail;
use url::Url;

use crate::cli::AzureArgs;
use crate::cloud::{AzureEndpoints, EndpointOverrides, KNOWN_ENDPOINTS};
use crate::credentials::{ClientCredentials, TokenProvider, check_tenant_id};
use crate::outbound::OutboundStats;
use crate::outbound::gateway::{GatewaySettings, TenantGateway};
use crate::outbound::policy::{Access, AllowedOrigin, Origin, OutboundPolicy};
use crate::outbound::transport::HttpTransport;
use crate::sandbox::{ConfigValue, ConnectorMetadata};

#[derive(Clone, Debug)]
pub struct TenantSettings {
    pub credentials: ClientCredentials,
    pub endpoints: AzureEndpoints,
    pub mailbox_settings: bool,
    pub skip_ad_groups: bool,
    pub page_size: u16,
    pub provisioning: bool,
}

impl TenantSettings {
    pub fn from_args(args: &AzureArgs) -> anyhow::Result<Self> {
        let credentials = credentials_from(args)?;
        let overrides = EndpointOverrides {
            login: args.login_url.clone(),
            graph: args.graph_url.clone(),
            arm: args.arm_url.clone(),
        };
        Ok(TenantSettings {
            credentials,
            endpoints: AzureEndpoints::resolve(args.azure_cloud, &overrides)?,
            mailbox_settings: args.mailbox_settings,
            skip_ad_groups: args.skip_ad_groups,
            page_size: args.page_size,
            provisioning: args.provisioning,
        })
    }

    /// The connector's configuration: where each endpoint the host knows is (`<name>-url`, as
    /// the contract says), and the options. No token scope: the component never names one.
    pub fn connector_config(&self) -> Vec<ConfigValue> {
        let value = |key: String, value: String| ConfigValue { key, value };
        let mut values: Vec<ConfigValue> = self
            .endpoints
            .bound()
            .map(|endpoint| value(format!("{}-url", endpoint.name), base(&endpoint.base_url)))
            .collect();
        values.extend([
            value("mailbox-settings".into(), self.mailbox_settings.to_string()),
            value("skip-ad-groups".into(), self.skip_ad_groups.to_string()),
            value("page-size".into(), self.page_size.to_string()),
        ]);
        values
    }

    /// Whose data a sync of these settings reads (see `store::SnapshotIdentity`).
    pub fn snapshot_identity(&self) -> crate::store::SnapshotIdentity {
        crate::store::SnapshotIdentity::new(
            &self.credentials.tenant_id,
            &self.credentials.client_id,
            self.endpoints.login.as_str(),
        )
    }

    /// The gateway for every call that only reads (syncs, `validate-config`, `tracked-types`),
    /// whatever `provisioning` says.
    pub fn read_gateway(
        &self,
        metadata: &ConnectorMetadata,
        transport: HttpTransport,
        stats: Arc<OutboundStats>,
    ) -> anyhow::Result<TenantGateway> {
        self.gateway(metadata, Access::ReadOnly, transport, stats)
    }

    /// The gateway for one grant or revoke; refused unless the tenant has provisioning on.
    pub fn provisioning_gateway(
        &self,
        metadata: &ConnectorMetadata,
        transport: HttpTransport,
        stats: Arc<OutboundStats>,
    ) -> anyhow::Result<TenantGateway> {
        if !self.provisioning {
            bail!("provisioning is off for this tenant: no gateway that may write is built");
        }
        self.gateway(metadata, Access::Provisioning, transport, stats)
    }

    /// Exactly the endpoints the connector asked for, as the operator configured them.
    fn gateway(
        &self,
        metadata: &ConnectorMetadata,
        access: Access,
        transport: HttpTransport,
        stats: Arc<OutboundStats>,
    ) -> anyhow::Result<TenantGateway> {
        let policy = policy_for(metadata, &self.endpoints)?.with_access(access);
        let tokens =
            TokenProvider::new(self.credentials.clone(), &self.endpoints.login, transport.clone(), stats.clone())?;
        Ok(TenantGateway::new(GatewaySettings {
            policy,
            tokens: Some(Arc::new(tokens)),
            transport,
            max_concurrent_requests: 16,
            stats,
        }))
    }
}

/// The allow-list for the endpoints a connector asked for by name, each bound to the operator's
/// URL and the cloud's token scope. A name the host does not know refuses the connector.
pub fn policy_for(metadata: &ConnectorMetadata, endpoints: &AzureEndpoints) -> anyhow::Result<OutboundPolicy> {
    let mut granted: Vec<(&str, AllowedOrigin)> = Vec::new();
    for asked in &metadata.endpoints {
        let Some(bound) = endpoints.bind(&asked.name) else {
            let known: Vec<String> = KNOWN_ENDPOINTS.iter().map(|(name, what)| format!("{name:?} ({what})")).collect();
            bail!(
                "connector {} asks for the endpoint {} ({}), which this host does not know: it grants only {}. Nothing was sent; run a connector that asks only for those",
                shown(&metadata.name),
                shown(&asked.name),
                shown(&asked.description),
                known.join(" and ")
            );
        };
        let origin = Origin::from_url(&bound.base_url)?;
        match granted.iter().find(|(_, known)| known.origin == origin) {
            // The token is chosen by origin, so one origin cannot serve two audiences.
            Some((other, known)) if known.token_scope.as_deref() != Some(bound.token_scope.as_str()) => bail!(
                "the endpoints {other:?} and {:?} are both at {origin}, and they take different tokens: give each its own origin (--graph-url, --arm-url)",
                bound.name
            ),
            Some(_) => {}
            None => granted.push((bound.name, AllowedOrigin { origin, token_scope: Some(bound.token_scope) })),
        }
    }
    Ok(OutboundPolicy::new(granted.into_iter().map(|(_, allowed)| allowed).collect()))
}

/// A component's text in a message: quoted, escaped, and short.
fn shown(text: &str) -> String {
    format!("{:?}", text.chars().take(80).collect::<String>())
}

/// A gateway that allows nothing, for calls that need no network (metadata).
pub fn offline_gateway(transport: HttpTransport) -> TenantGateway {
    TenantGateway::new(GatewaySettings {
        policy: OutboundPolicy::default(),
        tokens: None,
        transport,
        max_concurrent_requests: 1,
        stats: Arc::new(OutboundStats::default()),
    })
}

/// The base URL as the connector expects it: no trailing slash.
fn base(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

fn credentials_from(args: &AzureArgs) -> anyhow::Result<ClientCredentials> {
    let given = [
        ("--azure-client-id (BATON_AZURE_CLIENT_ID)", args.azure_client_id.as_deref()),
        ("--azure-client-secret (BATON_AZURE_CLIENT_SECRET)", args.azure_client_secret.as_ref().map(|s| s.expose())),
        ("--azure-tenant-id (BATON_AZURE_TENANT_ID)", args.azure_tenant_id.as_deref()),
    ];
    let missing: Vec<&str> =
        given.iter().filter(|(_, value)| value.is_none_or(str::is_empty)).map(|(name, _)| *name).collect();
    if missing.len() == given.len() {
        bail!(
            "no Azure credentials given: set {} (or run `connector-host demo` to sync the bundled sample tenant)",
            missing.join(", ")
        );
    }
    if !missing.is_empty() {
        bail!("incomplete Azure credentials: also set {}", missing.join(", "));
    }
    let (Some(client_id), Some(secret), Some(tenant_id)) =
        (&args.azure_client_id, &args.azure_client_secret, &args.azure_tenant_id)
    else {
        bail!("incomplete Azure credentials");
    };
    check_tenant_id(tenant_id).map_err(|err| anyhow::anyhow!("--azure-tenant-id (BATON_AZURE_TENANT_ID): {err}"))?;
    Ok(ClientCredentials { tenant_id: tenant_id.clone(), client_id: client_id.clone(), client_secret: secret.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::AzureCloud;
    use crate::credentials::Secret;
    use crate::outbound::transport::TransportLimits;
    use crate::sandbox::Endpoint;

    fn asking_for(names: &[&str]) -> ConnectorMetadata {
        ConnectorMetadata {
            name: "test".into(),
            version: "1".into(),
            description: String::new(),
            resource_types: vec![],
            config_fields: vec![],
            endpoints: names
                .iter()
                .map(|name| Endpoint { name: (*name).into(), description: format!("{name} things") })
                .collect(),
        }
    }

    fn settings(provisioning: bool) -> TenantSettings {
        let overrides = EndpointOverrides { graph: Some("http://127.0.0.1:8081".into()), ..Default::default() };
        TenantSettings {
            credentials: ClientCredentials {
                tenant_id: "contoso.onmicrosoft.com".into(),
                client_id: "c".into(),
                client_secret: Secret::new("s"),
            },
            endpoints: AzureEndpoints::resolve(AzureCloud::Usgov, &overrides).unwrap(),
            mailbox_settings: false,
            skip_ad_groups: false,
            page_size: 999,
            provisioning,
        }
    }

    #[test]
    fn the_allow_list_holds_the_operators_origins_and_the_clouds_scopes_only() {
        let endpoints = settings(false).endpoints;
        let policy = policy_for(&asking_for(&["graph", "arm"]), &endpoints).unwrap();
        let origins: Vec<String> = policy.origins().map(ToString::to_string).collect();
        assert_eq!(origins, ["http://127.0.0.1:8081", "https://management.usgovcloudapi.net:443"]);
        assert_eq!(
            policy.token_scopes(),
            ["https://graph.microsoft.us/.default", "https://management.usgovcloudapi.net/.default"]
        );
        assert_eq!(policy.access(), Access::ReadOnly);
    }

    #[test]
    fn an_endpoint_the_host_does_not_know_refuses_the_connector_naming_it() {
        let endpoints = settings(false).endpoints;
        let error = policy_for(&asking_for(&["graph", "keyvault"]), &endpoints).unwrap_err().to_string();
        assert!(error.contains("\"keyvault\" (\"keyvault things\")"), "{error}");
        assert!(error.contains("\"graph\" (Microsoft Graph) and \"arm\" (Azure Resource Manager)"), "{error}");
    }

    #[test]
    fn two_endpoints_at_one_origin_with_different_tokens_are_refused() {
        let overrides = EndpointOverrides {
            graph: Some("https://proxy.example/graph".into()),
            arm: Some("https://proxy.example/arm".into()),
            ..Default::default()
        };
        let endpoints = AzureEndpoints::resolve(AzureCloud::Public, &overrides).unwrap();
        let error = policy_for(&asking_for(&["graph", "arm"]), &endpoints).unwrap_err().to_string();
        assert!(error.contains("both at https://proxy.example:443"), "{error}");
    }

    #[test]
    fn the_connector_gets_base_urls_and_no_scope() {
        let config = settings(false).connector_config();
        let keys: Vec<&str> = config.iter().map(|value| value.key.as_str()).collect();
        assert_eq!(keys, ["graph-url", "arm-url", "mailbox-settings", "skip-ad-groups", "page-size"]);
        assert_eq!(config[0].value, "http://127.0.0.1:8081");
    }

    #[test]
    fn only_a_tenant_with_provisioning_on_gets_a_gateway_that_may_write() {
        let transport = HttpTransport::new(TransportLimits::default()).unwrap();
        let metadata = asking_for(&["graph"]);
        let stats = || Arc::new(OutboundStats::default());
        let refused = settings(false).provisioning_gateway(&metadata, transport.clone(), stats());
        assert!(refused.is_err_and(|error| error.to_string().contains("provisioning is off")));
        let read = settings(true).read_gateway(&metadata, transport.clone(), stats()).unwrap();
        assert_eq!(read.policy().access(), Access::ReadOnly, "a sync reads, even with provisioning on");
        let write = settings(true).provisioning_gateway(&metadata, transport, stats()).unwrap();
        assert_eq!(write.policy().access(), Access::Provisioning);
    }
}
