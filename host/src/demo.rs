//! `demo`: the bundled sample tenant (the fake Azure of our tests) started on loopback,
//! synced like a real one, and summarised. It needs no credentials and reaches nothing
//! but 127.0.0.1.

use std::path::Path;

use fake_azure::{FakeAzure, Tenant};

use crate::cli::RunArgs;
use crate::cloud::{AzureCloud, AzureEndpoints, EndpointOverrides};
use crate::credentials::{ClientCredentials, Secret};
use crate::run::sync_tenant;
use crate::tenant::TenantSettings;

pub async fn run_demo(run: &RunArgs, output: &Path) -> anyhow::Result<()> {
    let tenant = Tenant::sample();
    let expected = SampleCounts::of(&tenant);
    let fake = FakeAzure::start(tenant.clone()).await?;
    let settings = TenantSettings {
        credentials: ClientCredentials {
            tenant_id: tenant.tenant_id.clone(),
            client_id: tenant.client_id.clone(),
            client_secret: Secret::new(tenant.client_secret.clone()),
        },
        endpoints: AzureEndpoints::resolve(
            AzureCloud::Public,
            &EndpointOverrides {
                login: Some(fake.login_url()),
                graph: Some(fake.graph_url()),
                arm: Some(fake.arm_url()),
            },
        )?,
        mailbox_settings: true,
        skip_ad_groups: false,
        page_size: 999,
        provisioning: false,
    };
    let summary = sync_tenant(&settings, run, output).await?;
    println!("Synced the sample tenant {:?} into {}", tenant.display_name, output.display());
    println!("{summary}");
    println!("The sample tenant holds {expected}.");
    Ok(())
}

/// What the sample tenant contains, counted from its model, to set beside what the sync saw.
struct SampleCounts {
    users: usize,
    groups: usize,
    applications: usize,
    managed_identities: usize,
    subscriptions: usize,
    resource_groups: usize,
}

impl SampleCounts {
    fn of(tenant: &Tenant) -> Self {
        let count_type =
            |kind: &str| tenant.service_principals.iter().filter(|sp| sp.service_principal_type == kind).count();
        SampleCounts {
            users: tenant.users.len(),
            groups: tenant.groups.len(),
            applications: count_type("Application"),
            managed_identities: count_type("ManagedIdentity"),
            subscriptions: tenant.subscriptions.len(),
            resource_groups: tenant.resource_groups.len(),
        }
    }
}

impl std::fmt::Display for SampleCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} users, {} groups, {} enterprise applications, {} managed identities, {} subscriptions, {} resource groups",
            self.users,
            self.groups,
            self.applications,
            self.managed_identities,
            self.subscriptions,
            self.resource_groups
        )
    }
}
