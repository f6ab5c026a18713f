//! Grant and revoke: every entitlement family goes granted → already granted → visible in a
//! sync → revoked → already revoked → gone from a sync, and the fake's state agrees throughout.

use std::sync::Arc;

use bytes::Bytes;
use connector_host::outbound::OutboundStats;
use connector_host::outbound::gateway::{GatewayError, GatewaySettings, TenantGateway};
use connector_host::outbound::policy::{AllowedOrigin, Origin, OutboundPolicy};
use connector_host::outbound::transport::{BufferedRequest, HttpTransport, TransportLimits};
use fake_azure::Tenant;
use serde_json::Value;

use crate::oracle::{Expected, Options};
use crate::support::{Harness, Snapshot, assert_same_set, assert_success, export, run_host, stderr};

impl Harness {
    /// Runs `grant` or `revoke` against this fake and returns its JSON line.
    async fn provision(&self, action: &str, target: &[&str], provisioning: bool) -> (std::process::Output, Value) {
        let mut args = self.sync_args(&self.path("sync.db"));
        args[0] = action.into();
        args.extend(target.iter().map(|arg| arg.to_string()));
        if provisioning {
            args.push("--provisioning".into());
        }
        let output = run_host(&args, &[]).await;
        let line = String::from_utf8_lossy(&output.stdout).lines().next().unwrap_or("null").to_owned();
        let report: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        (output, report)
    }

    async fn synced(&self) -> Snapshot {
        let output = self.path("sync.db");
        assert_success(&self.sync(&output, &[]).await);
        let snapshot = Snapshot::of(&export(&output).await);
        let expected = Expected::of(&self.fake.tenant(), &Options { skip_ad_groups: false });
        assert_same_set("grants against the fake's state", &snapshot.grants, &expected.grants);
        snapshot
    }
}

fn member_user(tenant: &Tenant, skip: usize) -> String {
    tenant.users.iter().filter(|user| user.user_type == "Member").nth(skip).expect("enough member users").id.clone()
}

