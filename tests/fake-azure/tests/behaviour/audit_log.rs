//! The directory audit log (`/auditLogs/directoryAudits`): what a connector reads, after a sync,
//! to learn which service principals' owners and app-role assignments changed.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fake_azure::AppRoleAssignment;
use serde_json::{Value, json};

use crate::client::Session;

const AUDITS: &str = "/v1.0/auditLogs/directoryAudits";

async fn audit_events(session: &Session, query: &str) -> Vec<Value> {
    let reply = session.graph(&format!("{AUDITS}{query}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["value"].as_array().cloned().expect("a value array")
}

/// `"\"<id>\""`: how Entra writes a string inside `oldValue`/`newValue`.
fn quoted(id: &str) -> Value {
    Value::from(format!("\"{id}\""))
}

fn modified_property<'a>(target: &'a Value, name: &str) -> &'a Value {
    target["modifiedProperties"]
        .as_array()
        .and_then(|properties| properties.iter().find(|property| property["displayName"] == name))
        .unwrap_or_else(|| panic!("no modified property {name} in {target}"))
}

/// A grant the sample tenant does not have, as an app would get it.
fn grant(principal_id: &str, principal_type: &str, principal_name: &str, resource_id: &str) -> AppRoleAssignment {
    AppRoleAssignment {
        id: format!("grant-{principal_id}-{resource_id}"),
        app_role_id: "00000000-0000-0000-0000-000000000000".into(),
        principal_id: principal_id.into(),
        principal_type: principal_type.into(),
        principal_display_name: principal_name.into(),
        resource_id: resource_id.into(),
    }
}

/// Gives `user_id` default access to the service principal at `index`, as `FakeAzure::mutate`.
fn grant_default_access(session: &Session, index: usize, user_id: &str) {
    let user_id = user_id.to_owned();
    session.azure.mutate(move |tenant| {
        let sp = &mut tenant.service_principals[index];
        sp.app_role_assigned_to.push(grant(&user_id, "User", "someone", &sp.id));
    });
}

/// `2026-11-27T03:10:02.7215374Z` from a system time, as the fake prints `activityDateTime`.
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).expect("after 1970");
    let (secs, ticks) = (since.as_secs(), since.subsec_nanos() / 100);
    // Howard Hinnant's days-to-civil algorithm.
    let days = (secs / 86_400) as i64 + 719_468;
    let (era, day_of_era) = (days.div_euclid(146_097), days.rem_euclid(146_097));
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{ticks:07}Z")
}

#[tokio::test]
async fn a_mutated_app_role_grant_to_a_user_names_the_resource_only_in_modified_properties() {
    let session = Session::sample().await;
    let lee = session.id_of_user("Lee Gu");
    let expenses = session.id_of_service_principal("Contoso Expenses");
    let index = session.azure.tenant().service_principals.iter().position(|sp| sp.id == expenses).expect("expenses");
    grant_default_access(&session, index, &lee);

    let events = audit_events(&session, "").await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["activityDisplayName"], "Add app role assignment grant to user");
    assert_eq!(event["category"], "UserManagement");
    assert_eq!(event["operationType"], "Assign");
    let targets = event["targetResources"].as_array().expect("targets");
    assert_eq!(targets.len(), 1, "only the user is a target: {event}");
    assert_eq!((targets[0]["id"].as_str(), targets[0]["type"].as_str()), (Some(lee.as_str()), Some("User")));
    assert_eq!(targets[0]["userPrincipalName"], "LeeG@contosofake.onmicrosoft.com");
    let resource = modified_property(&targets[0], "ServicePrincipal.ObjectID");
    assert_eq!((&resource["oldValue"], &resource["newValue"]), (&Value::Null, &quoted(&expenses)));
    assert_eq!(
        modified_property(&targets[0], "AppRole.Id")["newValue"],
        quoted("00000000-0000-0000-0000-000000000000")
    );
}

