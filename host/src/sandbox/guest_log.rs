//! A guest's stderr, turned into host log lines and capped per call.
//!
//! Inheriting the host's stderr would let a component write anything, as much as it likes,
//! into the operator's logs (forged log lines, a flood). Here each line becomes one `tracing`
//! event under the `guest` target, control characters are escaped, and a call may write at most
//! `LIMIT` bytes; the rest is counted and dropped, never blocking or failing the guest.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

const LIMIT: usize = 64 * 1024;
const LONGEST_LINE: usize = 4096;

#[derive(Default)]
struct LogState {
    line: Vec<u8>,
    written: usize,
    dropped: usize,
}

impl LogState {
    fn accept(&mut self, bytes: &[u8]) {
        let room = LIMIT.saturating_sub(self.written);
        let (kept, dropped) = bytes.split_at(bytes.len().min(room));
        self.written += kept.len();
        self.dropped += dropped.len();
        for &byte in kept {
            if byte == b'\n' {
                self.emit();
            } else if self.line.len() < LONGEST_LINE {
                self.line.push(byte);
            }
        }
    }

    fn emit(&mut self) {
        if !self.line.is_empty() {
            let text = String::from_utf8_lossy(&self.line);
            tracing::warn!(target: "guest", "{}", crate::log_text::escaped(&text));
            self.line.clear();
        }
    }
}

impl Drop for LogState {
    fn drop(&mut self) {
        self.emit();
        if self.dropped > 0 {
            tracing::warn!(target: "guest", dropped_bytes = self.dropped, "the component wrote more than {LIMIT} bytes to stderr; the rest was dropped");
        }
    }
}

/// The stderr given to one sandboxed call.
#[derive(Clone, Default)]
pub struct GuestLog {
    state: Arc<Mutex<LogState>>,
}

impl IsTerminal for GuestLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestLog {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        if let Ok(mut state) = self.state.lock() {
            state.accept(bytes);
        }
        // Always the whole buffer: a component must not be able to stall or fail on logging.
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_limit_is_counted_and_dropped() {
        let mut state = LogState::default();
        state.accept(&vec![b'x'; LIMIT + 10]);
        assert_eq!(state.written, LIMIT);
        assert_eq!(state.dropped, 10);
    }

    #[test]
    fn long_lines_are_cut_and_lines_are_emitted_at_newlines() {
        let mut state = LogState::default();
        state.accept(&vec![b'y'; LONGEST_LINE * 2]);
        assert_eq!(state.line.len(), LONGEST_LINE);
        state.accept(b"\n");
        assert!(state.line.is_empty());
    }
}
