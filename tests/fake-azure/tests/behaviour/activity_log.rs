//! The Azure Activity Log (`…/providers/Microsoft.Insights/eventtypes/management/values`): what a
//! connector reads, per subscription, to learn whose role assignments, custom role definitions or
//! resource groups changed since its last sync.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use fake_azure::ArmRoleAssignment;
use serde_json::{Value, json};

use crate::client::{Session, keys};

const NEW_ASSIGNMENT: &str = "5d1e3a57-3b9f-4e2c-9c1e-2f0a1b7c9d01";
const MANAGEMENT_GROUP: &str = "/providers/Microsoft.Management/managementGroups/contoso-root";

/// `2026-11-27T03:10:02.721537400Z`: a bound the fake's `$filter` takes.
fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_nanos(time).to_string()
}

fn subscription(session: &Session, index: usize) -> String {
    session.azure.tenant().subscriptions[index].subscription_id.clone()
}

fn events_path(subscription_id: &str, filter: &str) -> String {
    format!(
        "/subscriptions/{subscription_id}/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter={filter}"
    )
}

/// A filter from an hour ago to an hour from now: every event of a test.
fn this_hour() -> String {
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    between(now - hour, now + hour)
}

fn between(from: SystemTime, to: SystemTime) -> String {
    format!("eventTimestamp ge '{}' and eventTimestamp le '{}'", rfc3339(from), rfc3339(to))
}

/// Every event of the subscription that `filter` matches, following nextLinks.
async fn events(session: &Session, subscription_id: &str, filter: &str) -> Vec<Value> {
    let first = session.arm(&events_path(subscription_id, filter)).await;
    let pages = session.all_pages(first, "nextLink", &[]).await;
    pages.iter().flat_map(|page| page["value"].as_array().cloned().expect("a value array")).collect()
}

fn field<'a>(events: &'a [Value], pointer: &str) -> Vec<&'a str> {
    events.iter().map(|event| event.pointer(pointer).and_then(Value::as_str).unwrap_or("<none>")).collect()
}

/// An assignment of the sample's first role to its first user at `scope`, as `FakeAzure::mutate` adds it.
fn assign_at(session: &Session, name: &str, scope: String) {
    let tenant = session.azure.tenant();
    let assignment = ArmRoleAssignment {
        name: name.to_owned(),
        scope,
        role_definition_id: tenant.arm_role_definitions[0].id.clone(),
        principal_id: tenant.users[0].id.clone(),
        principal_type: "User".into(),
    };
    session.azure.mutate(move |tenant| tenant.arm_role_assignments.push(assignment));
}

#[tokio::test]
async fn an_assignment_mutated_in_at_a_resource_group_logs_started_and_succeeded_in_its_subscription_only() {
    let session = Session::sample().await;
    let (production, development) = (subscription(&session, 0), subscription(&session, 1));
    let scope = format!("/subscriptions/{production}/resourceGroups/rg-build");
    assign_at(&session, NEW_ASSIGNMENT, scope.clone());

    let logged = events(&session, &production, &this_hour()).await;
    assert_eq!(field(&logged, "/eventName/value"), vec!["EndRequest", "BeginRequest"], "newest first: {logged:?}");
    assert_eq!(field(&logged, "/status/value"), vec!["Succeeded", "Started"]);
    assert_eq!(field(&logged, "/subStatus/value"), vec!["Created", ""]);
    let resource_id = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{NEW_ASSIGNMENT}");
    for event in &logged {
        assert_eq!(event["resourceId"], resource_id.as_str());
        assert_eq!(
            event["authorization"],
            json!({ "action": "Microsoft.Authorization/roleAssignments/write", "scope": resource_id })
        );
        assert_eq!(
            event["operationName"],
            json!({ "value": "Microsoft.Authorization/roleAssignments/write", "localizedValue": "Create role assignment" })
        );
        assert_eq!(event["resourceGroupName"], "rg-build");
        assert_eq!(event["resourceProviderName"]["value"], "Microsoft.Authorization");
        assert_eq!(event["resourceType"]["value"], "Microsoft.Authorization/roleAssignments");
        assert_eq!(event["subscriptionId"], production.as_str());
        assert_eq!(event["category"]["value"], "Administrative");
        assert_eq!(event["caller"], session.azure.tenant().client_id.as_str());
        let id = event["id"].as_str().expect("an id");
        let event_data_id = event["eventDataId"].as_str().expect("an eventDataId");
        assert!(id.starts_with(&format!("{resource_id}/events/{event_data_id}/ticks/")), "{id}");
        let time = event["eventTimestamp"].as_str().expect("a time");
        assert!(time.len() == 28 && time.ends_with('Z') && &time[19..20] == ".", "seven fractional digits: {time}");
    }
    assert_eq!(logged[0]["operationId"], logged[1]["operationId"]);
    assert_eq!(logged[0]["correlationId"], logged[1]["correlationId"]);
    assert_ne!(logged[0]["eventDataId"], logged[1]["eventDataId"]);
    assert_eq!(events(&session, &development, &this_hour()).await, Vec::<Value>::new(), "not the other subscription's");
}

