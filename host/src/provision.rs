//! Grant and revoke: one change in Azure, decided by a reviewer, made through the sandbox and
//! recorded in the audit trail.
//!
//! Guarded twice: this module refuses before loading anything when provisioning is off, and only
//! the gateway built here for the change may write at all (every other call's only reads). The
//! audit row is written as `pending` before the call and settled on every outcome, so no change
//! can reach Azure without a row; a change whose row cannot be written is not started. A call that timed out is not
//! blindly repeated: the retry asks the connector again, and the connector checks whether the
//! change already happened (Azure answers "already exists" / "not found"), so it ends in
//! `already_granted` / `already_revoked` rather than a second change.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use serde::Serialize;

use crate::cli::RunArgs;
use crate::component::load_runtime;
use crate::connector_error::describe;
use crate::outbound::OutboundStats;
use crate::outbound::gateway::TenantGateway;
use crate::outbound::transport::{HttpTransport, TransportLimits};
use crate::sandbox::{
    ConfigValue, ConnectorError, ConnectorRuntime, ProvisionOutcome, ProvisionResult, ResourceRef, SandboxLimits,
};
use crate::store::{AuditRecord, PENDING, begin_audit, settle_audit};
use crate::tenant::{TenantSettings, offline_gateway};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Grant,
    Revoke,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Grant => "grant",
            Action::Revoke => "revoke",
        }
    }
}

/// What to change: an entitlement and a principal.
#[derive(Clone, Debug)]
pub struct Change {
    pub action: Action,
    pub entitlement_id: String,
    pub principal: ResourceRef,
}

impl Change {
    /// A revoke named by grant id: `<entitlement_id>:<principal_type>:<principal_id>`. The
    /// entitlement id itself contains colons, so the principal is read from the right.
    pub fn revoke_grant(grant_id: &str) -> anyhow::Result<Change> {
        let mut parts = grant_id.rsplitn(3, ':');
        let (Some(principal_id), Some(principal_type), Some(entitlement_id)) =
            (parts.next(), parts.next(), parts.next())
        else {
            bail!("--grant {grant_id:?} is not a grant id: expected <entitlement_id>:<principal_type>:<principal_id>");
        };
        if entitlement_id.is_empty() || principal_type.is_empty() || principal_id.is_empty() {
            bail!("--grant {grant_id:?} is not a grant id: expected <entitlement_id>:<principal_type>:<principal_id>");
        }
        Ok(Change {
            action: Action::Revoke,
            entitlement_id: entitlement_id.to_owned(),
            principal: ResourceRef { resource_type: principal_type.to_owned(), id: principal_id.to_owned() },
        })
    }
}

/// The one JSON line a grant or revoke prints.
#[derive(Debug, Serialize)]
pub struct ChangeReport {
    pub outcome: &'static str,
    pub action: &'static str,
    pub entitlement_id: String,
    pub principal_type: String,
    pub principal_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// True when the first attempt did not get an answer and the change was checked again.
    pub retried: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn outcome_name(outcome: ProvisionOutcome) -> &'static str {
    match outcome {
        ProvisionOutcome::Granted => "granted",
        ProvisionOutcome::AlreadyGranted => "already_granted",
        ProvisionOutcome::Revoked => "revoked",
        ProvisionOutcome::AlreadyRevoked => "already_revoked",
    }
}

/// Everything a change runs with: the loaded connector, the tenant's provisioning gateway
/// (`TenantSettings::provisioning_gateway`) and the connector's configuration.
pub struct ProvisioningContext<'a> {
    pub runtime: &'a ConnectorRuntime,
    pub gateway: Arc<TenantGateway>,
    pub config: &'a [ConfigValue],
}

/// `grant`/`revoke` on the command line: loads the connector and builds the tenant's gateway,
/// then [`apply`].
pub async fn apply_from_cli(
    settings: &TenantSettings,
    run: &RunArgs,
    audit_file: &Path,
    change: &Change,
) -> anyhow::Result<ChangeReport> {
    refuse_unless_enabled(settings)?;
    let runtime = load_runtime(run.component.as_deref(), SandboxLimits::default())?;
    let transport = HttpTransport::from_environment(TransportLimits::default(), &run.network_options())?;
    let metadata = runtime.instantiate(Arc::new(offline_gateway(transport.clone()))).await?.metadata().await?;
    let config = settings.connector_config();
    let gateway = Arc::new(settings.provisioning_gateway(&metadata, transport, Arc::new(OutboundStats::default()))?);
    let context = ProvisioningContext { runtime: &runtime, gateway, config: &config };
    apply(settings, &context, audit_file, change).await
}

