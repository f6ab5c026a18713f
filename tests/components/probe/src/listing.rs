//! Listings that break the contract, for the host's listing checks. With the configuration key
//! `listing-attack` set, every listing of the probe answers as the attack says instead of
//! running a probe (each type gets one plain resource `<type>-1` unless the attack changes it):
//!
//! - `plain`: nothing wrong, a sync completes.
//! - `wrong-type`: the `fetch` listing returns an `environment` resource.
//! - `identical-duplicate`: the `fetch` resource comes twice, on two pages, the same each time.
//! - `conflicting-duplicate`: the same, but its profile differs between the two pages.
//! - `token-cycle`: the `fetch` listing pages a → b → c → a … (a cycle, never the same token twice in a row).
//! - `endless`: the `fetch` listing never ends: a new page token every page, as a deadline test needs.
//! - `foreign-entitlement`: a resource's entitlements include one of another resource.
//! - `foreign-grant`: a resource's grants include one of an entitlement it does not have.

use crate::exports::idgov::connector::connector::{EntitlementPage, GrantPage};
use crate::idgov::connector::types::{
    ConfigValue, Entitlement, EntitlementPurpose, Grant, Resource, ResourcePage, ResourceRef,
};

const KEY: &str = "listing-attack";

fn attack(config: &[ConfigValue]) -> Option<&str> {
    config.iter().find(|entry| entry.key == KEY).map(|entry| entry.value.as_str())
}

fn resource(resource_type: &str, id: &str, profile: &str) -> Resource {
    Resource {
        resource_type: resource_type.to_owned(),
        id: id.to_owned(),
        display_name: id.to_owned(),
        parent: None,
        profile_json: profile.to_owned(),
    }
}

fn page(items: Vec<Resource>, next: Option<&str>) -> ResourcePage {
    ResourcePage { items, next_page_token: next.map(str::to_owned), notices: vec![] }
}

/// The page the attack gives for `resource_type` at `token`, or `None` without an attack.
pub fn resources(config: &[ConfigValue], resource_type: &str, token: Option<&str>) -> Option<ResourcePage> {
    let attack = attack(config)?;
    let plain = resource(resource_type, &format!("{resource_type}-1"), "{}");
    if resource_type != "fetch" {
        return Some(page(vec![plain], None));
    }
    Some(match (attack, token) {
        ("wrong-type", _) => page(vec![resource("environment", "planted", "{}")], None),
        ("identical-duplicate", None) => page(vec![plain], Some("second")),
        ("identical-duplicate", Some(_)) => page(vec![plain], None),
        ("conflicting-duplicate", None) => {
            page(vec![resource("fetch", "fetch-1", r#"{"owner":"alice"}"#)], Some("second"))
        }
        ("conflicting-duplicate", Some(_)) => page(vec![resource("fetch", "fetch-1", r#"{"owner":"mallory"}"#)], None),
        ("token-cycle", token) => {
            let next = match token {
                None | Some("c") => "a",
                Some("a") => "b",
                _ => "c",
            };
            page(vec![resource("fetch", &format!("fetch-{next}"), "{}")], Some(next))
        }
        ("endless", token) => {
            let number: u64 = token.and_then(|text| text.parse().ok()).unwrap_or(0) + 1;
            page(vec![resource("fetch", &format!("fetch-{number}"), "{}")], Some(&number.to_string()))
        }
        _ => page(vec![plain], None),
    })
}

fn entitlement(of: &Resource) -> Entitlement {
    Entitlement {
        id: format!("{}:{}:member", of.resource_type, of.id),
        resource: ResourceRef { resource_type: of.resource_type.clone(), id: of.id.clone() },
        slug: "member".into(),
        display_name: "member".into(),
        description: String::new(),
        purpose: EntitlementPurpose::Assignment,
        grantable_to: vec!["fetch".into()],
    }
}

/// A resource's entitlements under an attack: its own `member`, and with
/// `foreign-entitlement` also one of another resource.
pub fn entitlements(config: &[ConfigValue], of: &Resource) -> Option<EntitlementPage> {
    let attack = attack(config)?;
    let mut items = vec![entitlement(of)];
    if attack == "foreign-entitlement" {
        items.push(entitlement(&resource("environment", "environment-1", "{}")));
    }
    Some(EntitlementPage { items, next_page_token: None, notices: vec![] })
}

/// A resource's grants under an attack: `fetch-1` holds its `member`, and with `foreign-grant`
/// also the `member` of `environment-1`, from the listing of another resource.
pub fn grants(config: &[ConfigValue], of: &Resource) -> Option<GrantPage> {
    let attack = attack(config)?;
    let holder = ResourceRef { resource_type: "fetch".into(), id: "fetch-1".into() };
    let grant = |entitlement_id: String| Grant {
        id: format!("{entitlement_id}:fetch:fetch-1"),
        entitlement_id,
        principal: holder.clone(),
    };
    let mut items = vec![grant(entitlement(of).id)];
    if attack == "foreign-grant" && of.resource_type == "fetch" {
        items.push(grant("environment:environment-1:member".into()));
    }
    Some(GrantPage { items, next_page_token: None, notices: vec![] })
}
