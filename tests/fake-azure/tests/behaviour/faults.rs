use crate::client::Session;

#[tokio::test]
async fn throttle_every_second_request_answers_429_with_fractional_retry_after() {
    let session = Session::sample().await;
    session.azure.throttle_every(2);
    let first = session.graph("/v1.0/users").await;
    let second = session.graph("/v1.0/users").await;
    assert_eq!(first.status, 200);
    assert_eq!(second.status, 429);
    assert_eq!(second.header("retry-after"), Some("0.05"));
    assert_eq!(second.header("x-ms-throttle-information"), Some("ResourceUnitLimitExceeded"));
    let body = second.json();
    assert_eq!(body["error"]["code"], "TooManyRequests");
    assert_eq!(body["error"]["innerError"]["status"], "429");
}

#[tokio::test]
async fn arm_throttling_answers_too_many_requests_with_retry_after() {
    let session = Session::sample().await;
    session.azure.throttle_every(1);
    session.azure.throttle_retry_after(1.5);
    let reply = session.arm("/subscriptions?api-version=2022-12-01").await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("1.5"));
    assert_eq!(reply.json()["error"]["code"], "TooManyRequests");
}

#[tokio::test]
async fn forbidden_paths_answer_403_in_each_apis_envelope() {
    let session = Session::sample().await;
    session.azure.forbid("roleEligibilitySchedules");
    session.azure.forbid("/resourceGroups/rg-build");
    let graph = session.graph("/v1.0/roleManagement/directory/roleEligibilitySchedules").await;
    assert_eq!(graph.status, 403);
    assert_eq!(graph.json()["error"]["code"], "Authorization_RequestDenied");
    assert_eq!(graph.json()["error"]["message"], "Insufficient privileges to complete the operation.");
    let production = session.azure.tenant().subscriptions[0].subscription_id.clone();
    let arm = session
        .arm(&format!(
            "/subscriptions/{production}/resourceGroups/rg-build/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"
        ))
        .await;
    assert_eq!(arm.status, 403);
    let message = arm.json()["error"]["message"].as_str().unwrap().to_owned();
    assert_eq!(arm.json()["error"]["code"], "AuthorizationFailed");
    assert!(message.contains("'Microsoft.Authorization/roleAssignments/read'"), "{message}");
    assert!(session.graph("/v1.0/users").await.status == 200);
}

#[tokio::test]
async fn fail_after_makes_every_later_request_fail_with_the_status() {
    let session = Session::sample().await;
    session.azure.fail_after(2, 500);
    assert_eq!(session.graph("/v1.0/users").await.status, 200);
    assert_eq!(session.arm("/tenants?api-version=2022-12-01").await.status, 200);
    assert_eq!(session.graph("/v1.0/groups").await.status, 500);
    assert_eq!(session.arm("/tenants?api-version=2022-12-01").await.status, 500);
}

#[tokio::test]
async fn resource_unit_cost_is_reported_on_every_graph_response() {
    let session = Session::sample().await;
    let group = session.id_of_group("Finance Team");
    assert_eq!(session.graph("/v1.0/users").await.header("x-ms-resource-unit"), Some("2"));
    assert_eq!(session.graph("/v1.0/users?$select=id").await.header("x-ms-resource-unit"), Some("1"));
    assert_eq!(session.graph(&format!("/v1.0/groups/{group}/members")).await.header("x-ms-resource-unit"), Some("3"));
    let reply = session.graph("/v1.0/organization").await;
    assert_eq!(reply.header("x-ms-resource-unit"), Some("1"));
    assert!(reply.header("request-id").is_some());
}

#[tokio::test]
async fn arm_responses_carry_a_request_id() {
    let session = Session::sample().await;
    let reply = session.arm("/tenants?api-version=2022-12-01").await;
    assert!(reply.header("x-ms-request-id").is_some_and(|id| id.len() == 36));
}

#[tokio::test]
async fn a_resource_unit_budget_refuses_what_its_bucket_cannot_pay_for_with_the_wait_it_needs() {
    let session = Session::sample().await;
    // 4 units per 10 s; `GET /v1.0/users` without $select costs 2.
    session.azure.resource_unit_budget(4, std::time::Duration::from_secs(10));
    let first = session.graph("/v1.0/users").await;
    let second = session.graph("/v1.0/users").await;
    let third = session.graph("/v1.0/users").await;
    assert_eq!((first.status, second.status, third.status), (200, 200, 429));
    assert_eq!(first.header("x-ms-resource-unit"), Some("2"));
    assert_eq!(first.header("x-ms-throttle-limit-percentage"), None, "half the budget is used");
    assert_eq!(second.header("x-ms-throttle-limit-percentage"), Some("1.0"));
    let wait: f64 = third.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((4.9..=5.0).contains(&wait), "2 units at 0.4 units/s: {wait}");
    assert_eq!(session.azure.resource_units_spent(), 4, "the refused request cost nothing");
}
