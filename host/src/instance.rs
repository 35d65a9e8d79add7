//! One request's instance: its WASI state, its memory cap, its CPU budget (checked on every
//! epoch tick against the slot thread's CPU clock) and its wall-clock deadline, and what it
//! reports back (audio length, peak memory, why it was stopped).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use tokio_util::sync::CancellationToken;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::cpu::ThreadClock;
use crate::guest_log::GuestStderr;
use crate::metrics::Metrics;
use crate::outbound::Outbound;
pub use crate::report::InstanceReport;
use crate::settings::CpuBudget;
use crate::variables::Variables;

/// Why an instance did not complete.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    CpuBudget(Duration),
    WallClock(Duration),
    Memory(usize),
    /// The client went away; nobody is waiting for an answer.
    Cancelled,
    Trap(String),
}

/// The per-instance memory cap. (wasmtime's `StoreLimits` does the same cap, but cannot say
/// afterwards that it refused, which is what turns a trap into a clear "memory limit" error.)
pub struct MemoryCap {
    limit: usize,
    report: Arc<InstanceReport>,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.report.memory_limit(self.limit) {
            self.report.memory_refused.store(true, Ordering::Relaxed);
            return Ok(false);
        }
        self.report.peak_memory.fetch_max(desired, Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

pub struct InstanceState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    /// Outgoing requests: to the app itself when the component may, else refused.
    outbound: Outbound,
    table: ResourceTable,
    variables: Variables,
    limiter: MemoryCap,
}

impl InstanceState {
    pub fn new(
        wasi: WasiCtx,
        variables: Variables,
        memory_limit: usize,
        report: Arc<InstanceReport>,
        outbound: Outbound,
    ) -> Self {
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            outbound,
            table: ResourceTable::new(),
            variables,
            limiter: MemoryCap { limit: memory_limit, report },
        }
    }

    pub fn variables(&mut self) -> &mut Variables {
        &mut self.variables
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.outbound }
    }
}

/// A component of the manifest, ready to instantiate.
pub struct Prepared {
    pub id: Arc<str>,
    pub pre: ProxyPre<InstanceState>,
    pub files: Vec<(PathBuf, String)>,
    pub variables: Variables,
    /// The component's CORS policy, which the host's own errors follow too.
    pub cors: stt_contract::cors::Origins,
    /// Whether its instances may send requests to the app itself.
    pub calls_self: bool,
}

/// Limits of one instance.
#[derive(Clone)]
pub struct Limits {
    pub budget: CpuBudget,
    pub memory: usize,
}

/// One request for an instance.
pub struct Call {
    pub id: Arc<str>,
    pub req: hyper::Request<Full<Bytes>>,
    pub respond: ResponseSender,
    pub report: Arc<InstanceReport>,
    /// Cancelled when the client goes away before the response head.
    pub cancel: CancellationToken,
    pub outbound: Outbound,
}

pub type ResponseSender =
    tokio::sync::oneshot::Sender<Result<hyper::Response<HyperOutgoingBody>, ErrorCode>>;

