use std::collections::BTreeSet;

use serde_json::Value;

use crate::client::Session;

struct Subscriptions {
    production: String,
    development: String,
}

fn subscriptions(session: &Session) -> Subscriptions {
    let tenant = session.azure.tenant();
    Subscriptions {
        production: tenant.subscriptions[0].subscription_id.clone(),
        development: tenant.subscriptions[1].subscription_id.clone(),
    }
}

/// The distinct `properties.scope` values of a role-assignment list, with the subscription ids abbreviated.
fn scopes(body: &Value, subscriptions: &Subscriptions) -> BTreeSet<String> {
    body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            item["properties"]["scope"]
                .as_str()
                .unwrap()
                .replace(&subscriptions.production, "prod")
                .replace(&subscriptions.development, "dev")
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

const MANAGEMENT_GROUP: &str = "/providers/Microsoft.Management/managementGroups/contoso-root";

#[tokio::test]
async fn subscription_listing_includes_resource_groups_and_inherited_assignments() {
    let session = Session::sample().await;
    let subs = subscriptions(&session);
    let reply = session
        .arm(&format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01",
            subs.production
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let expected = set(&[
        "/",
        MANAGEMENT_GROUP,
        "/subscriptions/prod",
        "/subscriptions/prod/resourceGroups/rg-shared",
        "/subscriptions/prod/resourceGroups/rg-build",
    ]);
    assert_eq!(scopes(&reply.json(), &subs), expected);
}

#[tokio::test]
async fn resource_group_listing_includes_inherited_assignments_but_not_the_same_name_elsewhere() {
    let session = Session::sample().await;
    let subs = subscriptions(&session);
    let reply = session
        .arm(&format!(
            "/subscriptions/{}/resourceGroups/rg-shared/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01",
            subs.development
        ))
        .await;
    let expected = set(&["/", MANAGEMENT_GROUP, "/subscriptions/dev", "/subscriptions/dev/resourceGroups/rg-shared"]);
    assert_eq!(scopes(&reply.json(), &subs), expected);
}

#[tokio::test]
async fn at_scope_filter_returns_the_scope_and_above_but_not_below() {
    let session = Session::sample().await;
    let subs = subscriptions(&session);
    let reply = session
        .arm(&format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope()",
            subs.production
        ))
        .await;
    assert_eq!(scopes(&reply.json(), &subs), set(&["/", MANAGEMENT_GROUP, "/subscriptions/prod"]));
}

#[tokio::test]
async fn role_definition_ids_are_qualified_by_the_listing_subscription() {
    let session = Session::sample().await;
    let subs = subscriptions(&session);
    let body = session
        .arm(&format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01",
            subs.production
        ))
        .await
        .json();
    let prefix = format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/", subs.production);
    assert!(
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|item| item["properties"]["roleDefinitionId"].as_str().unwrap().starts_with(&prefix))
    );
}

#[tokio::test]
async fn custom_roles_are_listed_only_where_assignable() {
    let session = Session::sample().await;
    let subs = subscriptions(&session);
    let names = |body: Value| -> Vec<String> {
        body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|role| role["properties"]["roleName"].as_str().unwrap().to_owned())
            .collect()
    };
    let path = |sub: &str| {
        format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01")
    };
    let production = names(session.arm(&path(&subs.production)).await.json());
    let development = names(session.arm(&path(&subs.development)).await.json());
    assert!(production.contains(&"Contoso VM Operator".to_owned()));
    assert!(!development.contains(&"Contoso VM Operator".to_owned()));
    assert!(development.contains(&"Owner".to_owned()));
}

#[tokio::test]
async fn arm_next_links_page_through_every_assignment_once() {
    let session = Session::sample().await;
    session.azure.arm_page_size(3);
    let subs = subscriptions(&session);
    let first = session
        .arm(&format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01",
            subs.production
        ))
        .await;
    let pages = session.all_pages(first, "nextLink", &[]).await;
    let names: Vec<String> = pages
        .iter()
        .flat_map(|page| page["value"].as_array().unwrap().clone())
        .map(|item| item["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pages.len(), 3);
    assert_eq!(names.len(), 7);
    assert_eq!(names.iter().collect::<BTreeSet<_>>().len(), 7);
    let next = pages[0]["nextLink"].as_str().unwrap();
    assert!(
        next.starts_with(&format!("{}/subscriptions/", session.azure.arm_url()))
            && next.contains("api-version=2022-04-01&$skiptoken=")
    );
}

#[tokio::test]
async fn unknown_subscription_is_404_subscription_not_found() {
    let session = Session::sample().await;
    let reply =
        session.arm("/subscriptions/00000000-1111-2222-3333-444444444444/resourcegroups?api-version=2021-04-01").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["code"], "SubscriptionNotFound");
}

#[tokio::test]
async fn missing_or_unsupported_api_version_is_400() {
    let session = Session::sample().await;
    let missing = session.arm("/subscriptions").await;
    assert_eq!((missing.status, missing.json()["error"]["code"].as_str()), (400, Some("MissingApiVersionParameter")));
    let unsupported = session.arm("/subscriptions?api-version=1999-01-01").await;
    assert_eq!(unsupported.json()["error"]["code"], "InvalidApiVersionParameter");
}

#[tokio::test]
async fn resource_groups_path_is_case_insensitive() {
    let session = Session::sample().await;
    let subs = subscriptions(&session);
    for segment in ["resourcegroups", "resourceGroups"] {
        let reply = session.arm(&format!("/subscriptions/{}/{segment}?api-version=2021-04-01", subs.production)).await;
        assert_eq!(reply.json()["value"].as_array().unwrap().len(), 2);
    }
}

#[tokio::test]
async fn user_assigned_identities_come_from_managed_identity_service_principals() {
    let session = Session::sample().await;
    let subs = subscriptions(&session);
    let reply = session
        .arm(&format!(
            "/subscriptions/{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=2023-01-31",
            subs.production
        ))
        .await
        .json();
    assert_eq!(reply["value"][0]["name"], "id-deploy");
    assert_eq!(reply["value"].as_array().unwrap().len(), 1);
}
