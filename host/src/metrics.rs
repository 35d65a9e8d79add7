//! What the host exports on the admin listener's `/metrics`: the scaling guide's request latency
//! and throughput (by route template, so its HighLatency alert works as written), RTF, and the
//! instance-level state it scales on: slots, busy instances, queue, budgets, start-up, memory.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub path: String,
    pub method: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// Latency buckets up to 60 s around the guide's 2 s / 5 s thresholds.
const LATENCY_BUCKETS: [f64; 14] =
    [0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0];
const RTF_BUCKETS: [f64; 11] = [0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0];
const STARTUP_BUCKETS: [f64; 12] =
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<HttpLabels, Counter>,
    pub request_duration: Family<HttpLabels, Histogram>,
    pub rejected: Family<ReasonLabels, Counter>,
    pub rtf: Histogram,
    pub audio_seconds: Counter<f64, AtomicU64>,
    pub slots: Gauge,
    pub busy: Gauge,
    pub queue_depth: Gauge,
    pub queue_capacity: Gauge,
    pub queue_wait: Histogram,
    pub cpu_budget_exceeded: Counter,
    pub wall_deadline_exceeded: Counter,
    pub memory_limit_exceeded: Counter,
    pub instance_failures: Counter,
    pub instance_startup: Histogram,
    pub instance_cpu_seconds: Counter<f64, AtomicU64>,
    pub instance_memory_peak: Histogram,
    pub instance_memory_limit: Gauge,
    pub ready: Gauge,
    pub connections: Gauge,
    pub connection_limit: Gauge,
    pub body_bytes: Gauge,
    pub body_budget: Gauge,
    pub chunk_requests: Family<StatusLabels, Counter>,
    pub waiting_parents: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

/// Methods are label values only when HTTP defines them; any other string is `other`, so a
/// client cannot grow the exposition.
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 9] =
        ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE"];
    KNOWN.iter().find(|m| **m == method).copied().unwrap_or("other")
}

