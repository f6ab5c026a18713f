//! Progress of a long sync on a terminal: which resource type, pages, objects, requests and
//! throttled answers. Off the terminal, the same facts go to the log at the end of each type.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::outbound::OutboundStats;

pub struct SyncProgress {
    bar: Option<ProgressBar>,
    stats: Arc<OutboundStats>,
    phase: String,
    pages: u64,
    objects: u64,
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
        SyncProgress { bar, stats, phase: String::new(), pages: 0, objects: 0 }
    }

    pub fn start_phase(&mut self, phase: impl Into<String>) {
        self.finish_phase();
        self.phase = phase.into();
        self.pages = 0;
        self.objects = 0;
        self.redraw();
    }

    pub fn page(&mut self, objects: usize) {
        self.pages += 1;
        self.objects += objects as u64;
        self.redraw();
    }

    fn redraw(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(self.line());
        }
    }

    fn line(&self) -> String {
        format!(
            "{}: {} pages, {} objects, {} requests, {} throttled",
            self.phase,
            self.pages,
            self.objects,
            self.stats.requests(),
            self.stats.throttled()
        )
    }

    pub fn finish_phase(&mut self) {
        if !self.phase.is_empty() {
            tracing::info!("{}", self.line());
        }
    }

    pub fn finish(mut self) {
        self.finish_phase();
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