#[tokio::test]
async fn an_owner_added_through_graph_is_logged_against_the_service_principal() {
    let session = Session::sample().await;
    let expenses = session.id_of_service_principal("Contoso Expenses");
    let megan = session.id_of_user("Megan Bowen");
    let reference = json!({ "@odata.id": format!("{}/v1.0/directoryObjects/{megan}", session.azure.graph_url()) });
    let path = format!("/v1.0/servicePrincipals/{expenses}/owners/$ref");
    assert_eq!(session.graph_with("POST", &path, &[], Some(reference)).await.status, 204);

    let events = audit_events(&session, "").await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["activityDisplayName"], "Add owner to service principal");
    assert_eq!(
        (event["category"].as_str(), event["operationType"].as_str()),
        (Some("ApplicationManagement"), Some("Assign"))
    );
    let targets = event["targetResources"].as_array().expect("targets");
    assert_eq!(
        (targets[0]["id"].as_str(), targets[0]["type"].as_str()),
        (Some(expenses.as_str()), Some("ServicePrincipal"))
    );
    assert_eq!((targets[1]["id"].as_str(), targets[1]["type"].as_str()), (Some(megan.as_str()), Some("User")));
    assert_eq!(event["initiatedBy"]["app"]["appId"], session.azure.tenant().client_id.as_str());
    assert_eq!(event["initiatedBy"]["user"], Value::Null);
    assert!(event["id"].as_str().is_some_and(|id| id.starts_with("Directory_")), "{event}");
    assert_eq!(
        (event["result"].as_str(), event["loggedByService"].as_str()),
        (Some("success"), Some("Core Directory"))
    );
    let time = event["activityDateTime"].as_str().expect("a time");
    assert!(time.len() == 28 && time.ends_with('Z') && &time[19..20] == ".", "seven fractional digits: {time}");
}

#[tokio::test]
async fn removing_an_app_role_assignment_through_graph_logs_the_principals_unassignment() {
    let session = Session::sample().await;
    let expenses =
        session.azure.tenant().service_principals.into_iter().find(|sp| sp.display_name == "Contoso Expenses");
    let expenses = expenses.expect("expenses");
    let to_id_deploy = expenses.app_role_assigned_to.iter().find(|a| a.principal_type == "ServicePrincipal").unwrap();
    let path = format!("/v1.0/servicePrincipals/{}/appRoleAssignedTo/{}", expenses.id, to_id_deploy.id);
    assert_eq!(session.graph_with("DELETE", &path, &[], None).await.status, 204);

    let events = audit_events(&session, "").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["activityDisplayName"], "Remove app role assignment from service principal");
    assert_eq!(events[0]["operationType"], "Unassign");
    let target = &events[0]["targetResources"][0];
    assert_eq!(
        (target["id"].as_str(), target["type"].as_str()),
        (Some(to_id_deploy.principal_id.as_str()), Some("ServicePrincipal"))
    );
    let resource = modified_property(target, "ServicePrincipal.ObjectID");
    assert_eq!((&resource["oldValue"], &resource["newValue"]), (&quoted(&expenses.id), &Value::Null));
}

#[tokio::test]
async fn a_group_losing_its_app_role_is_logged_as_group_management_naming_the_resource() {
    let session = Session::sample().await;
    let (finance, expenses) =
        (session.id_of_group("Finance Team"), session.id_of_service_principal("Contoso Expenses"));
    let group = finance.clone();
    session.azure.mutate(move |tenant| {
        for sp in &mut tenant.service_principals {
            sp.app_role_assigned_to.retain(|assignment| assignment.principal_id != group);
        }
    });

    let events = audit_events(&session, "").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["activityDisplayName"], "Remove app role assignment from group");
    assert_eq!(
        (events[0]["category"].as_str(), events[0]["operationType"].as_str()),
        (Some("GroupManagement"), Some("Unassign"))
    );
    let target = &events[0]["targetResources"][0];
    assert_eq!((target["id"].as_str(), target["type"].as_str()), (Some(finance.as_str()), Some("Group")));
    assert_eq!(modified_property(target, "ServicePrincipal.ObjectID")["oldValue"], quoted(&expenses));
}