/// The full round trip for one entitlement and one principal who does not hold it yet.
async fn round_trip(harness: &Harness, entitlement: &str, principal_type: &str, principal_id: &str) {
    let grant_id = format!("{entitlement}:{principal_type}:{principal_id}");
    let target = ["--entitlement", entitlement, "--principal-type", principal_type, "--principal-id", principal_id];
    assert!(!harness.synced().await.grants.contains(&grant_id), "{grant_id} must not be held before the grant");

    for expected in ["granted", "already_granted"] {
        let (output, report) = harness.provision("grant", &target, true).await;
        assert_success(&output);
        assert_eq!(report["outcome"], expected, "grant of {entitlement}: {report}");
        assert_eq!(report["grant_id"], grant_id.as_str());
    }
    assert!(harness.synced().await.grants.contains(&grant_id), "a sync after the grant shows {grant_id}");

    let (output, report) = harness.provision("revoke", &["--grant", &grant_id], true).await;
    assert_success(&output);
    assert_eq!(report["outcome"], "revoked", "revoke of {grant_id}: {report}");
    let (output, report) = harness.provision("revoke", &target, true).await;
    assert_success(&output);
    assert_eq!(report["outcome"], "already_revoked", "second revoke of {grant_id}: {report}");
    assert!(!harness.synced().await.grants.contains(&grant_id), "a sync after the revoke no longer shows {grant_id}");

    let exported = export(&harness.path("sync.db")).await;
    let outcomes: Vec<&str> = exported["provisioning_audit"]
        .as_array()
        .expect("an audit trail")
        .iter()
        .filter_map(|r| r["outcome"].as_str())
        .collect();
    assert_eq!(
        outcomes,
        ["granted", "already_granted", "revoked", "already_revoked"],
        "the audit trail survives syncs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn group_membership_round_trip() {
    let harness = Harness::start(Tenant::sample()).await;
    let tenant = harness.fake.tenant();
    let group = tenant.groups.iter().find(|g| g.on_premises_sync_enabled != Some(true)).expect("a cloud group");
    let user =
        tenant.users.iter().find(|u| u.user_type == "Member" && !group.members.contains(&u.id)).expect("a non-member");
    round_trip(&harness, &format!("group:{}:members", group.id), "user", &user.id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn group_ownership_round_trip() {
    let harness = Harness::start(Tenant::sample()).await;
    let tenant = harness.fake.tenant();
    let group = &tenant.groups[0];
    let user =
        tenant.users.iter().find(|u| u.user_type == "Member" && !group.owners.contains(&u.id)).expect("a non-owner");
    round_trip(&harness, &format!("group:{}:owners", group.id), "user", &user.id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn application_ownership_round_trip() {
    let harness = Harness::start(Tenant::sample()).await;
    let tenant = harness.fake.tenant();
    let app = tenant.service_principals.iter().find(|sp| sp.service_principal_type == "Application").expect("an app");
    let user =
        tenant.users.iter().find(|u| u.user_type == "Member" && !app.owners.contains(&u.id)).expect("a non-owner");
    round_trip(&harness, &format!("enterprise_application:{}:owners", app.id), "user", &user.id).await;
}

/// The first application with an enabled app role that `fits`, and that role.
fn app_with_role(
    tenant: &Tenant,
    fits: impl Fn(&fake_azure::AppRole) -> bool,
) -> Option<(&fake_azure::ServicePrincipal, &fake_azure::AppRole)> {
    tenant
        .service_principals
        .iter()
        .filter(|sp| sp.service_principal_type == "Application")
        .find_map(|sp| sp.app_roles.iter().find(|role| role.is_enabled && fits(role)).map(|role| (sp, role)))
}

fn app_with_user_role(tenant: &Tenant) -> (&fake_azure::ServicePrincipal, &fake_azure::AppRole) {
    app_with_role(tenant, |role| role.allowed_member_types.iter().any(|t| t == "User"))
        .expect("an app with a role for users")
}

#[tokio::test(flavor = "multi_thread")]
async fn app_role_assignment_round_trip() {
    let harness = Harness::start(Tenant::sample()).await;
    let tenant = harness.fake.tenant();
    let (app, role) = app_with_user_role(&tenant);
    let user = tenant
        .users
        .iter()
        .find(|u| u.user_type == "Member" && !app.app_role_assigned_to.iter().any(|a| a.principal_id == u.id))
        .expect("a user without an assignment");
    round_trip(&harness, &format!("enterprise_application:{}:assignment:{}", app.id, role.id), "user", &user.id).await;
}

/// An application permission (an app role for applications, like Graph's `User.Read.All`) given
/// to a managed identity: what a workload needs just in time.
#[tokio::test(flavor = "multi_thread")]
async fn application_permission_round_trip() {
    let harness = Harness::start(Tenant::sample()).await;
    let tenant = harness.fake.tenant();
    let (api, role) = app_with_role(&tenant, |role| role.allowed_member_types.iter().all(|t| t == "Application"))
        .expect("an API with an application permission");
    let identity = tenant
        .service_principals
        .iter()
        .find(|sp| {
            sp.service_principal_type == "ManagedIdentity"
                && !api.app_role_assigned_to.iter().any(|a| a.principal_id == sp.id)
        })
        .expect("a managed identity without the permission");
    let entitlement = format!("enterprise_application:{}:assignment:{}", api.id, role.id);
    round_trip(&harness, &entitlement, "managed_identity", &identity.id).await;

    // The same permission is not for people: refused before any write, naming what it takes.
    let user = tenant.users.iter().find(|u| u.user_type == "Member").expect("a user");
    let (output, report) = harness
        .provision(
            "grant",
            &["--entitlement", &entitlement, "--principal-type", "user", "--principal-id", &user.id],
            true,
        )
        .await;
    assert!(!output.status.success());
    let error = report["error"].as_str().unwrap_or_default();
    assert!(error.contains("this app role takes enterprise_application, managed_identity"), "{report}");
    let writes = harness
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path_and_query.contains(&user.id))
        .count();
    assert_eq!(writes, 0, "no write was attempted");
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_role_assignment_round_trip() {
    let harness = Harness::start(Tenant::sample()).await;
    let tenant = harness.fake.tenant();
    let role = &tenant.role_definitions[1];
    let user = tenant
        .users
        .iter()
        .find(|u| u.user_type == "Member" && !tenant.role_assignments.iter().any(|a| a.principal_id == u.id))
        .expect("a user without a role");
    round_trip(&harness, &format!("role:{}:assigned", role.id), "user", &user.id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn directory_role_eligibility_round_trip() {
    let harness = Harness::start(Tenant::sample()).await;
    let tenant = harness.fake.tenant();
    let role = &tenant.role_definitions[0];
    let eligible = tenant.role_eligibilities.clone().unwrap_or_default();
    let user = tenant
        .users
        .iter()
        .find(|u| u.user_type == "Member" && !eligible.iter().any(|e| e.principal_id == u.id))
        .expect("a user without eligibility");
    round_trip(&harness, &format!("role:{}:eligible", role.id), "user", &user.id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn subscription_rbac_round_trip() {
    let harness = Harness::start(Tenant::sample()).await;
    let tenant = harness.fake.tenant();
    let subscription = &tenant.subscriptions[0].subscription_id;
    let user = member_user(&tenant, 3);
    let reader = crate::oracle::READER;
    round_trip(&harness, &format!("subscription:{subscription}:role:{reader}"), "user", &user).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_group_rbac_round_trip() {
    let harness = Harness::start(Tenant::sample()).await;
    let tenant = harness.fake.tenant();
    let group = &tenant.resource_groups[0];
    let user = member_user(&tenant, 4);
    let contributor = crate::oracle::CONTRIBUTOR;
    let entitlement = format!("resource_group:{}:{}:role:{contributor}", group.subscription_id, group.name);
    round_trip(&harness, &entitlement, "user", &user).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_one_users_app_role_leaves_another_users_assignment_intact() {
    let harness = Harness::start(Tenant::sample()).await;
    let tenant = harness.fake.tenant();
    let (app, role) = app_with_user_role(&tenant);
    let holders: Vec<String> =
        tenant.users.iter().filter(|u| u.user_type == "Member").take(2).map(|u| u.id.clone()).collect();
    let entitlement = format!("enterprise_application:{}:assignment:{}", app.id, role.id);
    for holder in &holders {
        let (output, _) = harness
            .provision(
                "grant",
                &["--entitlement", &entitlement, "--principal-type", "user", "--principal-id", holder],
                true,
            )
            .await;
        assert_success(&output);
    }
    let (output, report) = harness
        .provision(
            "revoke",
            &["--entitlement", &entitlement, "--principal-type", "user", "--principal-id", &holders[1]],
            true,
        )
        .await;
    assert_success(&output);
    assert_eq!(report["outcome"], "revoked");
    let after = harness.fake.tenant();
    let app_after = after.service_principals.iter().find(|sp| sp.id == app.id).expect("the app");
    let holds =
        |user: &str| app_after.app_role_assigned_to.iter().any(|a| a.principal_id == user && a.app_role_id == role.id);
    assert!(holds(&holders[0]), "the other user's assignment of the same role is intact");
    assert!(!holds(&holders[1]), "the revoked user's assignment is gone");
    let snapshot = harness.synced().await;
    assert!(snapshot.grants.contains(&format!("{entitlement}:user:{}", holders[0])));
}

#[tokio::test(flavor = "multi_thread")]
async fn with_provisioning_off_a_grant_is_refused_and_azure_sees_no_write() {
    let harness = Harness::start(Tenant::sample()).await;
    let tenant = harness.fake.tenant();
    let group = &tenant.groups[0];
    let user = member_user(&tenant, 5);
    let entitlement = format!("group:{}:members", group.id);
    let (output, _) = harness
        .provision(
            "grant",
            &["--entitlement", &entitlement, "--principal-type", "user", "--principal-id", &user],
            false,
        )
        .await;
    assert!(!output.status.success(), "the grant must be refused");
    assert!(stderr(&output).contains("provisioning is off"), "{}", stderr(&output));
    let writes: Vec<String> = harness
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path_and_query))
        .collect();
    assert!(writes.iter().all(|w| w.contains("/oauth2/")), "no write reached Azure: {writes:?}");
}

/// The host, not only the component, keeps writes in: the gateway refuses them when provisioning is off.
#[tokio::test(flavor = "multi_thread")]
async fn writes_never_leave_the_gateway_when_provisioning_is_off() {
    let harness = Harness::start(Tenant::sample()).await;
    let origin = Origin::parse(&harness.fake.graph_url()).expect("an origin");
    let gateway = TenantGateway::new(GatewaySettings {
        policy: OutboundPolicy::new(vec![AllowedOrigin { origin, token_scope: None }]),
        tokens: None,
        transport: HttpTransport::new(TransportLimits::default()).expect("a transport"),
        max_concurrent_requests: 1,
        stats: Arc::new(OutboundStats::default()),
    });
    for method in [http::Method::POST, http::Method::PUT, http::Method::PATCH, http::Method::DELETE] {
        let request = BufferedRequest {
            method: method.clone(),
            uri: format!("{}/v1.0/groups/x/members/$ref", harness.fake.graph_url()).parse().expect("a URI"),
            headers: http::HeaderMap::new(),
            body: Bytes::from_static(b"{}"),
            answer_budget: None,
        };
        let refused = gateway.send(request).await;
        assert!(matches!(refused, Err(GatewayError::MethodNotAllowed { .. })), "{method}: {refused:?}");
    }
    assert!(harness.fake.requests().is_empty(), "nothing reached the fake");
}

/// Defect 10 of the Go connector: a 403 on grant was reported as success.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_grant_is_an_error_that_names_the_missing_permission() {
    let harness = Harness::start(Tenant::sample()).await;
    let tenant = harness.fake.tenant();
    let group = &tenant.groups[0];
    let user = member_user(&tenant, 5);
    harness.fake.forbid("/members/$ref");
    let entitlement = format!("group:{}:members", group.id);
    let (output, report) = harness
        .provision("grant", &["--entitlement", &entitlement, "--principal-type", "user", "--principal-id", &user], true)
        .await;
    assert!(!output.status.success(), "a refused grant fails the command");
    assert_eq!(report["outcome"], "error", "{report}");
    let error = report["error"].as_str().unwrap_or_default();
    assert!(error.contains("GroupMember.ReadWrite.All"), "the error says which permission is missing: {error}");
    let after = harness.fake.tenant();
    assert!(!after.groups[0].members.contains(&user), "nothing changed");
}

/// A principal type the entitlement cannot take is refused before any request.
#[tokio::test(flavor = "multi_thread")]
async fn a_principal_type_the_entitlement_cannot_take_is_refused_before_any_call() {
    let harness = Harness::start(Tenant::sample()).await;
    let tenant = harness.fake.tenant();
    let identity =
        tenant.service_principals.iter().find(|sp| sp.service_principal_type == "ManagedIdentity").expect("an MI");
    let entitlement = format!("role:{}:eligible", tenant.role_definitions[0].id);
    let (output, report) = harness
        .provision(
            "grant",
            &["--entitlement", &entitlement, "--principal-type", "managed_identity", "--principal-id", &identity.id],
            true,
        )
        .await;
    assert!(!output.status.success());
    assert_eq!(report["outcome"], "error", "{report}");
    let writes = harness
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && !r.path_and_query.contains("/oauth2/"))
        .count();
    assert_eq!(writes, 0, "no write was attempted");
}
