//! A fake Azure for tests, benchmarks and the demo: real HTTP servers on loopback that behave like
//! the Microsoft identity platform's token endpoint, Microsoft Graph and Azure Resource Manager
//! for the calls an identity-governance connector makes, including the directory audit log that
//! reports service principals' owner and app-role changes and the Azure Activity Log that reports
//! each subscription's RBAC and resource-group changes. It never contacts anything else.
//!
//! Three listeners (login, Graph, ARM) on ephemeral ports let tests check per-origin behaviour.
//! Behaviour follows `shared/docs/azure-reference.md` and Microsoft's published examples: absolute
//! nextLinks with opaque skip tokens and deliberately short pages, advanced queries that need
//! `ConsistencyLevel: eventual`, inherited RBAC assignments, fractional `Retry-After`, and
//! Azure's error envelopes. Tests steer it with [`FakeAzure::throttle_every`], [`FakeAzure::forbid`],
//! [`FakeAzure::fail_after`], [`FakeAzure::mutate`], [`FakeAzure::audit_latency`] and
//! [`FakeAzure::activity_log_latency`].

mod access_tokens;
mod arm;
mod directory;
mod event_log;
mod faults;
mod generate;
mod graph;
mod ids;
mod login;
mod model;
mod paging;
mod request;
mod request_log;
mod sample;
mod server;
mod throttle;

pub use model::{
    AppRole, AppRoleAssignment, ArmRoleAssignment, ArmRoleDefinition, DirectoryObjectStub, DirectoryRoleAssignment,
    DirectoryRoleDefinition, DirectoryRoleEligibility, Group, ResourceGroup, ServicePrincipal, StubKind, Subscription,
    Tenant, TenantShape, User,
};
pub use request_log::{LoggedRequest, Service};
pub use server::{FakeAzure, TlsIdentity};
