//! The fewest requests a full sync of a tenant needs: one request per page, at the largest page
//! each API allows ($top=999 on Graph; ARM chooses its own page size), for every listing that
//! holds data the snapshot must contain, plus the two token requests. Owners are counted as one
//! listing per group and application, as a client that pages every relationship would read them.

use std::collections::HashMap;

use fake_azure::Tenant;

const GRAPH_PAGE: usize = 999;

fn pages(items: usize, page: usize) -> u64 {
    items.div_ceil(page).max(1) as u64
}

pub struct Minimum {
    pub graph: u64,
    pub arm: u64,
    pub tokens: u64,
}

impl Minimum {
    pub fn total(&self) -> u64 {
        self.graph + self.arm + self.tokens
    }

    pub fn of(tenant: &Tenant, arm_page: usize) -> Minimum {
        let count_type =
            |kind: &'static str| tenant.service_principals.iter().filter(move |sp| sp.service_principal_type == kind);
        let mut graph = pages(tenant.users.len(), GRAPH_PAGE) + pages(tenant.groups.len(), GRAPH_PAGE);
        graph += tenant.groups.iter().map(|group| pages(group.members.len(), GRAPH_PAGE) + 1).sum::<u64>();
        // Role definitions, then active and eligible holders of each role.
        graph += 1 + 2 * tenant.role_definitions.len() as u64;
        // The organization (for app ownership), applications with their holders and owners,
        // managed identities.
        graph += 1 + pages(count_type("Application").count(), GRAPH_PAGE);
        graph += count_type("Application")
            .map(|application| pages(application.app_role_assigned_to.len(), GRAPH_PAGE) + 1)
            .sum::<u64>();
        graph += pages(count_type("ManagedIdentity").count(), GRAPH_PAGE);

        // Tenants and subscriptions; per subscription its resource groups, its role definitions
        // and every role assignment visible from it (its own, its resource groups', inherited).
        let mut arm = 1 + pages(tenant.subscriptions.len(), arm_page);
        let mut groups_per_subscription: HashMap<String, usize> = HashMap::new();
        for group in &tenant.resource_groups {
            *groups_per_subscription.entry(group.subscription_id.to_ascii_lowercase()).or_default() += 1;
        }
        for subscription in &tenant.subscriptions {
            let id = subscription.subscription_id.to_ascii_lowercase();
            let prefix = format!("/subscriptions/{id}");
            let visible = tenant
                .arm_role_assignments
                .iter()
                .filter(|assignment| {
                    let scope = assignment.scope.to_ascii_lowercase();
                    scope == prefix || scope.starts_with(&format!("{prefix}/")) || !scope.starts_with("/subscriptions/")
                })
                .count();
            arm +=
                pages(groups_per_subscription.get(&id).copied().unwrap_or(0), arm_page) + 1 + pages(visible, arm_page);
        }
        Minimum { graph, arm, tokens: 2 }
    }
}