#[tokio::test]
async fn a_deleted_service_principal_is_logged_once_as_deleted() {
    let session = Session::sample().await;
    let expenses = session.id_of_service_principal("Contoso Expenses");
    let deleted = expenses.clone();
    session.azure.mutate(move |tenant| tenant.service_principals.retain(|sp| sp.id != deleted));

    let events = audit_events(&session, "").await;
    let activities: Vec<&str> = events.iter().filter_map(|event| event["activityDisplayName"].as_str()).collect();
    assert_eq!(activities, vec!["Delete service principal"], "its links go without events of their own");
    assert_eq!(events[0]["targetResources"][0]["id"], expenses.as_str());
    assert_eq!(events[0]["operationType"], "Delete");
}

#[tokio::test]
async fn writes_that_touch_no_service_principal_log_nothing() {
    let session = Session::sample().await;
    let group = session.id_of_group("Marketing");
    let lee = session.id_of_user("Lee Gu");
    let reference = json!({ "@odata.id": format!("{}/v1.0/directoryObjects/{lee}", session.azure.graph_url()) });
    let added = session.graph_with("POST", &format!("/v1.0/groups/{group}/members/$ref"), &[], Some(reference)).await;
    assert_eq!(added.status, 204);
    session.azure.mutate(|tenant| tenant.users[0].display_name.push_str(" (renamed)"));
    assert_eq!(audit_events(&session, "").await, Vec::<Value>::new());
}

#[tokio::test]
async fn a_renamed_service_principal_is_logged_as_updated_with_old_and_new_values() {
    let session = Session::sample().await;
    session.azure.mutate(|tenant| tenant.service_principals[0].display_name = "Contoso Expenses (old)".into());
    let events = audit_events(&session, "").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0]["activityDisplayName"].as_str(), events[0]["operationType"].as_str()),
        (Some("Update service principal"), Some("Update"))
    );
    let renamed = modified_property(&events[0]["targetResources"][0], "DisplayName");
    assert_eq!(
        (renamed["oldValue"].as_str(), renamed["newValue"].as_str()),
        (Some("[\"Contoso Expenses\"]"), Some("[\"Contoso Expenses (old)\"]"))
    );
}

#[tokio::test]
async fn the_ge_filter_leaves_out_older_events_and_the_newest_come_first() {
    let session = Session::sample().await;
    let (lee, megan) = (session.id_of_user("Lee Gu"), session.id_of_user("Megan Bowen"));
    grant_default_access(&session, 1, &lee);
    tokio::time::sleep(Duration::from_millis(20)).await;
    grant_default_access(&session, 2, &megan);

    let all = audit_events(&session, "").await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0]["targetResources"][0]["id"], megan.as_str(), "newest first: {all:?}");
    let newest = all[0]["activityDateTime"].as_str().expect("a time");
    let since = audit_events(&session, &format!("?$filter=activityDateTime ge {newest}&$top=100")).await;
    assert_eq!(since.len(), 1, "{since:?}");
    assert_eq!(since[0]["id"], all[0]["id"]);
    let until = audit_events(
        &session,
        &format!("?$filter=activityDateTime le {}", all[1]["activityDateTime"].as_str().unwrap()),
    )
    .await;
    assert_eq!(until.iter().map(|event| &event["id"]).collect::<Vec<_>>(), vec![&all[1]["id"]]);
}

