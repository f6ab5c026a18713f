use fake_azure::Tenant;
use serde_json::json;

use crate::client::Session;

fn reference(session: &Session, id: &str) -> serde_json::Value {
    json!({ "@odata.id": format!("{}/v1.0/directoryObjects/{id}", session.azure.graph_url()) })
}

#[tokio::test]
async fn adding_a_group_member_changes_state_and_a_second_add_is_400() {
    let session = Session::sample().await;
    let group = session.id_of_group("Marketing");
    let lee = session.id_of_user("Lee Gu");
    let path = format!("/v1.0/groups/{group}/members/$ref");
    let added = session.graph_with("POST", &path, &[], Some(reference(&session, &lee))).await;
    assert_eq!(added.status, 204, "{}", added.text);
    assert!(session.azure.tenant().groups.iter().any(|g| g.id == group && g.members.contains(&lee)));
    let again = session.graph_with("POST", &path, &[], Some(reference(&session, &lee))).await;
    assert_eq!(again.status, 400);
    assert_eq!(
        again.json()["error"]["message"],
        "One or more added object references already exist for the following modified properties: 'members'."
    );
}

#[tokio::test]
async fn adding_an_unknown_object_is_404() {
    let session = Session::sample().await;
    let group = session.id_of_group("Marketing");
    let reply = session
        .graph_with(
            "POST",
            &format!("/v1.0/groups/{group}/members/$ref"),
            &[],
            Some(reference(&session, "0badc0de-0000-4000-8000-000000000000")),
        )
        .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["code"], "Request_ResourceNotFound");
}

#[tokio::test]
async fn removing_a_member_is_204_then_404() {
    let session = Session::sample().await;
    let group = session.id_of_group("Finance Team");
    let alex = session.id_of_user("Alex Wilber");
    let path = format!("/v1.0/groups/{group}/members/{alex}/$ref");
    assert_eq!(session.graph_with("DELETE", &path, &[], None).await.status, 204);
    assert!(!session.azure.tenant().groups.iter().any(|g| g.id == group && g.members.contains(&alex)));
    let again = session.graph_with("DELETE", &path, &[], None).await;
    assert_eq!((again.status, again.json()["error"]["code"].as_str()), (404, Some("Request_ResourceNotFound")));
}

#[tokio::test]
async fn service_principal_owners_can_be_added_and_removed() {
    let session = Session::sample().await;
    let sp = session.id_of_service_principal("Contoso Expenses");
    let megan = session.id_of_user("Megan Bowen");
    let add = session
        .graph_with(
            "POST",
            &format!("/v1.0/servicePrincipals/{sp}/owners/$ref"),
            &[],
            Some(reference(&session, &megan)),
        )
        .await;
    assert_eq!(add.status, 204);
    let owners = session.graph(&format!("/v1.0/servicePrincipals/{sp}/owners?$select=id")).await.json();
    assert_eq!(owners["value"].as_array().unwrap().len(), 3);
    let remove =
        session.graph_with("DELETE", &format!("/v1.0/servicePrincipals/{sp}/owners/{megan}/$ref"), &[], None).await;
    assert_eq!(remove.status, 204);
}

#[tokio::test]
async fn app_role_assignment_is_created_once_and_deleted_by_id() {
    let session = Session::sample().await;
    let tenant = session.azure.tenant();
    let sp = tenant.service_principals.iter().find(|sp| sp.display_name == "Contoso Expenses").unwrap();
    let approver = sp.app_roles[0].id.clone();
    let lee = session.id_of_user("Lee Gu");
    let body = json!({ "principalId": lee, "resourceId": sp.id, "appRoleId": approver });
    let path = format!("/v1.0/servicePrincipals/{}/appRoleAssignedTo", sp.id);
    let created = session.graph_with("POST", &path, &[], Some(body.clone())).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let created = created.json();
    assert_eq!(created["principalType"], "User");
    assert_eq!(created["principalDisplayName"], "Lee Gu");
    let duplicate = session.graph_with("POST", &path, &[], Some(body)).await;
    assert_eq!(duplicate.status, 400);
    assert_eq!(duplicate.json()["error"]["message"], "Permission being assigned already exists on the object");
    let id = created["id"].as_str().unwrap();
    assert_eq!(session.graph_with("DELETE", &format!("{path}/{id}"), &[], None).await.status, 204);
    assert_eq!(session.graph_with("DELETE", &format!("{path}/{id}"), &[], None).await.status, 404);
}

