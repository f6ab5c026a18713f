//! Memory outside the guest's linear memory (issue 10, finding 5): each attack of the probe's
//! `memory` module fails with an error naming the budget it hit, and everything it was charged
//! is given back when the call ends. The same attacks inside one `serve` are in
//! `a_hostile_tenant_hits_its_own_budget_while_the_others_stay_exact`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use connector_host::memory_budget::{MIB, TenantBudget};
use connector_host::sandbox::{ConnectorError, HOSTCALL_FUEL, SandboxLimits, TEXT_LIMIT, TenantCallLimits};
use fake_azure::{FakeAzure, Tenant};

use crate::probe::{Sandbox, profile};

async fn fake() -> (FakeAzure, Tenant) {
    let tenant = Tenant::sample();
    (FakeAzure::start(tenant.clone()).await.expect("the fake starts"), tenant)
}

/// A loopback server answering every request with `body_bytes` bytes, or never when `None`.
async fn loopback_server(body_bytes: Option<usize>) -> SocketAddr {
    let router = Router::new().fallback(move || async move {
        match body_bytes {
            Some(bytes) => vec![b'a'; bytes],
            None => std::future::pending().await,
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

/// A probe sandbox allowing `allowed`, whose tenant ("tenant hostile") has `budget` bytes.
fn sandbox(fake: &FakeAzure, tenant: &Tenant, allowed: &[String], limits: SandboxLimits, budget: usize) -> Sandbox {
    let sandbox = Sandbox::new(tenant, &fake.login_url(), allowed, limits);
    let Ok(gateway) = Arc::try_unwrap(sandbox.gateway) else { panic!("the new gateway has no other holder") };
    let gateway = gateway.with_sandbox_limits(TenantBudget::new("tenant hostile", budget), TenantCallLimits::default());
    Sandbox { runtime: sandbox.runtime, gateway: Arc::new(gateway) }
}

/// Requests still in flight when a call ends are cancelled as their tasks are dropped, which the
/// runtime does a moment later; their charges go with them.
async fn assert_all_given_back(sandbox: &Sandbox) {
    let budget = sandbox.gateway.memory_budget();
    for _ in 0..500 {
        if budget.used() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(budget.used(), 0, "the call's charges are given back when it ends");
}

#[tokio::test(flavor = "multi_thread")]
async fn linear_memory_counts_against_the_tenant_budget() {
    let (fake, tenant) = fake().await;
    let sandbox = sandbox(&fake, &tenant, &[], SandboxLimits::default(), 100 * MIB);
    let error = sandbox.run("allocate", &[]).await.expect_err("the tenant budget stops the growth");
    let message = format!("{error:#}");
    assert!(message.contains("list-resources of allocate"), "{message}");
    assert!(message.contains("tenant hostile exceeded its memory budget of 100 MiB"), "{message}");
    assert!(message.contains("growing linear memory"), "{message}");
    assert_all_given_back(&sandbox).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn header_tables_are_capped_in_number_and_size() {
    let (fake, tenant) = fake().await;
    let sandbox = sandbox(&fake, &tenant, &[], SandboxLimits::default(), 1024 * MIB);
    let many = sandbox.run("header-tables", &[("count", "100000"), ("values", "8")]).await;
    let message = format!("{:#}", many.expect_err("the table of handles fills up and stops the call"));
    assert!(message.contains("list-resources of header-tables"), "{message}");
    assert!(message.contains("at most 256 handles at once"), "the error says the handle table is full: {message}");
    let large = sandbox.run("header-tables", &[("count", "1"), ("values", "1000")]).await;
    let message = format!("{:#}", large.expect_err("a table past the field size limit stops the call"));
    assert!(message.contains("total size of fields exceeds limit"), "{message}");
    assert_all_given_back(&sandbox).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_are_charged_while_the_host_buffers_them() {
    let (fake, tenant) = fake().await;
    // Never answered, so every body stays held until the call ends.
    let target = loopback_server(None).await;
    let origin = format!("http://{target}");
    let limits = SandboxLimits { call_timeout: Duration::from_secs(3), ..SandboxLimits::default() };
    let sandbox = sandbox(&fake, &tenant, &[origin.clone()], limits, 12 * MIB);
    let config = [("target", origin.as_str()), ("count", "4"), ("size", "4194304")];
    let error = sandbox.run("request-bodies", &config).await.expect_err("the bodies pass the tenant budget");
    let message = format!("{error:#}");
    assert!(message.contains("tenant hostile exceeded its memory budget of 12 MiB"), "{message}");
    assert!(message.contains("a request body being buffered"), "{message}");
    assert_all_given_back(&sandbox).await;
}

/// With 4 request slots and a server that never answers, a guest opening 12 requests gets no more
/// bodies buffered than one opening 4: the others wait for a slot before the host reads them.
#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_wait_for_a_slot_before_the_host_buffers_them() {
    let (fake, tenant) = fake().await;
    let target = loopback_server(None).await;
    let origin = format!("http://{target}");
    let limits = SandboxLimits { call_timeout: Duration::from_secs(3), ..SandboxLimits::default() };
    let mut peaks = Vec::new();
    for count in ["4", "12"] {
        let sandbox = sandbox(&fake, &tenant, &[origin.clone()], limits, 1024 * MIB);
        let config = [("target", origin.as_str()), ("count", count), ("size", "1048576")];
        let error = sandbox.run("request-bodies", &config).await.expect_err("unanswered requests end at the deadline");
        assert!(format!("{error:#}").contains("was stopped"), "{error:#}");
        assert_all_given_back(&sandbox).await;
        peaks.push(sandbox.gateway.memory_budget().peak());
    }
    assert!(peaks[0] >= 4 * MIB, "the 4 bodies in their slots were charged: {peaks:?}");
    assert!(peaks[1] < peaks[0] + MIB, "requests without a slot had no body buffered: {peaks:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_held_unread_count_against_the_tenant_budget() {
    let (fake, tenant) = fake().await;
    let target = loopback_server(Some(MIB)).await;
    let origin = format!("http://{target}");
    let sandbox = sandbox(&fake, &tenant, &[origin.clone()], SandboxLimits::default(), 48 * MIB);
    let url = format!("{origin}/answer");
    let error = sandbox
        .run("held-responses", &[("target", &url), ("count", "100")])
        .await
        .expect_err("held answers pass the tenant budget");
    let message = format!("{error:#}");
    assert!(message.contains("tenant hostile exceeded its memory budget of 48 MiB"), "{message}");
    // The answers already held fill the budget, so the next one is refused as it arrives.
    assert!(message.contains("an answer being received"), "{message}");
    assert!(sandbox.gateway.memory_budget().peak() > 40 * MIB, "the held answers were charged");
    assert_all_given_back(&sandbox).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_is_charged_while_it_arrives_not_only_once_it_is_whole() {
    let (fake, tenant) = fake().await;
    // Under the transport's 64 MiB cap on one answer, over the tenant's whole budget.
    let target = loopback_server(Some(40 * MIB)).await;
    let origin = format!("http://{target}");
    let sandbox = sandbox(&fake, &tenant, &[origin.clone()], SandboxLimits::default(), 16 * MIB);
    let url = format!("{origin}/answer");
    let error = sandbox
        .run("held-responses", &[("target", &url), ("count", "1")])
        .await
        .expect_err("an answer larger than the budget is refused");
    let message = format!("{error:#}");
    assert!(message.contains("tenant hostile exceeded its memory budget of 16 MiB"), "{message}");
    assert!(message.contains("an answer being received"), "refused while it arrives: {message}");
    assert!(sandbox.gateway.memory_budget().peak() <= 16 * MIB, "the budget was never passed");
    assert_all_given_back(&sandbox).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_whose_items_alias_one_string_is_refused_before_it_is_copied() {
    let (fake, tenant) = fake().await;
    let sandbox = sandbox(&fake, &tenant, &[], SandboxLimits::default(), 1024 * MIB);
    // 5,000 profiles of 8 MiB each would be 40 GB once copied; the guest holds 8 MiB of them.
    let error = sandbox
        .run("aliased-page", &[("count", "5000"), ("size", "8388608")])
        .await
        .expect_err("the host stops copying at its hostcall fuel");
    let message = format!("{error:#}");
    assert!(message.contains("list-resources of aliased-page"), "{message}");
    let limit = format!("at most {} MiB of one result", HOSTCALL_FUEL.div_ceil(MIB));
    assert!(message.contains(&limit), "{message}");
    assert!(sandbox.gateway.memory_budget().peak() < 64 * MIB, "nothing near the aliased size was held");
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_notices_and_errors_are_cut_with_a_marker() {
    let (fake, tenant) = fake().await;
    let sandbox = sandbox(&fake, &tenant, &[], SandboxLimits::default(), 1024 * MIB);
    let page = sandbox.run("huge-notice", &[("size", "1048576")]).await.expect("the call completes").expect("a page");
    assert_eq!(profile(&page), serde_json::json!({}));
    let notice = &page.notices[0];
    assert!(notice.message.len() <= TEXT_LIMIT + 64, "{}", notice.message.len());
    assert!(notice.message.ends_with("[cut by the host: 1048576 bytes in all]"), "{}", &notice.message[TEXT_LIMIT..]);

    let error = sandbox.run("huge-error", &[("size", "1048576")]).await.expect("the call completes");
    match error {
        Err(ConnectorError::Transport(text)) => {
            assert!(text.len() <= TEXT_LIMIT + 64, "{}", text.len());
            assert!(text.ends_with("[cut by the host: 1048576 bytes in all]"));
        }
        other => panic!("the probe's error comes back cut, got {other:?}"),
    }
}

/// A hostile tenant of the `serve` test: its probe, the tenant keys it gets, and the error its
/// status must show.
struct HostileTenant {
    id: &'static str,
    attack: &'static str,
    options: &'static [(&'static str, &'static str)],
    keys: &'static str,
    error: &'static str,
}

const HOSTILE_TENANTS: [HostileTenant; 4] = [
    HostileTenant {
        id: "hostile-budget",
        attack: "allocate",
        options: &[],
        keys: "memory_budget_mib = 100\n",
        error: "tenant hostile-budget exceeded its memory budget of 100 MiB",
    },
    HostileTenant {
        id: "hostile-call-memory",
        attack: "allocate",
        options: &[],
        keys: "call_memory_mib = 32\n",
        error: "past the limit of 32 MiB",
    },
    HostileTenant {
        id: "hostile-deadline",
        attack: "spin",
        options: &[],
        keys: "call_deadline = \"2s\"\n",
        error: "deadline of 2s",
    },
    HostileTenant {
        id: "hostile-aliased",
        attack: "aliased-page",
        options: &[("count", "5000"), ("size", "8388608")],
        keys: "",
        error: "MiB of one result",
    },
];

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_tenant_hits_its_own_budget_while_the_others_stay_exact() {
    use crate::serve::{assert_snapshot_is_exact, secrets, small_tenant};
    use crate::serve_support::{ServeProcess, TenantEntry, tenants_file};

    let mut entries = Vec::new();
    let mut healthy = Vec::new();
    for n in 0..2 {
        let fake = FakeAzure::start(small_tenant(n)).await.expect("a fake Azure");
        entries.push(TenantEntry::for_fake(&format!("healthy-{n}"), &fake));
        healthy.push(fake);
    }
    let hostile_fake = FakeAzure::start(small_tenant(99)).await.expect("a fake Azure");
    for hostile in &HOSTILE_TENANTS {
        let mut entry = TenantEntry::probe(hostile.id, &hostile_fake, hostile.attack, hostile.options);
        entry.extra.push_str(hostile.keys);
        entries.push(entry);
    }
    // The global limits are generous: each hostile tenant is stopped by its own.
    let serve = ServeProcess::start(
        &tenants_file(&entries),
        &secrets(&entries),
        &["--max-concurrent-syncs", "6", "--workers", "2", "--call-timeout", "5m"],
    )
    .await;
    let ids: Vec<String> = entries.iter().map(|entry| entry.id.clone()).collect();
    let statuses = serve.wait_for_syncs(&ids, 1).await;
    for hostile in &HOSTILE_TENANTS {
        let status = &statuses[hostile.id];
        assert_eq!(status["last_result"]["outcome"], "failure", "{status}");
        let error = status["last_result"]["error"].as_str().unwrap_or_default();
        assert!(error.contains(hostile.error), "{} fails saying why: {error}", hostile.id);
    }
    for (n, fake) in healthy.iter().enumerate() {
        let id = format!("healthy-{n}");
        assert_eq!(statuses[&id]["last_result"]["outcome"], "success", "{}", statuses[&id]);
        assert_snapshot_is_exact(&serve, &id, fake).await;
    }
}
