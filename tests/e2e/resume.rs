//! A sync killed with SIGKILL at any point resumes from its last checkpoint, and its result is
//! identical to an uninterrupted sync; the previous snapshot stays readable throughout.

use std::time::Duration;

use fake_azure::{FakeAzure, Tenant, TenantShape};
use serde_json::Value;

use crate::support::{HOST, Harness, assert_success, export};

fn shape() -> TenantShape {
    TenantShape {
        users: 200,
        groups: 30,
        members_per_group: 12,
        service_principals: 6,
        app_role_assignments_per_app: 6,
        subscriptions: 2,
        resource_groups_per_subscription: 4,
        rbac_assignments_per_subscription: 10,
    }
}

/// The export without the run's own facts (times, request counts), which differ by design.
fn comparable(mut exported: Value) -> Value {
    if let Some(object) = exported.as_object_mut() {
        object.remove("sync");
    }
    exported
}

/// The partial snapshot a sync into `output` works in.
pub(crate) fn partial_of(output: &std::path::Path) -> std::path::PathBuf {
    let name = output.file_name().expect("a file name").to_string_lossy();
    output.with_file_name(format!(".{name}.partial"))
}

/// Starts a sync into `output` and kills it with SIGKILL once the fake has answered `after`
/// more requests. Returns false when the sync finished before it could be killed (a busy
/// machine can delay this watcher), which the caller retries with an earlier kill point.
pub(crate) async fn kill_sync_after(harness: &Harness, output: &std::path::Path, after: usize, extra: &[&str]) -> bool {
    let start = harness.fake.requests().len();
    let mut args = harness.sync_args(output);
    args.extend(extra.iter().map(|arg| arg.to_string()));
    let mut child = tokio::process::Command::new(HOST)
        .args(&args)
        .env_clear()
        .env("BATON_LOG_LEVEL", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the host starts");
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if harness.fake.requests().len() >= start + after {
            child.start_kill().expect("SIGKILL is delivered");
            let _ = child.wait().await;
            return partial_of(output).exists();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_sync_resumes_from_its_checkpoint_and_matches_an_uninterrupted_one() {
    let harness = Harness::start(Tenant::generate(&shape())).await;
    let reference = harness.path("reference.db");
    let before = harness.fake.requests().len();
    assert_success(&harness.sync(&reference, &["--page-size", "5"]).await);
    let full_requests = harness.fake.requests().len() - before;
    let expected = comparable(export(&reference).await);

    for (index, fraction) in [0.15, 0.5, 0.85].into_iter().enumerate() {
        let output = harness.path(&format!("killed-{index}.db"));
        // `--full`: the previous snapshot holds delta tokens; the next run (without `--full`)
        // resumes the interrupted full sync before it considers an incremental one.
        let run = Interrupted { previous: &reference, output: &output, args: &["--page-size", "5", "--full"] };
        let summary = run.kill_and_resume(&harness, fraction, full_requests, &expected).await;
        assert!(summary.contains("resumed"), "the second run resumed:\n{summary}");
    }
}

/// A sync into `output`, which holds a copy of `previous` (a complete snapshot) when it starts.
struct Interrupted<'a> {
    previous: &'a std::path::Path,
    output: &'a std::path::Path,
    /// Arguments of the run that is killed (the resuming run takes them without `--full`).
    args: &'a [&'a str],
}

impl Interrupted<'_> {
    /// Kills the sync after `fraction` of the `uninterrupted` run's requests, checks the previous
    /// snapshot is still whole, then runs again: it must succeed, read less than `uninterrupted`,
    /// and end with `expected`. Returns the second run's summary.
    async fn kill_and_resume(
        &self,
        harness: &Harness,
        fraction: f64,
        uninterrupted: usize,
        expected: &Value,
    ) -> String {
        let previous_export = comparable(export(self.previous).await);
        let mut kill_at = (uninterrupted as f64 * fraction) as usize;
        std::fs::copy(self.previous, self.output).expect("a previous snapshot");
        while !kill_sync_after(harness, self.output, kill_at, self.args).await {
            std::fs::copy(self.previous, self.output).expect("a previous snapshot");
            kill_at /= 2;
            assert!(kill_at > 3, "could not kill the sync before it finished");
        }
        assert_eq!(comparable(export(self.output).await), previous_export, "the previous snapshot is still whole");

        let before_resume = harness.fake.requests().len();
        let resume_args: Vec<&str> = self.args.iter().copied().filter(|arg| *arg != "--full").collect();
        let resumed = harness.sync(self.output, &resume_args).await;
        assert_success(&resumed);
        let resume_requests = harness.fake.requests().len() - before_resume;
        assert!(
            resume_requests < uninterrupted,
            "resuming after {kill_at} requests re-read less than the whole sync ({resume_requests} vs {uninterrupted})"
        );
        assert_eq!(&comparable(export(self.output).await), expected, "killed at {kill_at} requests, then resumed");
        String::from_utf8_lossy(&resumed.stdout).into_owned()
    }
}

