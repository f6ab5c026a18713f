//! `demo`: the bundled sample tenant (the fake Azure of our tests) started on loopback,
//! synced like a real one, and summarised. It needs no credentials and reaches nothing
//! but 127.0.0.1.

use std::path::Path;

use std::collections::BTreeMap;

use fake_azure::{FakeAzure, LoggedRequest, Tenant};

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
    println!("Calls the fake Azure answered:");
    for (call, count) in call_counts(&fake.requests()) {
        println!("  {count:>4}  {call}");
    }
    Ok(())
}

/// Requests grouped by method and path, with ids and names replaced by placeholders, so the
/// calls a sync makes per resource type can be read off.
fn call_counts(requests: &[LoggedRequest]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in requests {
        let path = request.path_and_query.split('?').next().unwrap_or_default();
        let mut previous = "";
        let template: Vec<&str> = path
            .split('/')
            .map(|segment| {
                let placeholder = if looks_like_id(segment) {
                    "{id}"
                } else if previous.eq_ignore_ascii_case("resourceGroups") {
                    "{name}"
                } else {
                    segment
                };
                previous = segment;
                placeholder
            })
            .collect();
        *counts.entry(format!("{} {}", request.method, template.join("/"))).or_default() += 1;
    }
    counts
}

fn looks_like_id(segment: &str) -> bool {
    segment.len() == 36 && segment.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
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
