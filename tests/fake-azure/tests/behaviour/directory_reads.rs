use fake_azure::Tenant;
use serde_json::Value;

use crate::client::{Session, keys};

#[tokio::test]
async fn users_without_select_omit_user_type_account_enabled_and_sync_flag() {
    let session = Session::sample().await;
    let body = session.graph("/v1.0/users").await.json();
    let first = keys(&body["value"][0]);
    for hidden in ["userType", "accountEnabled", "onPremisesSyncEnabled"] {
        assert!(!first.contains(hidden), "{hidden} in {first:?}");
    }
    assert!(body["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#users"));
}

#[tokio::test]
async fn select_narrows_properties_and_context() {
    let session = Session::sample().await;
    let body = session.graph("/v1.0/users?$select=id,userType,accountEnabled,onPremisesSyncEnabled").await.json();
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#users(id,userType,accountEnabled,onPremisesSyncEnabled)")
    );
    let item = &body["value"][0];
    assert_eq!(keys(item).len(), 4);
    assert!(item["accountEnabled"].is_boolean());
}

#[tokio::test]
async fn selecting_an_unknown_property_is_400() {
    let session = Session::sample().await;
    assert_eq!(session.graph("/v1.0/users?$select=id,notAProperty").await.status, 400);
}

#[tokio::test]
async fn mailbox_settings_give_the_user_purpose_or_404_without_mailbox() {
    let session = Session::sample().await;
    let room = session.id_of_user("Conf Room Adams");
    let purpose = session.graph(&format!("/v1.0/users/{room}/mailboxSettings?$select=userPurpose")).await.json();
    assert_eq!(purpose["userPurpose"], "room");
    let property = session.graph(&format!("/v1.0/users/{room}/mailboxSettings/userPurpose")).await.json();
    assert_eq!(property["value"], "room");
    let isaiah = session.id_of_user("Isaiah Langer");
    let missing = session.graph(&format!("/v1.0/users/{isaiah}/mailboxSettings")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], "MailboxNotEnabledForRESTAPI");
}

#[tokio::test]
async fn members_carry_their_odata_type_and_only_their_own_selected_properties() {
    let session = Session::sample().await;
    let group = session.id_of_group("Devices and Automation");
    let body = session.graph(&format!("/v1.0/groups/{group}/members?$select=id,servicePrincipalType")).await.json();
    assert!(body["@odata.context"].as_str().unwrap().ends_with("$metadata#directoryObjects(id,servicePrincipalType)"));
    let items = body["value"].as_array().unwrap();
    let types: Vec<&str> = items.iter().map(|item| item["@odata.type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "#microsoft.graph.device",
            "#microsoft.graph.orgContact",
            "#microsoft.graph.servicePrincipal",
            "#microsoft.graph.user"
        ]
    );
    assert_eq!(items[2]["servicePrincipalType"], "ManagedIdentity");
    assert!(items[3].get("servicePrincipalType").is_none());
}

#[tokio::test]
async fn unknown_object_is_404_resource_not_found_with_graphs_message() {
    let session = Session::sample().await;
    let id = "68be84bf-a585-4776-80b3-30aa5207aa22";
    let reply = session.graph(&format!("/v1.0/groups/{id}/members")).await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.json()["error"]["message"],
        format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present.")
    );
}

#[tokio::test]
async fn beta_is_an_alias_of_v1() {
    let session = Session::sample().await;
    let body = session.graph("/beta/servicePrincipals?$select=id").await.json();
    assert_eq!(body["value"].as_array().unwrap().len(), 6);
    assert!(body["@odata.context"].as_str().unwrap().contains("/beta/$metadata#servicePrincipals(id)"));
}

#[tokio::test]
async fn directory_object_by_id_reports_its_type() {
    let session = Session::sample().await;
    let tenant = session.azure.tenant();
    let device = &tenant.other_objects[0].id;
    let body = session.graph(&format!("/v1.0/directoryObjects/{device}")).await.json();
    assert_eq!(body["@odata.type"], "#microsoft.graph.device");
    assert_eq!(tenant.directory_object_kind(device), Some("#microsoft.graph.device"));
}

#[tokio::test]
async fn organization_names_the_tenant() {
    let session = Session::sample().await;
    let body = session.graph("/v1.0/organization").await.json();
    assert_eq!(body["value"][0]["id"], Tenant::sample().tenant_id);
}

#[tokio::test]
async fn app_role_assigned_to_lists_users_groups_and_service_principals() {
    let session = Session::sample().await;
    let sp = session.id_of_service_principal("Contoso Expenses");
    let body = session.graph(&format!("/v1.0/servicePrincipals/{sp}/appRoleAssignedTo?$top=2")).await;
    let pages = session.all_pages(body, "@odata.nextLink", &[]).await;
    let kinds: Vec<Value> = pages
        .iter()
        .flat_map(|page| page["value"].as_array().unwrap().clone())
        .map(|item| item["principalType"].clone())
        .collect();
    assert_eq!(kinds, ["User", "User", "Group", "User", "ServicePrincipal"]);
}

#[tokio::test]
async fn role_assignments_expand_principal_with_its_type() {
    let session = Session::sample().await;
    let body = session.graph("/v1.0/roleManagement/directory/roleAssignments?$expand=principal").await.json();
    assert!(body["@odata.context"].as_str().unwrap().ends_with("roleAssignments(principal())"));
    assert_eq!(body["value"][1]["principal"]["@odata.type"], "#microsoft.graph.group");
}

#[tokio::test]
async fn expanded_owners_stop_at_twenty_and_pages_at_a_hundred_groups() {
    let mut tenant =
        Tenant::generate(&fake_azure::TenantShape { users: 50, groups: 150, ..fake_azure::TenantShape::small() });
    tenant.groups[0].owners = tenant.users.iter().take(25).map(|user| user.id.clone()).collect();
    let session = Session::start(tenant).await;
    let body = session.graph("/v1.0/groups?$top=999&$select=id&$expand=owners($select=id)").await.json();
    let groups = body["value"].as_array().expect("a page of groups");
    assert_eq!(groups.len(), 100, "expanding a collection caps the page at 100");
    assert!(body["@odata.nextLink"].is_string());
    let owners = groups[0]["owners"].as_array().expect("expanded owners");
    assert_eq!(owners.len(), 20, "25 owners, 20 expanded, and nothing says so");
    assert_eq!(keys(&owners[0]), ["@odata.type", "id"].map(String::from).into_iter().collect());
}

#[tokio::test]
async fn one_service_principal_expands_its_owners_like_the_listing() {
    let tenant = Tenant::sample();
    let application = tenant
        .service_principals
        .iter()
        .find(|sp| !sp.owners.is_empty())
        .expect("a service principal with owners")
        .clone();
    let session = Session::start(tenant).await;
    let path = format!("/v1.0/servicePrincipals/{}?$select=id,displayName&$expand=owners($select=id)", application.id);
    let body = session.graph(&path).await.json();
    assert!(body["@odata.context"].as_str().unwrap().ends_with("(id,displayName,owners())/$entity"), "{body}");
    let owners: Vec<&str> =
        body["owners"].as_array().expect("expanded owners").iter().filter_map(|owner| owner["id"].as_str()).collect();
    assert_eq!(owners, application.owners.iter().map(String::as_str).collect::<Vec<_>>());
    let unknown = session.graph(&format!("/v1.0/servicePrincipals/{}?$expand=manager", application.id)).await;
    assert_eq!(unknown.status, 400, "a navigation property it does not have");
}