#[tokio::test]
async fn a_role_assignment_put_and_deleted_through_arm_is_logged_under_the_requests_correlation_id() {
    let session = Session::sample().await;
    let production = subscription(&session, 0);
    let tenant = session.azure.tenant();
    let reader = tenant.arm_role_definitions.iter().find(|role| role.role_name == "Reader").expect("Reader");
    let path = format!(
        "/subscriptions/{production}/providers/Microsoft.Authorization/roleAssignments/{NEW_ASSIGNMENT}?api-version=2022-04-01"
    );
    let body = json!({ "properties": {
        "roleDefinitionId": format!("/subscriptions/{production}/providers/Microsoft.Authorization/roleDefinitions/{}", reader.id),
        "principalId": session.id_of_user("Lee Gu"),
    }});
    let authorization = format!("Bearer {}", session.arm_token);
    let headers = [
        ("authorization", authorization.as_str()),
        ("x-ms-correlation-request-id", "c0ffee00-0000-4000-8000-000000000001"),
    ];
    let url = format!("{}{path}", session.azure.arm_url());
    let created = session.http.send("PUT", &url, &headers, Some(("application/json", body.to_string()))).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(session.arm_with("DELETE", &path, None).await.status, 200);

    let logged = events(&session, &production, &this_hour()).await;
    let resource_id =
        format!("/subscriptions/{production}/providers/Microsoft.Authorization/roleAssignments/{NEW_ASSIGNMENT}");
    assert_eq!(
        field(&logged, "/operationName/value"),
        vec![
            "Microsoft.Authorization/roleAssignments/delete",
            "Microsoft.Authorization/roleAssignments/delete",
            "Microsoft.Authorization/roleAssignments/write",
            "Microsoft.Authorization/roleAssignments/write",
        ]
    );
    assert!(
        logged.iter().all(|event| event["resourceId"] == resource_id.as_str() && event["resourceGroupName"].is_null())
    );
    assert_eq!(field(&logged[2..], "/correlationId"), vec!["c0ffee00-0000-4000-8000-000000000001"; 2]);
    assert_ne!(logged[0]["operationId"], logged[2]["operationId"], "two operations");
}

#[tokio::test]
async fn a_deleted_resource_group_is_logged_as_a_resources_provider_delete() {
    let session = Session::sample().await;
    let production = subscription(&session, 0);
    session.azure.mutate(|tenant| tenant.resource_groups.retain(|group| group.name != "rg-build"));

    let logged = events(&session, &production, &this_hour()).await;
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert_eq!(
        field(&logged, "/operationName/value"),
        vec!["Microsoft.Resources/subscriptions/resourceGroups/delete"; 2]
    );
    assert_eq!(
        field(&logged, "/resourceId"),
        vec![format!("/subscriptions/{production}/resourceGroups/rg-build").as_str(); 2]
    );
    assert_eq!(field(&logged, "/resourceGroupName"), vec!["rg-build"; 2]);
    assert_eq!(field(&logged, "/resourceProviderName/value"), vec!["Microsoft.Resources"; 2]);
}

#[tokio::test]
async fn a_changed_custom_role_is_logged_in_the_subscription_it_is_assignable_in() {
    let session = Session::sample().await;
    let (production, development) = (subscription(&session, 0), subscription(&session, 1));
    let role_id = session
        .azure
        .tenant()
        .arm_role_definitions
        .iter()
        .find(|role| role.role_type == "CustomRole")
        .expect("a custom role")
        .id
        .clone();
    session.azure.mutate(|tenant| {
        for role in tenant.arm_role_definitions.iter_mut().filter(|role| role.role_type == "CustomRole") {
            role.description.push_str(" (reviewed)");
        }
    });

    let logged = events(&session, &production, &this_hour()).await;
    assert_eq!(field(&logged, "/operationName/value"), vec!["Microsoft.Authorization/roleDefinitions/write"; 2]);
    let resource_id =
        format!("/subscriptions/{production}/providers/Microsoft.Authorization/roleDefinitions/{role_id}");
    assert_eq!(field(&logged, "/resourceId"), vec![resource_id.as_str(); 2]);
    assert_eq!(field(&logged, "/subStatus/value"), vec!["OK", ""]);
    assert_eq!(events(&session, &development, &this_hour()).await, Vec::<Value>::new());
}