#[tokio::test]
async fn paging_with_top_2_returns_every_event_exactly_once_even_when_new_ones_arrive() {
    let session = Session::sample().await;
    let users: Vec<String> = session.azure.tenant().users.iter().take(7).map(|user| user.id.clone()).collect();
    for user in &users {
        grant_default_access(&session, 5, user);
    }
    let first = session.graph(&format!("{AUDITS}?$top=2")).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let next = first.json()["@odata.nextLink"].as_str().expect("a next link").to_owned();
    assert!(next.starts_with(&format!("{}{AUDITS}?$top=2&$skiptoken=", session.azure.graph_url())), "{next}");
    assert_eq!(
        first.json()["@odata.context"],
        format!("{}/v1.0/$metadata#auditLogs/directoryAudits", session.azure.graph_url())
    );
    // An event logged mid-run is newer than the run's first page: the run must not see it, nor repeat any.
    grant_default_access(&session, 4, &users[0]);

    let pages = session.all_pages(first, "@odata.nextLink", &[]).await;
    assert_eq!(pages.len(), 4, "7 events in pages of 2");
    let principals: Vec<&str> = pages
        .iter()
        .flat_map(|page| page["value"].as_array().expect("value").iter())
        .map(|event| event["targetResources"][0]["id"].as_str().expect("a principal id"))
        .collect();
    assert_eq!(principals.len(), 7, "{principals:?}");
    assert_eq!(principals.iter().collect::<HashSet<_>>().len(), 7, "no event twice: {principals:?}");
    let newest_first: Vec<&str> = users.iter().rev().map(String::as_str).collect();
    assert_eq!(principals, newest_first);
}

#[tokio::test]
async fn audit_latency_hides_a_fresh_event_then_serves_it_with_its_original_time() {
    let session = Session::sample().await;
    session.azure.audit_latency(Duration::from_millis(1500));
    let before = rfc3339(SystemTime::now());
    grant_default_access(&session, 0, &session.id_of_user("Lee Gu"));
    let after = rfc3339(SystemTime::now());
    assert_eq!(audit_events(&session, "").await, Vec::<Value>::new(), "not yet visible");

    tokio::time::sleep(Duration::from_millis(1600)).await;
    let events = audit_events(&session, "").await;
    assert_eq!(events.len(), 1, "{events:?}");
    let happened = events[0]["activityDateTime"].as_str().expect("a time");
    assert!(before.as_str() <= happened && happened <= after.as_str(), "{before} <= {happened} <= {after}");
}

#[tokio::test]
async fn forbidding_audit_logs_answers_403_authorization_request_denied() {
    let session = Session::sample().await;
    session.azure.forbid("auditLogs");
    let reply = session.graph(AUDITS).await;
    assert_eq!(reply.status, 403, "{}", reply.text);
    assert_eq!(reply.json()["error"]["code"], "Authorization_RequestDenied");
    assert_eq!(session.graph("/v1.0/servicePrincipals").await.status, 200, "only the audit log is denied");
}

#[tokio::test]
async fn unsupported_filters_bad_timestamps_and_top_answer_400_naming_the_problem() {
    let session = Session::sample().await;
    for (query, named) in [
        ("$filter=activityDisplayName eq 'Add owner to service principal'", "activityDisplayName eq"),
        ("$filter=activityDateTime ge 2026-13-01T00:00:00Z", "2026-13-01T00:00:00Z"),
        ("$filter=activityDateTime ge '2026-11-27T03:10:00Z'", "unquoted"),
        ("$orderby=activityDateTime asc", "$orderby"),
        ("$top=1000", "between 1 and 999"),
    ] {
        let reply = session.graph(&format!("{AUDITS}?{query}")).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.text);
        let message = reply.json()["error"]["message"].as_str().expect("a message").to_owned();
        assert!(message.contains(named), "{query}: {message}");
    }
}

#[tokio::test]
async fn every_graph_answer_carries_a_date_header_for_the_clients_clock() {
    let session = Session::sample().await;
    let ok = session.graph(AUDITS).await;
    let missing = session.graph("/v1.0/users/0badc0de-0000-4000-8000-000000000000").await;
    let unauthenticated = session.http.send("GET", &format!("{}{AUDITS}", session.azure.graph_url()), &[], None).await;
    session.azure.throttle_every(1);
    let throttled = session.graph(AUDITS).await;
    for (reply, status) in [(&ok, 200), (&missing, 404), (&unauthenticated, 401), (&throttled, 429)] {
        assert_eq!(reply.status, status, "{}", reply.text);
        let date = reply.header("date").unwrap_or_else(|| panic!("no Date header on a {status}"));
        assert!(date.len() == 29 && date.ends_with(" GMT"), "an IMF-fixdate: {date}");
    }
}
