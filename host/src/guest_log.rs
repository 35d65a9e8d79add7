//! An instance's stderr: each line becomes a log event tagged with the request id, and the
//! function's `audio_seconds=` line tells the host the audio's length (to scale the instance's
//! CPU budget and to compute RTF) through nothing but standard WASI stderr.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::report::InstanceReport;

/// Longest line kept; the rest of a longer line is dropped, so a guest cannot grow host memory.
const MAX_LINE: usize = 4096;

struct Lines {
    request_id: Arc<str>,
    component: Arc<str>,
    report: Arc<InstanceReport>,
    line: Vec<u8>,
}

impl Lines {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.emit();
            } else if self.line.len() < MAX_LINE {
                self.line.push(b);
            }
        }
    }

    fn emit(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.line);
        if let Some(v) = stt_contract::log_line::parse_audio_seconds(&text) {
            self.report.set_audio_seconds(v);
        }
        tracing::info!(target: "stt_host::guest", request_id = %self.request_id, component = %self.component, "{text}");
        self.line.clear();
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        self.emit();
    }
}

#[derive(Clone)]
pub struct GuestStderr(Arc<Mutex<Lines>>);

impl GuestStderr {
    pub fn new(request_id: Arc<str>, component: Arc<str>, report: Arc<InstanceReport>) -> Self {
        Self(Arc::new(Mutex::new(Lines { request_id, component, report, line: Vec::new() })))
    }

    fn push(&self, bytes: &[u8]) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(bytes);
    }
}

impl IsTerminal for GuestStderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestStderr {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestStderr {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audio_line_sets_the_reports_duration_even_when_split() {
        let report = Arc::new(InstanceReport::default());
        let log = GuestStderr::new("r1".into(), "stt".into(), report.clone());
        log.push(b"something else\nstt-function: audio_sec");
        assert_eq!(report.audio_seconds(), None);
        log.push(b"onds=11.000\n");
        assert_eq!(report.audio_seconds(), Some(11.0));
        log.push(&vec![b'x'; 3 * MAX_LINE]);
        assert!(log.0.lock().expect("lock").line.len() <= MAX_LINE);
    }
}
