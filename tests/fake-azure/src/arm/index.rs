//! An index of the tenant's Azure RBAC data, so a listing at one scope does not parse every
//! assignment of the tenant (50 subscriptions × 1,000 assignments, listed per resource group,
//! would be quadratic) and a scope check does not scan every resource group.

use std::collections::{HashMap, HashSet};

use super::scope::Scope;
use crate::model::Tenant;

#[derive(Default)]
pub struct RbacIndex {
    /// The parsed scope of each assignment, by position in `Tenant::arm_role_assignments`.
    scopes: Vec<Option<Scope>>,
    /// Positions of the assignments at a subscription or below, by lowercase subscription id.
    by_subscription: HashMap<String, Vec<usize>>,
    /// Positions of the assignments above every subscription (root, management groups).
    above_subscriptions: Vec<usize>,
    /// Lowercase subscription ids, and `(subscription, resource group)` pairs.
    subscriptions: HashSet<String>,
    resource_groups: HashSet<(String, String)>,
}

impl RbacIndex {
    pub fn of(tenant: &Tenant) -> Self {
        let mut index = RbacIndex {
            subscriptions: tenant.subscriptions.iter().map(|s| s.subscription_id.to_ascii_lowercase()).collect(),
            resource_groups: tenant
                .resource_groups
                .iter()
                .map(|group| (group.subscription_id.to_ascii_lowercase(), group.name.to_ascii_lowercase()))
                .collect(),
            ..RbacIndex::default()
        };
        for (position, assignment) in tenant.arm_role_assignments.iter().enumerate() {
            let scope = Scope::parse(&assignment.scope);
            match scope.as_ref().and_then(Scope::subscription) {
                Some(subscription) => {
                    index.by_subscription.entry(subscription.to_ascii_lowercase()).or_default().push(position)
                }
                None => index.above_subscriptions.push(position),
            }
            index.scopes.push(scope);
        }
        index
    }

    pub fn subscription_exists(&self, subscription: &str) -> bool {
        self.subscriptions.contains(&subscription.to_ascii_lowercase())
    }

    pub fn resource_group_exists(&self, subscription: &str, name: &str) -> bool {
        self.resource_groups.contains(&(subscription.to_ascii_lowercase(), name.to_ascii_lowercase()))
    }

    /// Positions (in tenant order) and scopes of the assignments that can be listed at `scope`:
    /// those in its subscription and those above every subscription; every one for scopes above
    /// subscriptions.
    pub fn candidates(&self, scope: &Scope) -> Vec<(usize, &Scope)> {
        let mut positions: Vec<usize> = match scope.subscription() {
            Some(subscription) => {
                let mut positions = self.above_subscriptions.clone();
                positions.extend(self.by_subscription.get(&subscription.to_ascii_lowercase()).into_iter().flatten());
                positions.sort_unstable();
                positions
            }
            None => (0..self.scopes.len()).collect(),
        };
        positions.dedup();
        positions
            .into_iter()
            .filter_map(|position| self.scopes.get(position)?.as_ref().map(|scope| (position, scope)))
            .collect()
    }
}
