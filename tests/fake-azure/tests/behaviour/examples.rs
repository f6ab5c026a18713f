//! The fake's payloads agree with Microsoft's published examples (copied into `examples/`):
//! same envelope keys, same item keys for the properties the fake serves, same context and link forms.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::client::{GRAPH_SCOPE, Session, keys};

fn example(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The response body of a Graph/identity wrapper file.
fn sample_body(name: &str) -> Value {
    example(name)["response"]["body"].clone()
}

/// The body of an ARM `x-ms-examples` file for a status.
fn arm_body(name: &str, status: &str) -> Value {
    example(name)["responses"][status]["body"].clone()
}

fn assert_subset(expected: &BTreeSet<String>, actual: &BTreeSet<String>, what: &str) {
    let missing: Vec<&String> = expected.difference(actual).collect();
    assert!(missing.is_empty(), "{what}: missing {missing:?} (fake has {actual:?})");
}

#[tokio::test]
async fn token_success_and_errors_have_the_documented_keys() {
    let session = Session::sample().await;
    let tenant = session.azure.tenant();
    let ok = session
        .http
        .request_token(&session.azure, &tenant.tenant_id, &tenant.client_id, &tenant.client_secret, GRAPH_SCOPE)
        .await;
    assert_subset(&keys(&sample_body("token_client_credentials_success.json")), &keys(&ok.json()), "token success");

    let wrong =
        session.http.request_token(&session.azure, &tenant.tenant_id, &tenant.client_id, "nope", GRAPH_SCOPE).await;
    let documented = example("token_error_invalid_client_AADSTS7000215.json");
    assert_eq!(wrong.status, documented["response"]["status"]);
    assert_eq!(keys(&wrong.json()), keys(&documented["response"]["body"]));
    let description = wrong.json()["error_description"].as_str().unwrap().to_owned();
    assert!(
        description.contains("\r\nTrace ID: ")
            && description.contains("\r\nCorrelation ID: ")
            && description.contains("\r\nTimestamp: ")
    );

    let bad_scope = session
        .http
        .request_token(
            &session.azure,
            &tenant.tenant_id,
            &tenant.client_id,
            &tenant.client_secret,
            "https://foo.microsoft.com/.default",
        )
        .await;
    let documented = example("token_error_invalid_scope_AADSTS70011.json");
    assert_eq!(bad_scope.status, documented["response"]["status"]);
    assert_subset(&keys(&documented["response"]["body"]), &keys(&bad_scope.json()), "invalid_scope");
    assert_eq!(bad_scope.json()["error"], documented["response"]["body"]["error"]);
}

#[tokio::test]
async fn graph_error_envelopes_match_the_samples() {
    let session = Session::sample().await;
    let not_found = session.graph("/v1.0/users/68be84bf-a585-4776-80b3-30aa5207aa22").await.json();
    let documented = sample_body("graph_error_404_request_resourcenotfound.json");
    assert_eq!(not_found["error"]["code"], documented["error"]["code"]);
    assert_eq!(not_found["error"]["message"], documented["error"]["message"]);
    assert_subset(&keys(&documented["error"]), &keys(&not_found["error"]), "404 error");
    assert_subset(
        &keys(&documented["error"]["innerError"]),
        &keys(&not_found["error"]["innerError"]),
        "404 innerError",
    );

    session.azure.forbid("/v1.0/groups");
    let forbidden = session.graph("/v1.0/groups").await.json();
    let documented = sample_body("graph_error_403_authorization_requestdenied.json");
    assert_eq!(forbidden["error"]["code"], documented["error"]["code"]);
    assert_eq!(forbidden["error"]["message"], documented["error"]["message"]);
    assert_subset(
        &keys(&documented["error"]["innerError"]),
        &keys(&forbidden["error"]["innerError"]),
        "403 innerError",
    );

    session.azure.throttle_every(1);
    let throttled = session.graph("/v1.0/users").await.json();
    let documented = sample_body("graph_error_429_throttled.json");
    assert_eq!(keys(&throttled["error"]), keys(&documented["error"]));
    assert_subset(
        &keys(&documented["error"]["innerError"]),
        &keys(&throttled["error"]["innerError"]),
        "429 innerError",
    );
    assert_eq!(throttled["error"]["innerError"]["code"], documented["error"]["innerError"]["code"]);
}

#[tokio::test]
async fn users_list_items_have_the_default_property_set_of_the_sample() {
    let session = Session::sample().await;
    let body = session.graph("/v1.0/users").await.json();
    let documented = sample_body("graph_users_list.json");
    assert_eq!(keys(&body), keys(&documented));
    assert_eq!(keys(&body["value"][0]), keys(&documented["value"][0]));
    let context = |value: &Value| value["@odata.context"].as_str().unwrap().split("/v1.0/").nth(1).unwrap().to_owned();
    assert_eq!(context(&body), context(&documented));
}

#[tokio::test]
async fn selected_and_counted_lists_have_the_samples_shape() {
    let session = Session::sample().await;
    let groups = session.graph_eventual("/v1.0/groups?$count=true&$select=id,displayName").await.json();
    let documented = sample_body("graph_groups_list_select_count.json");
    assert_eq!(keys(&groups), keys(&documented));
    assert_eq!(keys(&groups["value"][0]), keys(&documented["value"][0]));
    assert!(groups["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#groups(id,displayName)"));

    let guests = session
        .graph_eventual("/v1.0/users?$select=id,displayName,mail&$filter=endsWith(userPrincipalName,'%23EXT%23@contosofake.onmicrosoft.com')&$count=true")
        .await
        .json();
    let documented = sample_body("graph_users_list_guests_b2b.json");
    assert_eq!(keys(&guests), keys(&documented));
    let mut documented_item = keys(&documented["value"][0]);
    documented_item.remove("identities");
    assert_eq!(keys(&guests["value"][0]), documented_item);

    let groups = session.graph("/v1.0/groups").await.json();
    assert_subset(&keys(&sample_body("graph_groups_list.json")["value"][0]), &keys(&groups["value"][0]), "group item");
}

#[tokio::test]
async fn directory_object_collections_match_the_members_and_owners_samples() {
    let session = Session::sample().await;
    let group = session.id_of_group("Finance Team");
    let owners = session.graph(&format!("/v1.0/groups/{group}/owners")).await.json();
    let documented = sample_body("graph_groups_owners_list.json");
    assert_eq!(owners["@odata.context"].as_str().unwrap().rsplit('#').next(), Some("directoryObjects"));
    assert_subset(&keys(&documented["value"][0]), &keys(&owners["value"][0]), "owner item");
    let members = session.graph(&format!("/v1.0/groups/{group}/members")).await.json();
    assert_eq!(keys(&members), keys(&sample_body("graph_groups_members_list.json")));
    assert_subset(
        &keys(&sample_body("graph_groups_members_list.json")["value"][0]),
        &keys(&members["value"][0]),
        "member item",
    );
}

#[tokio::test]
async fn next_link_has_the_documented_form() {
    let session = Session::sample().await;
    let documented =
        sample_body("graph_paging_users_nextlink_fragment.json")["@odata.nextLink"].as_str().unwrap().to_owned();
    let link = session.graph("/v1.0/users?$top=5").await.json()["@odata.nextLink"].as_str().unwrap().to_owned();
    let shape = |link: &str| link.split_once("/v1.0/").unwrap().1.split("X%27").next().unwrap().to_owned();
    assert_eq!(shape(&link), shape(&documented));
    assert!(link.ends_with("%27") && documented.ends_with("%27"));
}

#[tokio::test]
async fn role_management_payloads_match_the_samples() {
    let session = Session::sample().await;
    let definitions = session.graph("/v1.0/roleManagement/directory/roleDefinitions").await.json();
    let documented = sample_body("graph_rolemanagement_roledefinitions_list.json");
    assert_subset(&keys(&documented["value"][0]), &keys(&definitions["value"][0]), "role definition");

    let assignments = session.graph("/v1.0/roleManagement/directory/roleAssignments").await.json();
    let documented = sample_body("graph_rolemanagement_roleassignments_list_filter_principal.json");
    assert_eq!(keys(&assignments["value"][0]), keys(&documented["value"][0]));

    let schedules = session.graph("/v1.0/roleManagement/directory/roleEligibilitySchedules").await.json();
    let documented = sample_body("graph_rolemanagement_roleeligibilityschedules_list.json");
    assert_eq!(keys(&schedules["value"][0]), keys(&documented["value"][0]));
    assert_eq!(keys(&schedules["value"][0]["scheduleInfo"]), keys(&documented["value"][0]["scheduleInfo"]));
    assert_eq!(
        keys(&schedules["value"][0]["scheduleInfo"]["expiration"]),
        keys(&documented["value"][0]["scheduleInfo"]["expiration"])
    );

    let lee = session.id_of_user("Lee Gu");
    let created = session
        .graph_with(
            "POST",
            "/v1.0/roleManagement/directory/roleAssignments",
            &[],
            Some(json!({ "principalId": lee, "roleDefinitionId": "62e90394-69f5-4237-9190-012177145e10", "directoryScopeId": "/" })),
        )
        .await;
    let documented = example("graph_rolemanagement_roleassignments_create_tenant.json");
    assert_eq!(created.status, documented["response"]["status"]);
    assert_eq!(keys(&created.json()), keys(&documented["response"]["body"]));
    assert!(
        created.json()["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#roleManagement/directory/roleAssignments/$entity")
    );
}

#[tokio::test]
async fn app_role_assignments_match_the_samples() {
    let session = Session::sample().await;
    let sp = session.id_of_service_principal("Contoso Expenses");
    let listed = session.graph(&format!("/v1.0/servicePrincipals/{sp}/appRoleAssignedTo")).await.json();
    let documented = sample_body("graph_serviceprincipals_approleassignedto_list.json");
    assert_eq!(keys(&listed["value"][0]), keys(&documented["value"][0]));
    assert!(
        listed["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with(&format!("$metadata#servicePrincipals('{sp}')/appRoleAssignedTo"))
    );

    let group = session.id_of_group("Marketing");
    let created = session
        .graph_with(
            "POST",
            &format!("/v1.0/servicePrincipals/{sp}/appRoleAssignedTo"),
            &[],
            Some(
                json!({ "principalId": group, "resourceId": sp, "appRoleId": "00000000-0000-0000-0000-000000000000" }),
            ),
        )
        .await;
    let documented = example("graph_serviceprincipals_approleassignedto_create.json");
    assert_eq!(created.status, documented["response"]["status"]);
    assert_eq!(keys(&created.json()), keys(&documented["response"]["body"]));
    assert_eq!(created.json()["principalType"], "Group");
}

#[tokio::test]
async fn arm_lists_match_the_samples() {
    let session = Session::sample().await;
    let subscriptions = session.arm("/subscriptions?api-version=2022-12-01").await.json();
    let documented = arm_body("arm_subscriptions_list.json", "200");
    assert_eq!(keys(&subscriptions["value"][0]), keys(&documented["value"][0]));
    assert_eq!(
        keys(&subscriptions["value"][0]["subscriptionPolicies"]),
        keys(&documented["value"][0]["subscriptionPolicies"])
    );

    let tenants = session.arm("/tenants?api-version=2022-12-01").await.json();
    let documented = arm_body("arm_tenants_list.json", "200");
    assert_eq!(keys(&tenants["value"][0]), keys(&documented["value"][1]));
    assert_eq!(tenants["value"][0]["tenantCategory"], "Home");

    let production = session.azure.tenant().subscriptions[0].subscription_id.clone();
    let groups =
        session.arm(&format!("/subscriptions/{production}/resourcegroups?api-version=2021-04-01")).await.json();
    let documented = arm_body("arm_resourcegroup_create_shape.json", "200");
    assert_subset(&keys(&documented), &keys(&groups["value"][0]), "resource group");
    assert_eq!(groups["value"][0]["properties"], documented["properties"]);

    let definitions = session
        .arm(&format!(
            "/subscriptions/{production}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01"
        ))
        .await
        .json();
    let documented = arm_body("arm_roledefinitions_list_scope.json", "200");
    assert_eq!(keys(&definitions["value"][0]), keys(&documented["value"][0]));
    assert_eq!(keys(&definitions["value"][0]["properties"]), keys(&documented["value"][0]["properties"]));
}

#[tokio::test]
async fn arm_role_assignment_payloads_match_the_samples() {
    let session = Session::sample().await;
    let production = session.azure.tenant().subscriptions[0].subscription_id.clone();
    let listed = session
        .arm(&format!("/subscriptions/{production}/resourceGroups/rg-shared/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"))
        .await
        .json();
    for name in ["arm_roleassignments_list_scope_subscription.json", "arm_roleassignments_list_resourcegroup.json"] {
        let documented = arm_body(name, "200");
        assert_eq!(keys(&listed["value"][0]), keys(&documented["value"][0]), "{name}");
        assert_eq!(keys(&listed["value"][0]["properties"]), keys(&documented["value"][0]["properties"]), "{name}");
    }

    let lee = session.id_of_user("Lee Gu");
    let name = "0f2a6c1d-3b4e-4f5a-8b9c-1d2e3f4a5b6c";
    let path = format!(
        "/subscriptions/{production}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01"
    );
    let documented = example("arm_roleassignments_create_subscription.json");
    let request_body = json!({ "properties": { "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7", "principalId": lee, "principalType": "User" }});
    let created = session.arm_with("PUT", &path, Some(request_body)).await;
    assert_eq!(created.status, 201);
    assert_eq!(keys(&created.json()), keys(&documented["responses"]["201"]["body"]));
    assert_eq!(keys(&created.json()["properties"]), keys(&documented["responses"]["201"]["body"]["properties"]));

    let deleted = session.arm_with("DELETE", &path, None).await;
    let documented = example("arm_roleassignments_delete.json");
    assert_eq!(keys(&deleted.json()), keys(&documented["responses"]["200"]["body"]));
    assert_eq!(session.arm_with("DELETE", &path, None).await.status, 204);
}
