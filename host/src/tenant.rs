//! One Azure tenant as the host sees it: credentials, endpoints, options and switches, turned
//! into the connector's configuration and the gateway its sandbox talks through.

use std::sync::Arc;

use anyhow::bail;
use url::Url;

use crate::cli::AzureArgs;
use crate::cloud::{AzureEndpoints, EndpointOverrides};
use crate::credentials::{ClientCredentials, Secret, TokenProvider};
use crate::outbound::OutboundStats;
use crate::outbound::gateway::{GatewaySettings, TenantGateway};
use crate::outbound::policy::{AllowedOrigin, Origin, OutboundPolicy};
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

    /// The connector's configuration: where Graph and ARM are, with which scopes, and options.
    pub fn connector_config(&self) -> Vec<ConfigValue> {
        let value = |key: &str, value: String| ConfigValue { key: key.to_owned(), value };
        vec![
            value("graph-url", base(&self.endpoints.graph)),
            value("graph-scope", self.endpoints.graph_scope.clone()),
            value("arm-url", base(&self.endpoints.arm)),
            value("arm-scope", self.endpoints.arm_scope.clone()),
            value("mailbox-settings", self.mailbox_settings.to_string()),
            value("skip-ad-groups", self.skip_ad_groups.to_string()),
            value("page-size", self.page_size.to_string()),
        ]
    }

    /// Whose data a sync of these settings reads (see `store::SnapshotIdentity`).
    pub fn snapshot_identity(&self) -> crate::store::SnapshotIdentity {
        crate::store::SnapshotIdentity::new(
            &self.credentials.tenant_id,
            &self.credentials.client_id,
            self.endpoints.login.as_str(),
        )
    }

    /// The gateway for this tenant: exactly the origins the connector declared (as configured),
    /// each with its token scope, and nothing else.
    pub fn gateway(
        &self,
        metadata: &ConnectorMetadata,
        config: &[ConfigValue],
        transport: HttpTransport,
        stats: Arc<OutboundStats>,
    ) -> anyhow::Result<TenantGateway> {
        let policy = policy_for(metadata, config)?;
        let tokens =
            TokenProvider::new(self.credentials.clone(), &self.endpoints.login, transport.clone(), stats.clone())?;
        Ok(TenantGateway::new(GatewaySettings {
            policy,
            tokens: Some(Arc::new(tokens)),
            transport,
            provisioning_enabled: self.provisioning,
            max_concurrent_requests: 16,
            stats,
        }))
    }
}

/// The allow-list derived from a connector's declared endpoints and the configuration.
pub fn policy_for(metadata: &ConnectorMetadata, config: &[ConfigValue]) -> anyhow::Result<OutboundPolicy> {
    let mut allowed = Vec::new();
    for endpoint in &metadata.endpoints {
        let url_text = config_value(config, &endpoint.url_key).unwrap_or(&endpoint.default_url);
        let url = crate::cloud::parse_base_url(&endpoint.url_key, url_text)?;
        let scope = config_value(config, &endpoint.scope_key).unwrap_or(&endpoint.default_scope);
        allowed.push(AllowedOrigin { origin: Origin::from_url(&url)?, token_scope: Some(scope.to_owned()) });
    }
    Ok(OutboundPolicy::new(allowed))
}

pub fn config_value<'a>(config: &'a [ConfigValue], key: &str) -> Option<&'a str> {
    config.iter().find(|value| value.key == key).map(|value| value.value.as_str())
}

/// The token scopes of the endpoints a connector declared, as configured.
pub fn token_scopes(metadata: &ConnectorMetadata, config: &[ConfigValue]) -> Vec<String> {
    metadata
        .endpoints
        .iter()
        .map(|endpoint| config_value(config, &endpoint.scope_key).unwrap_or(&endpoint.default_scope).to_owned())
        .collect()
}

/// A gateway that allows nothing, for calls that need no network (metadata).
pub fn offline_gateway(transport: HttpTransport) -> TenantGateway {
    TenantGateway::new(GatewaySettings {
        policy: OutboundPolicy::default(),
        tokens: None,
        transport,
        provisioning_enabled: false,
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
        ("--azure-client-id (BATON_AZURE_CLIENT_ID)", &args.azure_client_id),
        ("--azure-client-secret (BATON_AZURE_CLIENT_SECRET)", &args.azure_client_secret),
        ("--azure-tenant-id (BATON_AZURE_TENANT_ID)", &args.azure_tenant_id),
    ];
    let missing: Vec<&str> =
        given.iter().filter(|(_, value)| value.as_deref().is_none_or(str::is_empty)).map(|(name, _)| *name).collect();
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
    Ok(ClientCredentials {
        tenant_id: tenant_id.clone(),
        client_id: client_id.clone(),
        client_secret: Secret::new(secret.clone()),
    })
}
