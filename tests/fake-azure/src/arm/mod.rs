//! Azure Resource Manager: tenants, subscriptions, resource groups, managed identities and
//! Azure RBAC (role definitions and assignments with inheritance), with ARM's conventions.

pub(crate) mod activity_log;
mod error;
pub(crate) mod index;
mod resources;
mod role_assignments;
mod scope;

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::access_tokens::{Audience, TokenProblem};
use crate::ids::random_guid;
use crate::paging::{PageCursor, plan_page};
use crate::request::ApiRequest;
use crate::server::{Refusal, Shared, add_headers, lock};
use error::ArmError;
use scope::Scope;

const ARM_JSON: &str = "application/json; charset=utf-8";

/// A successful ARM answer.
pub enum ArmReply {
    Json(StatusCode, Value),
    NoContent,
}

pub fn handle(shared: &Shared, request: &ApiRequest) -> Response {
    let request_id = random_guid();
    let correlation_id =
        request.header("x-ms-correlation-request-id").map_or_else(|| request_id.clone(), str::to_owned);
    let mut response = match shared.admit(request, Audience::Arm) {
        Err(refusal) => refusal_response(shared, request, refusal),
        Ok(()) => match logged_route(shared, request, &correlation_id) {
            Ok(ArmReply::Json(status, body)) => json_response(status, &body),
            Ok(ArmReply::NoContent) => StatusCode::NO_CONTENT.into_response(),
            Err(error) => json_response(error.status, &error.body()),
        },
    };
    add_headers(&mut response, [("x-ms-request-id", request_id), ("x-ms-correlation-request-id", correlation_id)]);
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, ARM_JSON)], body.to_string()).into_response()
}

fn refusal_response(shared: &Shared, request: &ApiRequest, refusal: Refusal) -> Response {
    let error = |status, code, message: String| json_response(status, &ArmError::new(status, code, message).body());
    let (tenant_id, client_id, client_object_id) = {
        let directory = lock(&shared.directory);
        let tenant = &directory.tenant;
        let object_id = tenant
            .service_principals
            .iter()
            .find(|sp| sp.app_id.eq_ignore_ascii_case(&tenant.client_id))
            .map_or_else(|| tenant.client_id.clone(), |sp| sp.id.clone());
        (tenant.tenant_id.clone(), tenant.client_id.clone(), object_id)
    };
    match refusal {
        Refusal::ScriptedFailure(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let code =
                if status == StatusCode::SERVICE_UNAVAILABLE { "ServiceUnavailable" } else { "InternalServerError" };
            error(status, code, "The server encountered an internal error. Please retry the request.".to_owned())
        }
        Refusal::Unauthenticated(problem) => {
            let message = match problem {
                TokenProblem::Missing => "Authentication failed. The 'Authorization' header is missing.".to_owned(),
                TokenProblem::Unknown => "The access token is invalid.".to_owned(),
                TokenProblem::WrongAudience(audience) => format!(
                    "The access token has been obtained for wrong audience or resource '{}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'.",
                    audience.resource()
                ),
            };
            let mut response = error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message);
            let challenge = format!(
                "Bearer authorization_uri=\"{}/{tenant_id}\", error=\"invalid_token\", error_description=\"The authentication failed.\"",
                shared.login_url
            );
            add_headers(&mut response, [(header::WWW_AUTHENTICATE, challenge)]);
            response
        }
        Refusal::Throttled { retry_after } => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "The request is being throttled as the limit has been reached for operation type - Read_ObservationWindow_00:05:00. For more information, see - https://aka.ms/srpthrottlinglimits".to_owned(),
            );
            add_headers(&mut response, [(header::RETRY_AFTER, retry_after)]);
            response
        }
        Refusal::Forbidden => {
            let (scope, action) = forbidden_action(request);
            error(
                StatusCode::FORBIDDEN,
                "AuthorizationFailed",
                format!(
                    "The client '{client_id}' with object id '{client_object_id}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."
                ),
            )
        }
    }
}

/// The scope and RBAC action a request needs, for the wording of a 403.
fn forbidden_action(request: &ApiRequest) -> (String, String) {
    let segments = &request.segments;
    let verb = match request.method {
        Method::PUT | Method::POST | Method::PATCH => "write",
        Method::DELETE => "delete",
        _ => "read",
    };
    match segments.iter().rposition(|segment| segment.eq_ignore_ascii_case("providers")) {
        Some(index) if segments.len() > index + 2 => (
            format!("/{}", segments[..index].join("/")),
            format!("{}/{}/{verb}", segments[index + 1], segments[index + 2]),
        ),
        _ => {
            let kind = if segments.iter().any(|segment| segment.eq_ignore_ascii_case("resourcegroups")) {
                "Microsoft.Resources/subscriptions/resourceGroups"
            } else {
                "Microsoft.Resources/subscriptions"
            };
            (request.path(), format!("{kind}/{verb}"))
        }
    }
}

