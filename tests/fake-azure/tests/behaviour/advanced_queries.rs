use crate::client::Session;

const SKIP_AD_GROUPS: &str =
    "/v1.0/groups?$select=id,displayName&$filter=onPremisesSyncEnabled%20ne%20true&$count=true";

#[tokio::test]
async fn ne_filter_without_consistency_level_is_unsupported_query() {
    let session = Session::sample().await;
    let reply = session.graph(SKIP_AD_GROUPS).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["code"], "Request_UnsupportedQuery");
    assert_eq!(reply.json()["error"]["message"], "Unsupported Query.");
}

#[tokio::test]
async fn ne_filter_without_count_is_unsupported_query_even_with_the_header() {
    let session = Session::sample().await;
    let reply = session.graph_eventual(&SKIP_AD_GROUPS.replace("&$count=true", "")).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["code"], "Request_UnsupportedQuery");
}

#[tokio::test]
async fn ne_filter_as_advanced_query_drops_on_premises_groups() {
    let session = Session::sample().await;
    let reply = session.graph_eventual(SKIP_AD_GROUPS).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = reply.json();
    let names: Vec<&str> =
        body["value"].as_array().unwrap().iter().map(|group| group["displayName"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 6);
    assert!(!names.contains(&"Sales (on-premises AD)"));
    assert_eq!(body["@odata.count"], 6);
}

#[tokio::test]
async fn service_principal_type_filter_needs_no_header() {
    let session = Session::sample().await;
    let reply = session
        .graph("/v1.0/servicePrincipals?$filter=servicePrincipalType%20eq%20'ManagedIdentity'&$select=id,displayName")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["value"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn role_assignments_filter_by_role_definition_and_principal() {
    let session = Session::sample().await;
    let by_role = session
        .graph("/v1.0/roleManagement/directory/roleAssignments?$filter=roleDefinitionId%20eq%20'62e90394-69f5-4237-9190-012177145e10'")
        .await
        .json();
    assert_eq!(by_role["value"].as_array().unwrap().len(), 1);
    let nestor = session.id_of_user("Nestor Wilke");
    let by_principal = session
        .graph(&format!(
            "/v1.0/roleManagement/directory/roleEligibilitySchedules?$filter=principalId%20eq%20'{nestor}'"
        ))
        .await;
    assert_eq!(by_principal.status, 200);
    assert_eq!(by_principal.json()["value"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn guests_are_found_with_ends_with_on_the_encoded_ext_marker() {
    let session = Session::sample().await;
    let domain = session.azure.tenant().default_domain;
    let reply = session
        .graph_eventual(&format!(
            "/v1.0/users?$select=id,displayName,mail&$filter=endsWith(userPrincipalName,'%23EXT%23@{domain}')&$count=true"
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["@odata.count"], 2);
}

#[tokio::test]
async fn unknown_filter_property_is_unsupported_query() {
    let session = Session::sample().await;
    let reply = session.graph("/v1.0/groups?$filter=hasMembersWithLicenseErrors%20eq%20true").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["code"], "Request_UnsupportedQuery");
}

#[tokio::test]
async fn search_needs_the_header_and_matches_display_names() {
    let session = Session::sample().await;
    let query = "/v1.0/users?$search=%22displayName:adele%22&$select=displayName";
    assert_eq!(session.graph(query).await.status, 400);
    let reply = session.graph_eventual(query).await.json();
    assert_eq!(reply["value"][0]["displayName"], "Adele Vance");
}