#[tokio::test]
async fn an_assignment_at_a_management_group_is_in_no_subscriptions_log() {
    let session = Session::sample().await;
    assign_at(&session, NEW_ASSIGNMENT, MANAGEMENT_GROUP.to_owned());
    assign_at(
        &session,
        "6e2f4b68-4c0a-4f3d-8d2f-3a1b2c8d0e12",
        format!("/subscriptions/{}", subscription(&session, 1)),
    );

    assert_eq!(events(&session, &subscription(&session, 0), &this_hour()).await, Vec::<Value>::new());
    let development = events(&session, &subscription(&session, 1), &this_hour()).await;
    assert_eq!(development.len(), 2, "the subscription's own assignment only: {development:?}");
    assert!(development.iter().all(|event| !event["resourceId"].as_str().unwrap_or_default().contains(NEW_ASSIGNMENT)));
}

#[tokio::test]
async fn a_mutate_that_changes_no_arm_state_logs_nothing() {
    let session = Session::sample().await;
    session.azure.mutate(|tenant| tenant.users[0].display_name.push_str(" (renamed)"));
    assert_eq!(events(&session, &subscription(&session, 0), &this_hour()).await, Vec::<Value>::new());
}

#[tokio::test]
async fn ge_and_le_bound_the_events_inclusively() {
    let session = Session::sample().await;
    let production = subscription(&session, 0);
    assign_at(&session, NEW_ASSIGNMENT, format!("/subscriptions/{production}"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    session.azure.mutate(|tenant| tenant.resource_groups.retain(|group| group.name != "rg-build"));

    let all = events(&session, &production, &this_hour()).await;
    assert_eq!(all.len(), 4, "{all:?}");
    let (newest, oldest) = (all[0]["eventTimestamp"].as_str().unwrap(), all[3]["eventTimestamp"].as_str().unwrap());
    assert!(newest > oldest, "{newest} > {oldest}");
    let hour_ago = rfc3339(SystemTime::now() - Duration::from_secs(3600));
    let since_newest = events(
        &session,
        &production,
        &format!("eventTimestamp ge '{newest}' and eventTimestamp le '{}'", rfc3339(SystemTime::now())),
    )
    .await;
    assert_eq!(field(&since_newest, "/resourceProviderName/value"), vec!["Microsoft.Resources"; 2]);
    let until_oldest =
        events(&session, &production, &format!("eventTimestamp ge '{hour_ago}' and eventTimestamp le '{oldest}'"))
            .await;
    assert_eq!(field(&until_oldest, "/resourceProviderName/value"), vec!["Microsoft.Authorization"; 2]);
    let authorization_only =
        events(&session, &production, &format!("{} and resourceProvider eq 'microsoft.authorization'", this_hour()))
            .await;
    assert_eq!(field(&authorization_only, "/eventDataId"), field(&until_oldest, "/eventDataId"));
    let in_rg_build =
        events(&session, &production, &format!("{} and resourceGroupName eq 'RG-BUILD'", this_hour())).await;
    assert_eq!(field(&in_rg_build, "/eventDataId"), field(&since_newest, "/eventDataId"));
}

#[tokio::test]
async fn paging_returns_every_event_once_newest_first_even_when_new_ones_arrive() {
    let session = Session::sample().await;
    let production = subscription(&session, 0);
    session.azure.arm_page_size(3);
    let names: Vec<String> = (0..5).map(|index| format!("5d1e3a57-3b9f-4e2c-9c1e-2f0a1b7c9d{index:02}")).collect();
    for name in &names {
        assign_at(&session, name, format!("/subscriptions/{production}"));
    }
    let first = session.arm(&events_path(&production, &this_hour())).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let next = first.json()["nextLink"].as_str().expect("a next link").to_owned();
    assert!(next.starts_with(&format!("{}/subscriptions/{production}/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter=", session.azure.arm_url())), "{next}");
    assert!(next.contains("&$skipToken="), "{next}");
    // An event logged mid-run is newer than the run's first page: the run must not see it, nor repeat any.
    assign_at(&session, "6e2f4b68-4c0a-4f3d-8d2f-3a1b2c8d0e12", format!("/subscriptions/{production}"));

    let pages = session.all_pages(first, "nextLink", &[]).await;
    assert_eq!(pages.len(), 4, "10 events in pages of 3");
    let logged: Vec<Value> = pages.iter().flat_map(|page| page["value"].as_array().cloned().expect("value")).collect();
    let ids = field(&logged, "/eventDataId");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 10, "no event twice: {ids:?}");
    let assignments: Vec<&str> =
        field(&logged, "/resourceId").into_iter().map(|id| id.rsplit('/').next().unwrap()).collect();
    let newest_first: Vec<&str> = names.iter().rev().flat_map(|name| [name.as_str(); 2]).collect();
    assert_eq!(assignments, newest_first);
}

#[tokio::test]
async fn select_returns_only_the_named_properties() {
    let session = Session::sample().await;
    let production = subscription(&session, 0);
    assign_at(&session, NEW_ASSIGNMENT, format!("/subscriptions/{production}"));
    let reply = session
        .arm(&format!(
            "{}&$select=eventName, operationName,resourceId,EventTimestamp",
            events_path(&production, &this_hour())
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let logged = reply.json()["value"].as_array().cloned().expect("a value array");
    assert_eq!(logged.len(), 2);
    for event in &logged {
        let expected = ["eventName", "eventTimestamp", "operationName", "resourceId"].map(String::from).into();
        assert_eq!(keys(event), expected, "{event}");
    }
}

#[tokio::test]
async fn activity_log_latency_hides_a_fresh_event_then_serves_it_with_its_original_time() {
    let session = Session::sample().await;
    let production = subscription(&session, 0);
    session.azure.activity_log_latency(Duration::from_millis(1500));
    let before = SystemTime::now();
    assign_at(&session, NEW_ASSIGNMENT, format!("/subscriptions/{production}"));
    let after = SystemTime::now();
    assert_eq!(events(&session, &production, &this_hour()).await, Vec::<Value>::new(), "not yet visible");

    tokio::time::sleep(Duration::from_millis(1600)).await;
    let logged = events(&session, &production, &this_hour()).await;
    assert_eq!(logged.len(), 2, "{logged:?}");
    let happened = humantime::parse_rfc3339(logged[0]["eventTimestamp"].as_str().expect("a time")).expect("RFC 3339");
    let before_in_ticks = before - Duration::from_nanos(100);
    assert!(before_in_ticks <= happened && happened <= after, "{before:?} <= {happened:?} <= {after:?}");
}

#[tokio::test]
async fn forbidding_eventtypes_answers_403_authorization_failed() {
    let session = Session::sample().await;
    let production = subscription(&session, 0);
    session.azure.forbid("eventtypes");
    let reply = session.arm(&events_path(&production, &this_hour())).await;
    assert_eq!(reply.status, 403, "{}", reply.text);
    assert_eq!(reply.json()["error"]["code"], "AuthorizationFailed");
    let groups = session.arm(&format!("/subscriptions/{production}/resourcegroups?api-version=2021-04-01")).await;
    assert_eq!(groups.status, 200, "only the activity log is denied");
}

#[tokio::test]
async fn a_filter_without_le_or_spanning_over_90_days_answers_400_naming_the_problem() {
    let session = Session::sample().await;
    let production = subscription(&session, 0);
    let now = SystemTime::now();
    let long_ago = now - Duration::from_secs(91 * 24 * 3600);
    for (filter, named) in [
        (format!("eventTimestamp ge '{}'", rfc3339(now)), "eventTimestamp le".to_owned()),
        (between(long_ago, now), "90 days".to_owned()),
        (format!("{} and operationName eq 'x'", this_hour()), "operationName eq 'x'".to_owned()),
    ] {
        let reply = session.arm(&events_path(&production, &filter)).await;
        assert_eq!(reply.status, 400, "{filter}: {}", reply.text);
        let error = &reply.json()["error"];
        assert_eq!(error["code"], "BadRequest");
        assert!(error["message"].as_str().is_some_and(|message| message.contains(&named)), "{filter}: {error}");
    }
    let without_version = format!(
        "/subscriptions/{production}/providers/Microsoft.Insights/eventtypes/management/values?$filter={}",
        this_hour()
    );
    assert_eq!(session.arm(&without_version).await.json()["error"]["code"], "MissingApiVersionParameter");
}

#[tokio::test]
async fn an_unknown_subscription_answers_404_in_any_path_case() {
    let session = Session::sample().await;
    let unknown = "00000000-0000-4000-8000-0000000000aa";
    let reply = session.arm(&events_path(unknown, &this_hour())).await;
    assert_eq!(reply.status, 404, "{}", reply.text);
    assert_eq!(reply.json()["error"]["code"], "SubscriptionNotFound");
    let lowered = events_path(&subscription(&session, 0), &this_hour())
        .replace("Microsoft.Insights/eventtypes", "microsoft.insights/EventTypes");
    assert_eq!(session.arm(&lowered).await.status, 200);
}