/// Routes the request; after a write, whichever route took it and whether it succeeded, the
/// activity log records what it changed, under the request's correlation id as Azure does.
fn logged_route(shared: &Shared, request: &ApiRequest, correlation_id: &str) -> Result<ArmReply, ArmError> {
    let reply = route(shared, request);
    if request.method != Method::GET {
        shared.activity_log.record_changes(&lock(&shared.directory).tenant, correlation_id);
    }
    reply
}

fn route(shared: &Shared, request: &ApiRequest) -> Result<ArmReply, ArmError> {
    let original = &request.segments;
    let lowered: Vec<String> = original.iter().map(|segment| segment.to_ascii_lowercase()).collect();
    let path: Vec<&str> = lowered.iter().map(String::as_str).collect();
    let get = request.method == Method::GET;

    // Authorization resources hang off any scope: find the last `providers/Microsoft.Authorization`.
    if let Some(index) = path.iter().rposition(|segment| *segment == "providers")
        && path.get(index + 1) == Some(&"microsoft.authorization")
    {
        let scope = Scope::from_segments(&original[..index]).ok_or_else(|| {
            ArmError::bad_request("InvalidScope", format!("The scope '{}' is not valid.", request.path()))
        })?;
        let resource = &path[index + 2..];
        let name = original.get(index + 3).map(String::as_str);
        return match (&request.method, resource, name) {
            (&Method::GET, ["roledefinitions"], _) => resources::role_definitions(shared, request, &scope),
            (&Method::GET, ["roledefinitions", _], Some(id)) => resources::role_definition(shared, request, &scope, id),
            (&Method::GET, ["roleassignments"], _) => role_assignments::list(shared, request, &scope),
            (&Method::GET, ["roleassignments", _], Some(name)) => role_assignments::get(shared, request, &scope, name),
            (&Method::PUT, ["roleassignments", _], Some(name)) => {
                role_assignments::create(shared, request, &scope, name)
            }
            (&Method::DELETE, ["roleassignments", _], Some(name)) => {
                role_assignments::delete(shared, request, &scope, name)
            }
            _ => Err(no_route(request)),
        };
    }
    match path.as_slice() {
        ["tenants"] if get => resources::tenants(shared, request),
        ["subscriptions"] if get => resources::subscriptions(shared, request),
        ["subscriptions", _] if get => resources::subscription(shared, request, &original[1]),
        ["subscriptions", _, "resourcegroups"] if get => resources::resource_groups(shared, request, &original[1]),
        ["subscriptions", _, "providers", "microsoft.insights", "eventtypes", "management", "values"] if get => {
            activity_log::endpoint::management_events(shared, request, &original[1])
        }
        ["subscriptions", _, "providers", "microsoft.managedidentity", "userassignedidentities"] if get => {
            resources::user_assigned_identities(shared, request, &original[1])
        }
        _ => Err(no_route(request)),
    }
}

fn no_route(request: &ApiRequest) -> ArmError {
    ArmError::new(
        StatusCode::NOT_FOUND,
        "NoRegisteredProviderFound",
        format!("No registered resource provider found for path '{}' and method '{}'.", request.path(), request.method),
    )
}

/// One page of an ARM list: `{"value": [...], "nextLink": "<absolute url with $skiptoken>"}`.
pub fn page_of(shared: &Shared, request: &ApiRequest, items: Vec<Value>) -> Result<ArmReply, ArmError> {
    page_with(shared, request, items.len(), |range| items[range].to_vec())
}

/// One page of a list of `total` items, rendering only the items of that page.
pub fn page_with(
    shared: &Shared,
    request: &ApiRequest,
    total: usize,
    render: impl FnOnce(std::ops::Range<usize>) -> Vec<Value>,
) -> Result<ArmReply, ArmError> {
    let collection_key = request.path();
    let cursor = match request.query.get("$skiptoken") {
        None => PageCursor::FIRST,
        Some(token) => shared.page_tokens.decode(&collection_key, token).ok_or_else(|| {
            ArmError::bad_request("InvalidSkipToken", format!("The skip token '{token}' is not valid."))
        })?,
    };
    let page = plan_page(total, shared.arm_page_size(), cursor, false);
    let mut body = json!({ "value": render(page.items) });
    if let Some(next) = page.next {
        let token = shared.page_tokens.encode(&collection_key, next);
        body["nextLink"] = Value::from(format!(
            "{}{collection_key}?{}&$skiptoken={}",
            request.public_base(&shared.arm_url),
            request.query.raw_without("$skiptoken"),
            token.replace('\'', "%27")
        ));
    }
    Ok(ArmReply::Json(StatusCode::OK, body))
}

/// Checks that the subscription (and resource group) of a scope exist.
pub fn check_scope_exists(shared: &Shared, scope: &Scope) -> Result<(), ArmError> {
    let directory = lock(&shared.directory);
    if let Some(subscription) = scope.subscription()
        && !directory.rbac.subscription_exists(subscription)
    {
        return Err(ArmError::subscription_not_found(subscription));
    }
    if let Scope::ResourceGroup { subscription, name } = scope
        && !directory.rbac.resource_group_exists(subscription, name)
    {
        return Err(ArmError::resource_group_not_found(name));
    }
    Ok(())
}
