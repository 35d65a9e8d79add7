//! What an instance tells the request that started it: the audio's length (from the
//! function's log line), why it was stopped, its peak memory, when it was ready.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// What an instance tells the request that started it.
#[derive(Debug, Default)]
pub struct InstanceReport {
    /// Audio length in milliseconds + 1 (0 = not known yet).
    audio_ms: AtomicU64,
    pub budget_exceeded: AtomicBool,
    pub memory_refused: AtomicBool,
    pub peak_memory: AtomicUsize,
    /// A lower memory cap than the host's, bytes (0: none): a waiting parent's.
    pub memory_cap: AtomicUsize,
    /// When the instance was ready to handle the request.
    pub started: OnceLock<Instant>,
    /// The CPU clock of the slot thread the instance runs on, from the instance's start.
    pub cpu: OnceLock<crate::cpu::ThreadClock>,
}

impl InstanceReport {
    pub fn set_audio_seconds(&self, s: f64) {
        if s.is_finite() && s >= 0.0 {
            self.audio_ms.store((s * 1000.0).round().min(1e15) as u64 + 1, Ordering::Relaxed);
        }
    }

    /// Whether the instance is a waiting parent (it has sent requests to its own app).
    pub fn is_waiting_parent(&self) -> bool {
        self.memory_cap.load(Ordering::Relaxed) != 0
    }

    /// The memory cap that applies now: `instance_cap`, or a waiting parent's lower one.
    pub fn memory_limit(&self, instance_cap: usize) -> usize {
        match self.memory_cap.load(Ordering::Relaxed) {
            0 => instance_cap,
            cap => cap.min(instance_cap),
        }
    }

    pub fn audio_seconds(&self) -> Option<f64> {
        match self.audio_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some((ms - 1) as f64 / 1000.0),
        }
    }
}