fn refuse_unless_enabled(settings: &TenantSettings) -> anyhow::Result<()> {
    if !settings.provisioning {
        bail!(
            "provisioning is off: nothing was changed. Enable it with --provisioning (BATON_PROVISIONING=true) once grants and revokes are approved for this tenant"
        );
    }
    Ok(())
}

/// Makes the change and records it in the audit trail of `audit_file`: a `pending` row first
/// (no row, no change), settled with the outcome however the call ends.
pub async fn apply(
    settings: &TenantSettings,
    context: &ProvisioningContext<'_>,
    audit_file: &Path,
    change: &Change,
) -> anyhow::Result<ChangeReport> {
    refuse_unless_enabled(settings)?;
    context.gateway.preflight().await.map_err(|err| anyhow!("{err}"))?;

    let at = crate::clock::now_rfc3339();
    let mut report = ChangeReport {
        outcome: PENDING,
        action: change.action.name(),
        entitlement_id: change.entitlement_id.clone(),
        principal_type: change.principal.resource_type.clone(),
        principal_id: change.principal.id.clone(),
        grant_id: None,
        request_id: None,
        retried: false,
        error: None,
    };
    let pending = begin_audit(audit_file, &audit_record(&at, &report)).with_context(|| {
        format!(
            "nothing was changed: the {} could not be recorded in the audit trail of {} first; make the file writable and try again",
            report.action,
            audit_file.display()
        )
    })?;

    let (answer, retried) = call_connector(context, change).await;
    report.retried = retried;
    match &answer {
        Ok(Ok(done)) => {
            report.outcome = outcome_name(done.outcome);
            report.grant_id = Some(done.grant_id.clone());
            report.request_id = done.request_id.clone();
        }
        Ok(Err(error)) => {
            report.outcome = "error";
            report.error = Some(match context.gateway.take_first_failure() {
                Some(cause) => cause,
                None => describe(error),
            });
        }
        // A trap or a deadline ends the call without an answer: a request may have reached
        // Azure. The row says so; a retry asks the connector, which ends in `already_*` if it did.
        Err(error) => {
            report.outcome = "unknown";
            report.error = Some(format!(
                "{error:#}; the change may or may not have been made: run the same {} again to find out",
                report.action
            ));
        }
    }
    settle_audit(audit_file, &pending, &audit_record(&at, &report)).with_context(|| {
        format!(
            "the {} ended in {:?} but its audit row {} in {} could not be settled and still says pending",
            report.action,
            report.outcome,
            pending.id(),
            audit_file.display()
        )
    })?;
    match answer {
        Err(error) => Err(error),
        Ok(_) => Ok(report),
    }
}

/// Runs the grant or revoke, asking once more after an answer that never came (the connector
/// checks whether the first attempt happened). The flag says whether it asked again.
async fn call_connector(
    context: &ProvisioningContext<'_>,
    change: &Change,
) -> (anyhow::Result<Result<ProvisionResult, ConnectorError>>, bool) {
    let mut retried = false;
    loop {
        let answer = async {
            let call = context.runtime.instantiate(context.gateway.clone()).await?;
            match change.action {
                Action::Grant => call.grant(context.config, &change.entitlement_id, &change.principal).await,
                Action::Revoke => call.revoke(context.config, &change.entitlement_id, &change.principal).await,
            }
        }
        .await;
        match answer {
            Ok(Err(ConnectorError::Transport(reason))) if !retried => {
                tracing::warn!(%reason, "no answer to the {}; checking whether it happened before trying again", change.action.name());
                retried = true;
            }
            other => return (other, retried),
        }
    }
}

fn audit_record<'a>(at: &'a str, report: &'a ChangeReport) -> AuditRecord<'a> {
    AuditRecord {
        at,
        action: report.action,
        entitlement_id: &report.entitlement_id,
        principal_type: &report.principal_type,
        principal_id: &report.principal_id,
        outcome: report.outcome,
        grant_id: report.grant_id.as_deref(),
        request_id: report.request_id.as_deref(),
        error: report.error.as_deref(),
        retried: report.retried,
    }
}