impl Prepared {
    fn store(
        &self,
        request_id: Arc<str>,
        limits: &Limits,
        report: &Arc<InstanceReport>,
        outbound: Outbound,
    ) -> wasmtime::Result<Store<InstanceState>> {
        let mut wasi = WasiCtx::builder();
        wasi.stderr(GuestStderr::new(request_id, self.id.clone(), report.clone()));
        // Instances run on their own slot thread: file reads there are counted in its CPU time
        // and need no blocking pool.
        wasi.allow_blocking_current_thread(true);
        for (host, guest) in &self.files {
            wasi.preopened_dir(host, guest, FsPerms::ReadOnly)?;
        }
        let state = InstanceState::new(
            wasi.build(),
            self.variables.clone(),
            limits.memory,
            report.clone(),
            outbound,
        );
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limiter);
        Ok(store)
    }

    /// Instantiates once without a request: proves the component links and starts (readiness).
    pub async fn warm_up(&self, limits: &Limits) -> wasmtime::Result<Duration> {
        let report = Arc::new(InstanceReport::default());
        let mut store = self.store("warm-up".into(), limits, &report, Outbound::default())?;
        store.set_epoch_deadline(u64::MAX / 2);
        let t0 = Instant::now();
        self.pre.instantiate_async(&mut store).await?;
        Ok(t0.elapsed())
    }

    /// Runs one request in a fresh instance on the calling (slot) thread. The response goes to
    /// `call.respond` as soon as the guest sets it; the result says how the instance ended.
    pub async fn run(&self, call: Call, limits: &Limits, metrics: &Metrics) -> Result<(), Failure> {
        let (report, cancel) = (call.report.clone(), call.cancel.clone());
        // This slot thread's CPU clock: the budget's measure, `stt_instance_cpu_seconds_total`'s,
        // and read by the server when the response head arrives (`x-stt-cpu-ms`).
        let Some(clock) = ThreadClock::start_here() else {
            return Err(Failure::Trap("this platform has no per-thread CPU clock".into()));
        };
        let _ = report.cpu.set(clock);
        let result = self.run_inner(call, limits, metrics, clock).await;
        metrics.instance_cpu_seconds.inc_by(clock.used().as_secs_f64());
        let peak = report.peak_memory.load(Ordering::Relaxed);
        if peak > 0 {
            metrics.instance_memory_peak.observe(peak as f64);
        }
        let failure = match result {
            Ok(()) => return Ok(()),
            Err(f) => f,
        };
        // A trap's own message is the symptom; the report says the cause.
        let failure = match failure {
            Failure::Trap(_) if report.budget_exceeded.load(Ordering::Relaxed) => {
                Failure::CpuBudget(limits.budget.allowance(report.audio_seconds()))
            }
            Failure::Trap(_) if report.memory_refused.load(Ordering::Relaxed) => {
                Failure::Memory(report.memory_limit(limits.memory))
            }
            Failure::Trap(_) if cancel.is_cancelled() => Failure::Cancelled,
            f => f,
        };
        let counter = match &failure {
            Failure::CpuBudget(_) => Some(&metrics.cpu_budget_exceeded),
            Failure::WallClock(_) => Some(&metrics.wall_deadline_exceeded),
            Failure::Memory(_) => Some(&metrics.memory_limit_exceeded),
            Failure::Trap(_) => Some(&metrics.instance_failures),
            Failure::Cancelled => None,
        };
        if let Some(c) = counter {
            c.inc();
        }
        Err(failure)
    }

    async fn run_inner(
        &self,
        call: Call,
        limits: &Limits,
        metrics: &Metrics,
        clock: ThreadClock,
    ) -> Result<(), Failure> {
        let Call { id: request_id, req, respond, report, cancel, outbound } = call;
        let (report, cancel) = (&report, &cancel);
        let trap = |e: wasmtime::Error| Failure::Trap(format!("{e:?}"));
        let mut store = self.store(request_id, limits, report, outbound).map_err(trap)?;
        // Checked on every epoch tick while wasm runs: the CPU this thread has used against the
        // budget (which grows once the audio's length is known), and whether the client left.
        let (budget, rep, gone) = (limits.budget.clone(), report.clone(), cancel.clone());
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if gone.is_cancelled() {
                return Err(wasmtime::format_err!("the client went away"));
            }
            let used = clock.used();
            let allowed = budget.allowance(rep.audio_seconds());
            if used > allowed {
                rep.budget_exceeded.store(true, Ordering::Relaxed);
                return Err(wasmtime::format_err!("CPU budget of {allowed:?} exceeded"));
            }
            // A waiting parent still cutting its recording yields at each tick, so that the
            // chunk requests it has made already go out (they are tasks of this slot thread's
            // runtime, which otherwise runs them only when the guest blocks).
            if rep.is_waiting_parent() {
                return Ok(UpdateDeadline::Yield(1));
            }
            Ok(UpdateDeadline::Continue(1))
        });
        let req = store.data_mut().http().new_incoming_request(Scheme::Http, req).map_err(trap)?;
        let out = store.data_mut().http().new_response_outparam(respond).map_err(trap)?;
        let t0 = Instant::now();
        let proxy = self.pre.instantiate_async(&mut store).await.map_err(trap)?;
        metrics.instance_startup.observe(t0.elapsed().as_secs_f64());
        let started = Instant::now();
        let _ = report.started.set(started);
        let call = proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out);
        // The wall-clock deadline only fires while the guest waits (a spinning guest is stopped
        // by the CPU budget above); it is re-read as the audio's length becomes known.
        let wall = async {
            loop {
                let allowed = limits.budget.wall_allowance(report.audio_seconds());
                let left = allowed.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return allowed;
                }
                tokio::time::sleep(left.min(Duration::from_secs(1))).await;
            }
        };
        tokio::select! {
            r = call => r.map_err(trap),
            _ = cancel.cancelled() => Err(Failure::Cancelled),
            d = wall => Err(Failure::WallClock(d)),
        }
    }
}
