//! What the host checks in every page a connector returns, in full and incremental syncs
//! alike: the component is untrusted, so a page may only hold what the call asked for
//! (resources of the listed type under the listed parent, entitlements of the listed resource,
//! grants of its entitlements), and a listing must end.

use std::collections::HashSet;

use anyhow::bail;
use sha2::{Digest, Sha256};

use crate::sandbox::{Entitlement, Grant, Resource, ResourceRef};

/// Every page token one listing has been given, as digests (16 bytes a page, whatever the
/// token's size), so a listing that comes back to any earlier token is stopped, not only one
/// that repeats the last.
pub(super) struct PageTokens {
    seen: HashSet<[u8; 16]>,
}

impl PageTokens {
    /// A listing that starts at `first` (a resumed listing starts at its checkpoint).
    pub fn starting_at(first: Option<&str>) -> Self {
        let mut tokens = PageTokens { seen: HashSet::new() };
        if let Some(token) = first {
            tokens.seen.insert(digest(token));
        }
        tokens
    }

    /// Accepts the next page's token, failing when the listing (named by `call`) gave it before.
    pub fn accept(&mut self, next: Option<&str>, call: &str) -> anyhow::Result<()> {
        if let Some(token) = next
            && !self.seen.insert(digest(token))
        {
            bail!(
                "{call}: the connector returned a page token it had returned before, after {} pages: \
                 stopping a listing that would never end (a defect of the connector)",
                self.seen.len()
            );
        }
        Ok(())
    }
}

fn digest(token: &str) -> [u8; 16] {
    let full = Sha256::digest(token.as_bytes());
    let mut short = [0; 16];
    short.copy_from_slice(&full[..16]);
    short
}

/// Every resource of a page of `call` must be of the listed type.
pub(super) fn check_types(call: &str, resource_type: &str, resources: &[Resource]) -> anyhow::Result<()> {
    if let Some(stranger) = resources.iter().find(|resource| resource.resource_type != resource_type) {
        bail!(
            "{call}: the connector returned a {} ({}) among the {resource_type} resources: refusing the page",
            stranger.resource_type,
            stranger.id
        )
    }
    Ok(())
}

/// Every resource of a page of `call` must be of the listed type and, for a type listed under
/// a parent, hang under the one listed. A type listed on its own may name any parent (a
/// subscription names its tenant): that is a fact about it, not about the call.
pub(super) fn check_listed(
    call: &str,
    resource_type: &str,
    parent: Option<&ResourceRef>,
    resources: &[Resource],
) -> anyhow::Result<()> {
    check_types(call, resource_type, resources)?;
    let Some(parent) = parent else { return Ok(()) };
    let under_parent = |resource: &&Resource| {
        resource.parent.as_ref().is_some_and(|own| own.resource_type == parent.resource_type && own.id == parent.id)
    };
    if let Some(stray) = resources.iter().find(|resource| !under_parent(resource)) {
        let claimed = match &stray.parent {
            Some(own) => format!("{} {}", own.resource_type, own.id),
            None => "no parent".to_owned(),
        };
        bail!(
            "{call}: the connector returned {} {} under {claimed}, not under {} {}: refusing the page",
            stray.resource_type,
            stray.id,
            parent.resource_type,
            parent.id
        )
    }
    Ok(())
}

/// Every entitlement of a page of `call` must belong to the resource whose entitlements were listed.
pub(super) fn check_entitlements(call: &str, resource: &Resource, entitlements: &[Entitlement]) -> anyhow::Result<()> {
    let listed = |entitlement: &&Entitlement| {
        entitlement.resource.resource_type != resource.resource_type || entitlement.resource.id != resource.id
    };
    if let Some(foreign) = entitlements.iter().find(listed) {
        bail!(
            "{call}: the connector returned entitlement {} of {} {}: refusing the page",
            foreign.id,
            foreign.resource.resource_type,
            foreign.resource.id
        )
    }
    Ok(())
}

/// Every grant of a page of `call` must be of an entitlement the resource's own listing
/// returned (`owned` says which are).
pub(super) fn check_grants(call: &str, grants: &[Grant], owned: impl Fn(&str) -> bool) -> anyhow::Result<()> {
    if let Some(foreign) = grants.iter().find(|grant| !owned(&grant.entitlement_id)) {
        bail!(
            "{call}: the connector returned grant {} of entitlement {}, which is not one of this resource's \
             entitlements: refusing the page",
            foreign.id,
            foreign.entitlement_id
        )
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(resource_type: &str, id: &str, parent: Option<&ResourceRef>) -> Resource {
        Resource {
            resource_type: resource_type.into(),
            id: id.into(),
            display_name: id.into(),
            parent: parent.cloned(),
            profile_json: "{}".into(),
        }
    }

    #[test]
    fn a_token_seen_earlier_in_the_listing_is_a_cycle_not_only_an_immediate_repeat() {
        let mut tokens = PageTokens::starting_at(None);
        for token in ["a", "b", "c"] {
            tokens.accept(Some(token), "listing user").expect("new tokens pass");
        }
        let error = tokens.accept(Some("a"), "listing user").expect_err("a cycle of three is stopped");
        assert!(format!("{error}").contains("listing user"), "{error}");
        tokens.accept(None, "listing user").expect("the end of a listing is no token");
    }

    #[test]
    fn a_resumed_listing_counts_its_checkpoint_token_as_seen() {
        let mut tokens = PageTokens::starting_at(Some("checkpoint"));
        assert!(tokens.accept(Some("checkpoint"), "listing user").is_err());
    }

    #[test]
    fn a_resource_under_another_parent_is_refused_naming_both() {
        let listed = ResourceRef { resource_type: "subscription".into(), id: "s1".into() };
        let other = ResourceRef { resource_type: "subscription".into(), id: "s2".into() };
        let page = [resource("resource_group", "rg1", Some(&listed)), resource("resource_group", "rg2", Some(&other))];
        let error = check_listed("listing resource_group of subscription s1", "resource_group", Some(&listed), &page)
            .expect_err("refused");
        let message = error.to_string();
        assert!(message.contains("rg2 under subscription s2, not under subscription s1"), "{message}");
        check_listed("listing", "resource_group", Some(&listed), &page[..1]).expect("its own children pass");
    }

    #[test]
    fn a_resource_of_another_type_is_refused() {
        let error = check_listed("listing user", "user", None, &[resource("group", "g", None)]).expect_err("refused");
        assert!(error.to_string().contains("group (g) among the user resources"), "{error}");
    }

    #[test]
    fn an_entitlement_of_another_resource_is_refused() {
        let group = resource("group", "g1", None);
        let entitlement = |id: &str| Entitlement {
            id: format!("group:{id}:members"),
            resource: ResourceRef { resource_type: "group".into(), id: id.into() },
            slug: "members".into(),
            display_name: "members".into(),
            description: String::new(),
            purpose: crate::sandbox::EntitlementPurpose::Assignment,
            grantable_to: vec![],
        };
        check_entitlements("entitlements of group:g1", &group, &[entitlement("g1")]).expect("its own");
        let error = check_entitlements("entitlements of group:g1", &group, &[entitlement("g2")]).expect_err("foreign");
        assert!(error.to_string().contains("group:g2:members of group g2"), "{error}");
    }
}
