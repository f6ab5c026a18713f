//! Azure RBAC scopes and their inheritance: root → management groups → subscriptions → resource groups.
//!
//! The fake does not model the management-group tree: every subscription counts as a child of every
//! management group, which is what a tenant with a single root group looks like.

#[derive(Clone, Debug)]
pub enum Scope {
    Root,
    ManagementGroup(String),
    Subscription(String),
    ResourceGroup { subscription: String, name: String },
}

impl Scope {
    /// Parses `/`, `/subscriptions/x`, `/subscriptions/x/resourceGroups/y` and
    /// `/providers/Microsoft.Management/managementGroups/m` (any case, any slashes).
    pub fn parse(path: &str) -> Option<Scope> {
        let segments: Vec<&str> = path.split('/').filter(|segment| !segment.is_empty()).collect();
        Scope::from_segments(&segments)
    }

    pub fn from_segments<S: AsRef<str>>(segments: &[S]) -> Option<Scope> {
        let lowered: Vec<String> = segments.iter().map(|segment| segment.as_ref().to_ascii_lowercase()).collect();
        let words: Vec<&str> = lowered.iter().map(String::as_str).collect();
        let original = |index: usize| segments[index].as_ref().to_owned();
        match words.as_slice() {
            [] => Some(Scope::Root),
            ["subscriptions", _] => Some(Scope::Subscription(original(1))),
            ["subscriptions", _, "resourcegroups", _] => {
                Some(Scope::ResourceGroup { subscription: original(1), name: original(3) })
            }
            ["providers", "microsoft.management", "managementgroups", _] => Some(Scope::ManagementGroup(original(3))),
            _ => None,
        }
    }

    /// The canonical ARM spelling; the root scope is `/`.
    pub fn path(&self) -> String {
        match self {
            Scope::Root => "/".to_owned(),
            Scope::ManagementGroup(name) => format!("/providers/Microsoft.Management/managementGroups/{name}"),
            Scope::Subscription(id) => format!("/subscriptions/{id}"),
            Scope::ResourceGroup { subscription, name } => {
                format!("/subscriptions/{subscription}/resourceGroups/{name}")
            }
        }
    }

    /// The prefix of ids of resources at this scope (`""` for the root, so ids start with `/providers`).
    pub fn id_prefix(&self) -> String {
        match self {
            Scope::Root => String::new(),
            other => other.path(),
        }
    }

    pub fn subscription(&self) -> Option<&str> {
        match self {
            Scope::Subscription(id) | Scope::ResourceGroup { subscription: id, .. } => Some(id),
            Scope::Root | Scope::ManagementGroup(_) => None,
        }
    }

    /// The same scope, however either is spelled (ARM paths are case-insensitive).
    pub fn same_as(&self, other: &Scope) -> bool {
        self.contains(other) && other.contains(self)
    }

    /// True when `self` is `other` or one of its ancestors (so assignments at `self` apply to `other`).
    pub fn contains(&self, other: &Scope) -> bool {
        let same = |left: &str, right: &str| left.eq_ignore_ascii_case(right);
        match (self, other) {
            (Scope::Root, _) => true,
            (Scope::ManagementGroup(mine), Scope::ManagementGroup(theirs)) => same(mine, theirs),
            (Scope::ManagementGroup(_), Scope::Subscription(_) | Scope::ResourceGroup { .. }) => true,
            (Scope::Subscription(mine), Scope::Subscription(theirs)) => same(mine, theirs),
            (Scope::Subscription(mine), Scope::ResourceGroup { subscription, .. }) => same(mine, subscription),
            (
                Scope::ResourceGroup { subscription, name },
                Scope::ResourceGroup { subscription: their_subscription, name: their_name },
            ) => same(subscription, their_subscription) && same(name, their_name),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_contains_its_resource_groups_only() {
        let subscription = Scope::parse("/subscriptions/A").unwrap();
        assert!(subscription.contains(&Scope::parse("/subscriptions/a/resourcegroups/rg").unwrap()));
        assert!(!subscription.contains(&Scope::parse("/subscriptions/b/resourceGroups/rg").unwrap()));
        assert!(!Scope::parse("/subscriptions/a/resourceGroups/rg").unwrap().contains(&subscription));
    }

    #[test]
    fn root_and_management_groups_contain_subscriptions() {
        let subscription = Scope::parse("/subscriptions/a").unwrap();
        assert!(Scope::parse("/").unwrap().contains(&subscription));
        assert!(Scope::parse("/providers/Microsoft.Management/managementGroups/m").unwrap().contains(&subscription));
    }
}
