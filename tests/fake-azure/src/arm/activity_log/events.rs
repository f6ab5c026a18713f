//! The `EventData` records of Azure Monitor's Activity Log, shaped like the REST API's
//! "Activity Logs - List" examples: each operation is logged twice, a `BeginRequest` that
//! `Started` and an `EndRequest` that `Succeeded`, sharing an `operationId` and `correlationId`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::operations::{Operation, Outcome};
use crate::ids::{random_guid, rfc3339_ticks};

/// .NET ticks (100 ns since 0001-01-01) at the Unix epoch; event ids end with the event's ticks.
const TICKS_AT_UNIX_EPOCH: u128 = 621_355_968_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Begin,
    End,
}

/// Who made the request, and which request it was: shared by every event the request logs.
pub struct Request<'a> {
    pub tenant_id: &'a str,
    /// Every ARM call reaches the fake with the tenant's only app registration's token.
    pub caller: &'a str,
    pub correlation_id: &'a str,
    pub at: SystemTime,
}

/// One `EventData` record of `operation`.
pub fn event_data(operation: &Operation, operation_id: &str, phase: Phase, request: &Request) -> Value {
    let kind = operation.kind;
    let event_data_id = random_guid();
    let timestamp = rfc3339_ticks(request.at);
    let ticks = request.at.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos() / 100) + TICKS_AT_UNIX_EPOCH;
    let (event_name, status, sub_status) = match phase {
        Phase::Begin => (("BeginRequest", "Begin request"), "Started", ("", "")),
        Phase::End => (("EndRequest", "End request"), "Succeeded", end_sub_status(operation.outcome)),
    };
    let mut properties = json!({
        "eventCategory": "Administrative",
        "entity": operation.resource_id,
        "message": kind.action(),
        "hierarchy": "",
    });
    if phase == Phase::End && !sub_status.0.is_empty() {
        properties["statusCode"] = Value::from(sub_status.0);
    }
    json!({
        "authorization": { "action": kind.action(), "scope": operation.resource_id },
        "caller": request.caller,
        "channels": "Operation",
        "claims": {},
        "correlationId": request.correlation_id,
        "description": "",
        "eventDataId": event_data_id,
        "eventName": { "value": event_name.0, "localizedValue": event_name.1 },
        "category": { "value": "Administrative", "localizedValue": "Administrative" },
        "eventTimestamp": timestamp,
        "httpRequest": { "clientRequestId": random_guid(), "clientIpAddress": "127.0.0.1", "method": kind.http_method() },
        "id": format!("{}/events/{event_data_id}/ticks/{ticks}", operation.resource_id),
        "level": "Informational",
        "operationId": operation_id,
        "operationName": { "value": kind.action(), "localizedValue": kind.display_name() },
        "properties": properties,
        "resourceGroupName": operation.resource_group,
        "resourceProviderName": { "value": kind.provider(), "localizedValue": kind.provider() },
        "resourceType": { "value": kind.resource_type(), "localizedValue": kind.resource_type() },
        "resourceId": operation.resource_id,
        "status": { "value": status, "localizedValue": status },
        "subStatus": { "value": sub_status.0, "localizedValue": sub_status.1 },
        // The fake serves an event as soon as it is recorded (less any latency a test set).
        "submissionTimestamp": timestamp,
        "subscriptionId": operation.subscription_id,
        "tenantId": request.tenant_id,
    })
}

fn end_sub_status(outcome: Outcome) -> (&'static str, &'static str) {
    match outcome {
        Outcome::Created => ("Created", "Created (HTTP Status Code: 201)"),
        Outcome::Ok => ("OK", "OK (HTTP Status Code: 200)"),
        Outcome::Finished => ("", ""),
    }
}
