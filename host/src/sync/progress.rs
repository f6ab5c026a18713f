//! Progress of a long sync on a terminal: the listings under way, objects, requests and
//! throttled answers. Off the terminal, the same facts go to the log as each listing ends.
//!
//! Listings of independent resource types run at once, so progress is kept per phase
//! (`"group resources"`, `"group entitlements and grants"`) behind a lock, and any task may
//! report.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::outbound::OutboundStats;

#[derive(Default)]
struct Phase {
    pages: u64,
    objects: u64,
}

#[derive(Default)]
struct State {
    /// Phases under way.
    running: BTreeMap<String, Phase>,
    /// Objects written by every phase so far.
    objects: u64,
}

pub struct SyncProgress {
    bar: Option<ProgressBar>,
    stats: Arc<OutboundStats>,
    state: Mutex<State>,
}

impl SyncProgress {
    pub fn new(stats: Arc<OutboundStats>, show: bool) -> Self {
        let bar = (show && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        SyncProgress { bar, stats, state: Mutex::new(State::default()) }
    }

    pub fn start_phase(&self, phase: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.running.entry(phase.to_owned()).or_default();
            self.redraw(&state);
        }
    }

    pub fn page(&self, phase: &str, objects: usize) {
        if let Ok(mut state) = self.state.lock() {
            let counts = state.running.entry(phase.to_owned()).or_default();
            counts.pages += 1;
            counts.objects += objects as u64;
            state.objects += objects as u64;
            self.redraw(&state);
        }
    }

    pub fn finish_phase(&self, phase: &str) {
        if let Ok(mut state) = self.state.lock()
            && let Some(counts) = state.running.remove(phase)
        {
            tracing::info!(
                "{phase}: {} pages, {} objects; {} requests, {} throttled so far",
                counts.pages,
                counts.objects,
                self.stats.requests(),
                self.stats.throttled()
            );
            self.redraw(&state);
        }
    }

    fn redraw(&self, state: &State) {
        let Some(bar) = &self.bar else { return };
        let phases: Vec<&str> = state.running.keys().map(String::as_str).collect();
        bar.set_message(format!(
            "{}: {} objects, {} requests, {} throttled",
            phases.join(", "),
            state.objects,
            self.stats.requests(),
            self.stats.throttled()
        ));
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