/// Reasons a request or connection is refused before an instance, present from the start.
const REJECT_REASONS: [&str; 6] = [
    "queue_full",
    "body_budget",
    "connections",
    "draining",
    "malformed_request",
    "connection_timeout",
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            rejected: Family::default(),
            rtf: Histogram::new(RTF_BUCKETS),
            audio_seconds: Counter::default(),
            slots: Gauge::default(),
            busy: Gauge::default(),
            queue_depth: Gauge::default(),
            queue_capacity: Gauge::default(),
            queue_wait: Histogram::new(LATENCY_BUCKETS),
            cpu_budget_exceeded: Counter::default(),
            wall_deadline_exceeded: Counter::default(),
            memory_limit_exceeded: Counter::default(),
            instance_failures: Counter::default(),
            instance_startup: Histogram::new(STARTUP_BUCKETS),
            instance_cpu_seconds: Counter::default(),
            // 16 MiB … 8 GiB.
            instance_memory_peak: Histogram::new((0..10).map(|i| (16u64 << 20 << i) as f64)),
            instance_memory_limit: Gauge::default(),
            ready: Gauge::default(),
            connections: Gauge::default(),
            connection_limit: Gauge::default(),
            body_bytes: Gauge::default(),
            body_budget: Gauge::default(),
            chunk_requests: Family::default(),
            waiting_parents: Gauge::default(),
        };
        // Present from the start, so that rate() over it and alerts on it work before the first
        // refusal.
        for reason in REJECT_REASONS {
            let _ = m.rejected.get_or_create(&ReasonLabels { reason: reason.into() });
        }
        let r = &mut m.registry;
        r.register(
            "http_requests",
            "HTTP requests by route template, method and status",
            m.requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time from request to response head, by route template, method and status",
            m.request_duration.clone(),
        );
        r.register(
            "stt_requests_rejected",
            "Requests refused before reaching an instance, by reason",
            m.rejected.clone(),
        );
        r.register(
            "stt_rtf",
            "Real-time factor of successful transcriptions: processing time / audio duration",
            m.rtf.clone(),
        );
        r.register(
            "stt_audio_seconds",
            "Seconds of audio transcribed successfully",
            m.audio_seconds.clone(),
        );
        r.register(
            "stt_instance_slots",
            "Instances that may run at once (one core each)",
            m.slots.clone(),
        );
        r.register("stt_instances_busy", "Instances running now", m.busy.clone());
        r.register(
            "stt_queue_depth",
            "Admitted requests waiting for a slot",
            m.queue_depth.clone(),
        );
        r.register(
            "stt_queue_capacity",
            "Requests that may wait for a slot before 503",
            m.queue_capacity.clone(),
        );
        r.register(
            "stt_queue_wait_seconds",
            "Time admitted requests waited for a slot",
            m.queue_wait.clone(),
        );
        r.register(
            "stt_cpu_budget_exceeded",
            "Instances stopped for exceeding their CPU budget",
            m.cpu_budget_exceeded.clone(),
        );
        r.register(
            "stt_wall_deadline_exceeded",
            "Instances stopped for exceeding their wall-clock deadline",
            m.wall_deadline_exceeded.clone(),
        );
        r.register(
            "stt_instance_memory_limit_exceeded",
            "Instances that were refused memory beyond the per-instance cap",
            m.memory_limit_exceeded.clone(),
        );
        r.register(
            "stt_instance_failures",
            "Instances that trapped or returned no response",
            m.instance_failures.clone(),
        );
        r.register(
            "stt_instance_startup_seconds",
            "Time to instantiate the component for one request",
            m.instance_startup.clone(),
        );
        r.register(
            "stt_instance_cpu_seconds",
            "CPU time used by instances",
            m.instance_cpu_seconds.clone(),
        );
        r.register(
            "stt_instance_memory_peak_bytes",
            "Peak linear memory of each instance",
            m.instance_memory_peak.clone(),
        );
        r.register(
            "stt_instance_memory_limit_bytes",
            "Linear memory cap per instance",
            m.instance_memory_limit.clone(),
        );
        r.register("stt_connections", "Open client connections", m.connections.clone());
        r.register(
            "stt_connection_limit",
            "Connections served at once; more are answered 503 and closed",
            m.connection_limit.clone(),
        );
        r.register(
            "stt_request_body_bytes",
            "Bytes of request bodies reserved (buffering or waiting for an instance)",
            m.body_bytes.clone(),
        );
        r.register(
            "stt_request_body_budget_bytes",
            "Bytes all request bodies together may hold; beyond it, 503",
            m.body_budget.clone(),
        );
        r.register(
            "stt_chunk_requests",
            "Requests instances sent to the app itself for a long recording's chunks, by status \
             (not in http_requests: the recording's own request is counted there)",
            m.chunk_requests.clone(),
        );
        r.register(
            "stt_waiting_parents",
            "Instances waiting for their chunks' answers, holding no slot",
            m.waiting_parents.clone(),
        );
        r.register(
            "stt_ready",
            "1 when the host accepts requests (compiled, warmed up, not draining)",
            m.ready.clone(),
        );
        m
    }

    pub fn observe_request(
        &self,
        path: &str,
        method: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        let labels = HttpLabels {
            path: path.to_string(),
            method: method.to_string(),
            status: status.to_string(),
        };
        self.requests.get_or_create(&labels).inc();
        self.request_duration.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    pub fn reject(&self, reason: &str) {
        self.rejected.get_or_create(&ReasonLabels { reason: reason.to_string() }).inc();
    }

    /// The Prometheus/OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guides_metric_names_are_exported() {
        let m = Metrics::new();
        m.observe_request("/transcribe", "POST", 200, Duration::from_millis(1500));
        let text = m.encode();
        assert!(
            text.contains(
                r#"http_request_duration_seconds_bucket{le="2.0",path="/transcribe",method="POST",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"http_request_duration_seconds_bucket{le="1.0",path="/transcribe",method="POST",status="200"} 0"#
        ));
        assert!(
            text.contains(
                r#"http_requests_total{path="/transcribe",method="POST",status="200"} 1"#
            )
        );
        assert!(text.contains("stt_cpu_budget_exceeded_total 0"));
        assert!(text.contains(r#"stt_requests_rejected_total{reason="queue_full"} 0"#), "{text}");
    }
}