/// A sync that failed (Azure answering 500) keeps its checkpoint, and the next run resumes it.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_sync_is_resumed_by_the_next_run_and_comes_out_exact() {
    let harness = Harness::start(Tenant::generate(&shape())).await;
    let reference = harness.path("reference.db");
    assert_success(&harness.sync(&reference, &["--page-size", "5"]).await);
    let expected = comparable(export(&reference).await);

    let output = harness.path("sync.db");
    harness.fake.fail_after(150, 500);
    let failed = harness.sync(&output, &["--page-size", "5"]).await;
    assert!(!failed.status.success(), "the sync fails at the scripted point");
    assert!(partial_of(&output).exists(), "its checkpoint is kept");
    harness.fake.fail_after(usize::MAX, 500);
    let resumed = harness.sync(&output, &["--page-size", "5"]).await;
    assert_success(&resumed);
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("resumed"));
    assert_eq!(comparable(export(&output).await), expected);
    assert!(!partial_of(&output).exists(), "a completed sync leaves no partial file");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partial_sync_under_another_configuration_is_not_resumed() {
    let harness = Harness::start(Tenant::generate(&shape())).await;
    let output = harness.path("sync.db");
    let mut kill_at = 60;
    while !kill_sync_after(&harness, &output, kill_at, &["--page-size", "5"]).await {
        kill_at /= 2;
        assert!(kill_at > 5, "could not kill the sync before it finished");
    }
    let result = harness.sync(&output, &["--page-size", "7"]).await;
    assert_success(&result);
    let summary = String::from_utf8_lossy(&result.stdout).into_owned();
    assert!(!summary.contains("resumed"), "a different page size is a different sync:\n{summary}");
}

/// Users join groups, and an application gets a new owner: changes an incremental sync reads
/// from delta queries and the audit log.
fn change_memberships(fake: &FakeAzure) {
    fake.mutate(|tenant| {
        let users: Vec<String> = tenant.users.iter().map(|user| user.id.clone()).collect();
        for (index, group) in tenant.groups.iter_mut().enumerate() {
            let joiner = users.iter().skip(index * 3).find(|id| !group.members.contains(id)).expect("a user to add");
            group.members.push(joiner.clone());
        }
        let application = tenant
            .service_principals
            .iter_mut()
            .find(|sp| sp.service_principal_type == "Application")
            .expect("an application");
        let owner = users.iter().find(|id| !application.owners.contains(id)).expect("a user to own it");
        application.owners.push(owner.clone());
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_incremental_sync_resumes_from_its_checkpoint_and_matches_an_uninterrupted_one() {
    let harness = Harness::start(Tenant::generate(&shape())).await;
    let previous = harness.path("previous.db");
    assert_success(&harness.sync(&previous, &["--page-size", "5"]).await);
    change_memberships(&harness.fake);

    let reference = harness.path("reference.db");
    std::fs::copy(&previous, &reference).expect("a copy of the previous snapshot");
    let before = harness.fake.requests().len();
    let uninterrupted = harness.sync(&reference, &["--page-size", "5"]).await;
    assert_success(&uninterrupted);
    assert!(String::from_utf8_lossy(&uninterrupted.stdout).contains("incremental"), "an incremental sync");
    let incremental_requests = harness.fake.requests().len() - before;
    let expected = comparable(export(&reference).await);
    assert_ne!(expected, comparable(export(&previous).await), "the changes show");

    for (index, fraction) in [0.3, 0.7].into_iter().enumerate() {
        let output = harness.path(&format!("killed-incremental-{index}.db"));
        let run = Interrupted { previous: &previous, output: &output, args: &["--page-size", "5"] };
        let summary = run.kill_and_resume(&harness, fraction, incremental_requests, &expected).await;
        assert!(
            summary.contains("resumed") && summary.contains("incremental"),
            "it resumed the incremental sync:\n{summary}"
        );
    }
}