#[tokio::test]
async fn directory_role_assignment_is_created_once_and_deleted() {
    let session = Session::sample().await;
    let lee = session.id_of_user("Lee Gu");
    let body = json!({ "principalId": lee, "roleDefinitionId": "fe930be7-5e62-47db-91af-98c3a49a38b1", "directoryScopeId": "/" });
    let path = "/v1.0/roleManagement/directory/roleAssignments";
    let created = session.graph_with("POST", path, &[], Some(body.clone())).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let duplicate = session.graph_with("POST", path, &[], Some(body)).await;
    assert_eq!(duplicate.status, 400);
    assert_eq!(
        duplicate.json()["error"]["message"],
        "A conflicting object with one or more of the specified property values is present in the directory."
    );
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(session.graph_with("DELETE", &format!("{path}/{id}"), &[], None).await.status, 204);
    assert_eq!(session.azure.tenant().role_assignments.len(), 4);
}

#[tokio::test]
async fn eligibility_requests_assign_and_remove_eligibility() {
    let session = Session::sample().await;
    let lee = session.id_of_user("Lee Gu");
    let request = |action: &str| {
        json!({
            "action": action,
            "principalId": lee,
            "roleDefinitionId": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
            "directoryScopeId": "/",
            "justification": "test",
            "scheduleInfo": { "startDateTime": "2025-01-01T00:00:00Z", "expiration": { "type": "noExpiration" } }
        })
    };
    let path = "/v1.0/roleManagement/directory/roleEligibilityScheduleRequests";
    let assigned = session.graph_with("POST", path, &[], Some(request("adminAssign"))).await;
    assert_eq!(assigned.status, 201, "{}", assigned.text);
    assert_eq!(session.azure.tenant().role_eligibilities.unwrap().len(), 3);
    let removed = session.graph_with("POST", path, &[], Some(request("adminRemove"))).await;
    assert_eq!(removed.status, 201);
    assert_eq!(session.azure.tenant().role_eligibilities.unwrap().len(), 2);
}

#[tokio::test]
async fn tenant_without_p2_answers_eligibility_listing_with_a_licence_error() {
    let session = Session::start(Tenant { role_eligibilities: None, ..Tenant::sample() }).await;
    let reply = session.graph("/v1.0/roleManagement/directory/roleEligibilitySchedules").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["code"], "AadPremiumLicenseRequired");
    assert!(reply.json()["error"]["message"].as_str().unwrap().contains("P2"));
}

#[tokio::test]
async fn arm_role_assignment_put_is_201_then_409_for_the_same_grant_and_delete_is_200_then_204() {
    let session = Session::sample().await;
    let production = session.azure.tenant().subscriptions[0].subscription_id.clone();
    let lee = session.id_of_user("Lee Gu");
    let scope = format!("/subscriptions/{production}/resourceGroups/rg-build");
    let body = json!({ "properties": {
        "roleDefinitionId": format!("/subscriptions/{production}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"),
        "principalId": lee,
        "principalType": "User"
    }});
    let path =
        |name: &str| format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01");
    let created = session.arm_with("PUT", &path("5a0b4f3e-1d2c-4b5a-9e8f-7d6c5b4a3f21"), Some(body.clone())).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json()["properties"]["scope"], scope);
    let conflict = session.arm_with("PUT", &path("6b1c5a4f-2e3d-4c6b-8f9a-8e7d6c5b4a32"), Some(body)).await;
    assert_eq!((conflict.status, conflict.json()["error"]["code"].as_str()), (409, Some("RoleAssignmentExists")));
    let deleted = session.arm_with("DELETE", &path("5a0b4f3e-1d2c-4b5a-9e8f-7d6c5b4a3f21"), None).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json()["properties"]["principalId"], lee);
    let absent = session.arm_with("DELETE", &path("5a0b4f3e-1d2c-4b5a-9e8f-7d6c5b4a3f21"), None).await;
    assert_eq!(absent.status, 204);
}
