//! Scripted failures: paths that answer 403, and a point after which every request fails.

use std::sync::Mutex;

use crate::server::lock;

#[derive(Default)]
struct FaultSettings {
    forbidden_fragments: Vec<String>,
    /// Requests still answered normally before `failure_status` takes over.
    remaining_before_failure: Option<usize>,
    failure_status: u16,
}

#[derive(Default)]
pub struct Faults {
    settings: Mutex<FaultSettings>,
}

impl Faults {
    /// Fragments match in any case: Graph and ARM read paths case-insensitively, so a client's
    /// spelling must not decide whether it is denied.
    pub fn forbid(&self, path_fragment: &str) {
        lock(&self.settings).forbidden_fragments.push(path_fragment.to_ascii_lowercase());
    }

    pub fn fail_after(&self, requests: usize, status: u16) {
        let mut settings = lock(&self.settings);
        settings.remaining_before_failure = Some(requests);
        settings.failure_status = status;
    }

    /// Counts the request; `Some(status)` once the scripted failure point is reached.
    pub fn scripted_failure(&self) -> Option<u16> {
        let mut settings = lock(&self.settings);
        match settings.remaining_before_failure {
            Some(0) => Some(settings.failure_status),
            Some(remaining) => {
                settings.remaining_before_failure = Some(remaining - 1);
                None
            }
            None => None,
        }
    }

    pub fn is_forbidden(&self, path: &str) -> bool {
        let path = path.to_ascii_lowercase();
        lock(&self.settings).forbidden_fragments.iter().any(|fragment| path.contains(fragment.as_str()))
    }
}
