//! Prometheus text exposition of the per-tenant counters.
//!
//! Tenant ids are `[a-z0-9-]` (the tenants file refuses others), so they need no escaping as
//! label values.

use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use super::service::Service;
use super::status::{DURATION_BUCKETS, TenantCounters, TenantState};

struct Row {
    tenant: String,
    counters: TenantCounters,
    requests: u64,
    throttled: u64,
    refused: u64,
    running: bool,
}

/// A family with one sample per tenant.
struct PerTenant {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&Row) -> String,
}

const PER_TENANT: [PerTenant; 6] = [
    PerTenant {
        name: "connector_host_outbound_requests_total",
        kind: "counter",
        help: "Requests sent to Azure, retries and token requests included.",
        value: |row| row.requests.to_string(),
    },
    PerTenant {
        name: "connector_host_throttled_responses_total",
        kind: "counter",
        help: "Answers that were 429 (throttled).",
        value: |row| row.throttled.to_string(),
    },
    PerTenant {
        name: "connector_host_refused_requests_total",
        kind: "counter",
        help: "Requests of the connector the host refused to send (origin not allowed, write with provisioning off).",
        value: |row| row.refused.to_string(),
    },
    PerTenant {
        name: "connector_host_gaps",
        kind: "gauge",
        help: "Listings that could not be read in the last successful sync.",
        value: |row| row.counters.gaps_last_success.to_string(),
    },
    PerTenant {
        name: "connector_host_last_success_timestamp_seconds",
        kind: "gauge",
        help: "When the last successful sync finished (Unix time; 0 = never).",
        value: |row| {
            let since_epoch = row.counters.last_success.and_then(|at| at.duration_since(UNIX_EPOCH).ok());
            since_epoch.map_or(0, |since| since.as_secs()).to_string()
        },
    },
    PerTenant {
        name: "connector_host_sync_running",
        kind: "gauge",
        help: "1 while a sync of the tenant runs.",
        value: |row| u8::from(row.running).to_string(),
    },
];

pub fn render(service: &Service) -> String {
    let rows: Vec<Row> = service
        .tenants
        .values()
        .map(|slot| {
            let record = slot.record();
            let (requests, throttled, refused) = record.outbound_totals();
            Row {
                tenant: slot.config.id.clone(),
                counters: record.counters.clone(),
                requests,
                throttled,
                refused,
                running: record.state == TenantState::Running,
            }
        })
        .collect();
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, lines: &mut dyn Iterator<Item = String>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
    };
    family(
        "connector_host_tenants",
        "gauge",
        "Tenants this replica serves.",
        &mut std::iter::once(format!("connector_host_tenants {}", rows.len())),
    );
    family(
        "connector_host_syncs_total",
        "counter",
        "Syncs finished since start, by tenant and result.",
        &mut rows.iter().flat_map(|row| {
            [
                format!(
                    "connector_host_syncs_total{{tenant=\"{}\",result=\"success\"}} {}",
                    row.tenant, row.counters.syncs_succeeded
                ),
                format!(
                    "connector_host_syncs_total{{tenant=\"{}\",result=\"failure\"}} {}",
                    row.tenant, row.counters.syncs_failed
                ),
            ]
        }),
    );
    family(
        "connector_host_sync_duration_seconds",
        "histogram",
        "Duration of finished syncs.",
        &mut rows.iter().flat_map(|row| {
            let count = row.counters.syncs_succeeded + row.counters.syncs_failed;
            let mut lines: Vec<String> = DURATION_BUCKETS
                .iter()
                .zip(row.counters.duration_buckets)
                .map(|(bound, below)| {
                    format!(
                        "connector_host_sync_duration_seconds_bucket{{tenant=\"{}\",le=\"{bound}\"}} {below}",
                        row.tenant
                    )
                })
                .collect();
            lines.push(format!(
                "connector_host_sync_duration_seconds_bucket{{tenant=\"{}\",le=\"+Inf\"}} {count}",
                row.tenant
            ));
            lines.push(format!(
                "connector_host_sync_duration_seconds_sum{{tenant=\"{}\"}} {}",
                row.tenant, row.counters.duration_sum_seconds
            ));
            lines.push(format!("connector_host_sync_duration_seconds_count{{tenant=\"{}\"}} {count}", row.tenant));
            lines
        }),
    );
    for gauge in PER_TENANT {
        let name = gauge.name;
        family(
            name,
            gauge.kind,
            gauge.help,
            &mut rows.iter().map(|row| format!("{name}{{tenant=\"{}\"}} {}", row.tenant, (gauge.value)(row))),
        );
    }
    family(
        "connector_host_provisioning_total",
        "counter",
        "Grants and revokes requested through the operations API, by tenant, action and outcome.",
        &mut rows.iter().flat_map(|row| {
            row.counters.provisioning.iter().map(|((action, outcome), count)| {
                format!("connector_host_provisioning_total{{tenant=\"{}\",action=\"{action}\",outcome=\"{outcome}\"}} {count}", row.tenant)
            })
        }),
    );
    out
}
