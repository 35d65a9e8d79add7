//! The host's tunables: instance slots, queue, per-instance CPU budget and memory cap, request
//! and connection limits, and drain grace. `main` fills them from flags and the environment.

use std::time::Duration;

/// CPU time an instance may use before it is stopped.
#[derive(Debug, Clone)]
pub struct CpuBudget {
    /// `STT_CPU_BUDGET_MS`: the same budget for every request.
    pub fixed: Option<Duration>,
    /// Otherwise `base + per_audio_second × audio seconds`; the base covers start-up, model
    /// load and decoding, which happen before the audio's length is known.
    pub base: Duration,
    pub per_audio_second: f64,
    /// The caller's own limit (`x-stt-cpu-budget-ms`), which only ever lowers the budget.
    pub caller: Option<Duration>,
}

impl CpuBudget {
    /// The budget once the audio's length is known (`None` before the function has decoded it).
    pub fn allowance(&self, audio_seconds: Option<f64>) -> Duration {
        let own = match self.fixed {
            Some(fixed) => fixed,
            None => {
                let secs = audio_seconds.filter(|s| s.is_finite()).unwrap_or(0.0).clamp(0.0, 1e6);
                let scaled = self.per_audio_second.clamp(0.0, 1e3) * secs;
                self.base + Duration::from_secs_f64(scaled)
            }
        };
        self.caller.map_or(own, |c| c.min(own))
    }

    /// This budget, lowered to what a caller allows.
    pub fn for_caller(&self, caller: Option<Duration>) -> Self {
        Self { caller, ..self.clone() }
    }

    /// Wall-clock limit, for a guest that blocks without using CPU: twice the CPU budget plus
    /// slack, since on its own slot an instance's wall time is close to its CPU time.
    pub fn wall_allowance(&self, audio_seconds: Option<f64>) -> Duration {
        self.allowance(audio_seconds) * 2 + Duration::from_secs(5)
    }
}

/// The caller's CPU budget from its `x-stt-cpu-budget-ms` header: whole milliseconds, at least
/// 1; absent means no limit of its own.
pub fn caller_cpu_budget(headers: &hyper::HeaderMap) -> Result<Option<Duration>, String> {
    let name = stt_contract::headers::CPU_BUDGET_MS;
    let Some(v) = headers.get(name) else { return Ok(None) };
    v.to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&ms| ms >= 1)
        .map(|ms| Some(Duration::from_millis(ms)))
        .ok_or_else(|| format!("{name} must be a whole number of milliseconds, at least 1"))
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Instances that may run at once (one core each).
    pub slots: usize,
    /// Admitted requests that may wait for a slot; beyond it, 503 with Retry-After.
    pub queue_depth: usize,
    /// Instances that may wait, holding no slot, for the chunks they sent to the app itself.
    pub waiting_parents: usize,
    /// Linear memory a waiting parent may hold, bytes.
    pub waiting_parent_memory: usize,
    /// Where chunks are sent instead of this host's slots (the pods' Service).
    pub chunk_peer: Option<hyper::Uri>,
    pub budget: CpuBudget,
    /// Linear memory one instance may grow to, bytes.
    pub instance_memory: usize,
    /// Largest request body the host buffers before giving it to an instance.
    pub max_request_bytes: usize,
    /// Time a client has to send its whole body.
    pub body_timeout: Duration,
    /// Bytes of request bodies the host holds at once (buffering or waiting for an instance).
    pub body_budget: usize,
    /// Client connections open at once.
    pub max_connections: usize,
    /// Time to send a complete request head (from connecting, or from its first byte).
    pub header_timeout: Duration,
    /// Time a keep-alive connection may stay idle between requests.
    pub idle_timeout: Duration,
    /// How long SIGTERM waits for in-flight requests.
    pub drain_grace: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_scales_with_audio_unless_fixed() {
        let b = CpuBudget {
            fixed: None,
            base: Duration::from_secs(15),
            per_audio_second: 1.0,
            caller: None,
        };
        assert_eq!(b.allowance(None), Duration::from_secs(15));
        assert_eq!(b.allowance(Some(60.0)), Duration::from_secs(75));
        assert_eq!(b.allowance(Some(f64::NAN)), Duration::from_secs(15));
        assert_eq!(b.allowance(Some(-3.0)), Duration::from_secs(15));
        assert_eq!(b.wall_allowance(Some(60.0)), Duration::from_secs(155));
        let f = CpuBudget { fixed: Some(Duration::from_millis(500)), ..b };
        assert_eq!(f.allowance(Some(600.0)), Duration::from_millis(500));
        // A caller lowers the budget, never raises it.
        let c = b.for_caller(Some(Duration::from_secs(20)));
        assert_eq!(c.allowance(None), Duration::from_secs(15));
        assert_eq!(c.allowance(Some(60.0)), Duration::from_secs(20));
    }
}
