//! Serving the app: connections are capped and timed out ([`crate::connection`]); each request's
//! body is reserved against the buffered-bytes budget and read whole ([`crate::body`]), admitted
//! to an instance slot or the bounded queue (else 503 with Retry-After at once), and run in a
//! fresh instance from the pooling allocator with its CPU budget and memory cap. SIGTERM stops
//! accepting, closes every connection not mid-request, lets running requests finish within the
//! grace period, and returns.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi::WasiView;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use crate::admin::Health;
use crate::body::{BodyBudget, BodyError, BodyLimits, Reservation};
use crate::connection::{self, Activity, Ended, ReleaseAtEnd, Timeouts, Watched};
use crate::http_error::{Response, json_error};
use crate::instance::{Call, Failure, InstanceReport, InstanceState, Limits, Prepared};
use crate::manifest::App;
use crate::metrics::Metrics;
use crate::outbound::{Outbound, SelfCall};
use crate::settings::Settings;
use crate::slots::{Admission, Place, Slots};
use crate::variables::{self, Variables};

/// How often the epoch advances, i.e. how often a running instance's CPU use is checked.
const EPOCH_TICK: Duration = Duration::from_millis(10);

pub struct Server {
    app: App,
    components: Vec<Arc<Prepared>>,
    settings: Settings,
    limits: Limits,
    slots: Slots,
    body_budget: BodyBudget,
    connections: Arc<Semaphore>,
    /// Cancelled when SIGTERM arrives.
    draining: CancellationToken,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    next_id: AtomicU64,
}

/// The engine every instance runs on; `stt-host compile` uses it too, so that the code it
/// caches matches the server's.
pub fn engine(settings: &Settings) -> anyhow::Result<Engine> {
    // Room for every slot's instance, every waiting parent's and the warm-up one; a component
    // of the function has a handful of core instances, memories and tables (its main module
    // and wit-component shims).
    let n = (settings.slots + settings.waiting_parents) as u32 + 1;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        .total_core_instances(n * 16)
        .total_memories(n * 4)
        .max_memories_per_component(4)
        .total_tables(n * 16)
        .total_stacks(n)
        .max_memory_size(settings.instance_memory.next_multiple_of(1 << 16));
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        // A snapshot's memory is sparse (freed load-time buffers are zero pages between the
        // tables): without this wasmtime declines a copy-on-write image for it and copies the
        // data segments into every instance instead (36 ms and ~64 MB private per request).
        .memory_guaranteed_dense_image_size(4 << 30);
    Ok(Engine::new(&config)?)
}

/// What the function may import: WASI, wasi:http and Spin's variables (`stt-host snapshot`
/// links the same).
pub fn add_imports<T: WasiView + WasiHttpView + 'static>(
    linker: &mut Linker<T>,
    variables: fn(&mut T) -> &mut Variables,
) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    variables::fermyon::spin::variables::add_to_linker::<_, HasSelf<Variables>>(linker, variables)
}

impl Server {
    /// Compiles (or loads from `cache_dir`) every component of the manifest and starts the slots.
    pub fn new(
        app: &App,
        settings: Settings,
        cache_dir: &Path,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> anyhow::Result<Self> {
        let engine = engine(&settings)?;
        let mut linker: Linker<InstanceState> = Linker::new(&engine);
        add_imports(&mut linker, InstanceState::variables)?;
        let mut components = Vec::new();
        for c in &app.components {
            let context = || format!("component `{}`", c.id);
            let wasm = std::fs::read(&c.source)
                .with_context(|| format!("reading {}", c.source.display()))
                .with_context(context)?;
            crate::memory_image::check_fits(&wasm, settings.instance_memory)
                .with_context(context)?;
            // A waiting parent's cap below the memory every instance starts with would stop
            // each one at its next allocation.
            if c.calls_self {
                let initial = crate::memory_image::largest_initial_memory(&wasm)
                    .map_err(anyhow::Error::from)
                    .with_context(context)?;
                anyhow::ensure!(
                    initial <= settings.waiting_parent_memory as u64,
                    "component `{}` starts with {} MiB of memory, above the {} MiB a waiting parent may hold (STT_WAITING_PARENT_MEMORY_MB)",
                    c.id,
                    initial >> 20,
                    settings.waiting_parent_memory >> 20
                );
            }
            let component =
                crate::component_cache::load_bytes(&engine, &wasm, &c.source, cache_dir)
                    .with_context(context)?;
            let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
            components.push(Arc::new(Prepared {
                id: c.id.as_str().into(),
                pre,
                files: c.files.clone(),
                variables: Variables(Arc::new(c.variables.clone())),
                cors: c
                    .variables
                    .get(stt_contract::cors::VARIABLE)
                    .map(|v| stt_contract::cors::Origins::parse(v))
                    .unwrap_or_default(),
                calls_self: c.calls_self,
            }));
        }
        // The clock the CPU budget is checked against.
        let ticker = engine.clone();
        std::thread::Builder::new().name("stt-epoch".into()).spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                ticker.increment_epoch();
            }
        })?;
        let slots = Slots::start(
            settings.slots,
            settings.queue_depth,
            settings.waiting_parents,
            metrics.clone(),
        )?;
        metrics.instance_memory_limit.set(settings.instance_memory as i64);
        metrics.body_budget.set(settings.body_budget as i64);
        metrics.connection_limit.set(settings.max_connections as i64);
        let limits = Limits { budget: settings.budget.clone(), memory: settings.instance_memory };
        Ok(Self {
            app: app.clone(),
            components,
            body_budget: BodyBudget::new(settings.body_budget, metrics.body_bytes.clone()),
            connections: Arc::new(Semaphore::new(settings.max_connections)),
            draining: CancellationToken::new(),
            settings,
            limits,
            slots,
            metrics,
            health,
            next_id: AtomicU64::new(1),
        })
    }

    /// Starts one instance of each component; then the host is ready.
    pub async fn warm_up(&self) -> anyhow::Result<()> {
        for c in &self.components {
            let t = c
                .warm_up(&self.limits)
                .await
                .map_err(anyhow::Error::from)
                .with_context(|| format!("starting component `{}`", c.id))?;
            self.metrics.instance_startup.observe(t.as_secs_f64());
            tracing::info!(component = %c.id, startup_ms = t.as_secs_f64() * 1e3, "component ready");
        }
        self.health.set_ready(&self.metrics);
        Ok(())
    }

    fn request_id(&self, req: &hyper::Request<hyper::body::Incoming>) -> Arc<str> {
        let given = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
        match given {
            Some(v) => v.into(),
            None => format!("req-{}", self.next_id.fetch_add(1, Ordering::Relaxed)).into(),
        }
    }

    async fn handle(
        self: Arc<Self>,
        mut req: hyper::Request<hyper::body::Incoming>,
        conn: Arc<Activity>,
        local: SocketAddr,
    ) -> Result<Response, Infallible> {
        let in_flight = conn.request();
        let id = self.request_id(&req);
        let origin = req.headers().get(hyper::header::ORIGIN).and_then(|v| v.to_str().ok());
        let origin = origin.map(str::to_string);
        let path = req.uri().path().to_string();
        let component = self.app.route(&path);
        let label = match component {
            // The function's routes are labels as they are; any other path is labelled with the
            // route of the component that served it, so label values stay few.
            _ if stt_contract::routes::method(&path).is_some() => path.clone(),
            Some(i) => self.app.components[i].route.to_string(),
            None => "unmatched".into(),
        };
        let log = RequestLog {
            metrics: self.metrics.clone(),
            id: id.clone(),
            method: crate::metrics::method_label(req.method().as_str()),
            path,
            label,
            t0: Instant::now(),
            report: Arc::new(InstanceReport::default()),
            done: false,
        };
        // The guest sees exactly the path routed here, with an authority that is only that.
        let host = req.headers().get(hyper::header::HOST).map(|v| v.as_bytes());
        let authority = crate::authority::absolute_uri(req.uri(), host, local);
        let (resp, place) = match (authority, component) {
            (Err(why), _) => (json_error(400, "invalid_host", why), None),
            (Ok(uri), Some(i)) => {
                *req.uri_mut() = uri;
                self.respond(req, i, id.clone(), log.report.clone()).await
            }
            (Ok(_), None) => {
                (json_error(404, "not_found", format!("no route for {}", log.path)), None)
            }
        };
        let mut resp = log.finish(resp);
        if let Ok(v) = hyper::header::HeaderValue::from_str(&id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        // The host's own errors (busy, budget, …) follow the component's CORS policy, so that a
        // page can read them; the function's answers carry their own.
        let headers = resp.headers_mut();
        if let Some(c) = component
            && !headers.contains_key(hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN)
        {
            for (k, v) in self.components[c].cors.response_headers(origin.as_deref()) {
                if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
                    headers.insert(k, v);
                }
            }
        }
        // The request stays in flight on its connection, and its place taken, until the body's
        // last frame is handed over.
        Ok(resp.map(|b| ReleaseAtEnd::wrap(b, Box::new((in_flight, place)))))
    }

    async fn respond(
        self: &Arc<Self>,
        req: hyper::Request<hyper::body::Incoming>,
        component: usize,
        id: Arc<str>,
        report: Arc<InstanceReport>,
    ) -> (Response, Option<Place>) {
        let limits = BodyLimits {
            max_bytes: self.settings.max_request_bytes,
            timeout: self.settings.body_timeout,
        };
        let (req, reservation) =
            match crate::body::read(req, &self.body_budget, &limits, &self.draining).await {
                Ok(r) => r,
                Err(e) => {
                    match &e {
                        BodyError::Busy => self.metrics.reject("body_budget"),
                        BodyError::Draining => self.metrics.reject("draining"),
                        _ => {}
                    }
                    return (e.response(), None);
                }
            };
        // The caller's CPU budget; checked once the body is in, so that the answer leaves the
        // connection usable (a client still sending would otherwise see it reset).
        let caller_budget = match crate::settings::caller_cpu_budget(req.headers()) {
            Ok(b) => b,
            Err(why) => return (json_error(400, "invalid_cpu_budget", why), None),
        };
        let Some(admission) = self.slots.try_admit() else {
            self.metrics.reject("queue_full");
            let retry = self.slots.retry_after();
            let mut r = json_error(
                503,
                "server_busy",
                format!(
                    "all {} instance slots and the queue are busy; retry in {retry} s",
                    self.slots.count()
                ),
            );
            r.headers_mut()
                .insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from(retry));
            return (r, None);
        };
        let limits =
            Limits { budget: self.limits.budget.for_caller(caller_budget), ..self.limits.clone() };
        let run = Run { component, id, report, limits };
        self.run(req, reservation, admission, run).await
    }

    /// Runs an admitted request in an instance; the response (or the host's error) and the
    /// place it holds until its body ends.
    async fn run(
        self: &Arc<Self>,
        req: hyper::Request<Full<Bytes>>,
        reservation: Reservation,
        admission: Admission,
        run: Run,
    ) -> (Response, Option<Place>) {
        let Run { component, id, report, limits } = run;
        let place = admission.place();
        let (respond, response) = tokio::sync::oneshot::channel();
        let (done, ended) = tokio::sync::oneshot::channel();
        // Cancels the instance if this handler is dropped (client gone) before the response head.
        let cancel = CancellationToken::new();
        let guard = cancel.clone().drop_guard();
        let (prepared, metrics) = (self.components[component].clone(), self.metrics.clone());
        let instance_report = report.clone();
        // Requests to the app itself (a long recording's chunks) come back here, with this
        // request's limits.
        let to_self = prepared.calls_self.then(|| self.self_call(id.clone(), limits.clone()));
        let parent_memory = self.settings.waiting_parent_memory;
        self.slots.submit(admission, move |running| async move {
            if cancel.is_cancelled() {
                return;
            }
            let outbound = match to_self {
                Some(call) => Outbound::to_self(call, running, report.clone(), parent_memory),
                None => Outbound::default(),
            };
            let call = Call { id, req, respond, report, cancel, outbound };
            let r = prepared.run(call, &limits, &metrics).await;
            // The body's bytes are the instance's until it is gone.
            drop(reservation);
            let _ = done.send(r);
        });
        let resp = match response.await {
            Ok(Ok(mut resp)) => {
                // The guest may still be writing the body: it must not be cancelled now.
                guard.disarm();
                // The CPU the instance had used when it answered, read from its slot thread's
                // clock: the head arrives here as the guest sets it, before the guest yields.
                if let Some(clock) = instance_report.cpu.get() {
                    let ms = u64::try_from(clock.used().as_millis()).unwrap_or(u64::MAX);
                    resp.headers_mut().insert(
                        stt_contract::headers::CPU_MS,
                        hyper::header::HeaderValue::from(ms),
                    );
                }
                let resp = crate::event_stream::end_with_error_event(resp, ended);
                return (resp, Some(place));
            }
            Ok(Err(code)) => {
                json_error(500, "function_error", format!("the function failed: {code:?}"))
            }
            Err(_) => match ended.await {
                Ok(Err(failure)) => failure_response(failure),
                Ok(Ok(())) => {
                    json_error(500, "function_error", "the function returned without a response")
                }
                Err(_) => json_error(500, "function_error", "the instance ended without an answer"),
            },
        };
        (resp, None)
    }

    /// How an instance of request `parent` reaches the app itself.
    fn self_call(self: &Arc<Self>, parent: Arc<str>, limits: Limits) -> SelfCall {
        let server = Arc::downgrade(self);
        let next = Arc::new(AtomicU64::new(1));
        Arc::new(move |req| {
            let (server, parent, limits) = (server.clone(), parent.clone(), limits.clone());
            let n = next.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                let server =
                    server.upgrade().ok_or(wasmtime_wasi_http::Error::HttpRequestDenied)?;
                let id: Arc<str> = format!("{parent}.{n}").into();
                Ok(server.chunk(req, id, limits).await)
            })
        })
    }

    /// A request an instance sent to the app itself: sent on to the peer when one is set, else
    /// (or when the peer is busy) admitted here, waiting for a place rather than refused, with
    /// its parent's limits. Counted in `stt_chunk_requests`, not `http_requests`.
    async fn chunk(
        self: &Arc<Self>,
        req: hyper::Request<WasiBody>,
        id: Arc<str>,
        limits: Limits,
    ) -> hyper::Response<WasiBody> {
        let t0 = Instant::now();
        let path = req.uri().path().to_string();
        let (parts, body) = req.into_parts();
        let max = self.settings.max_request_bytes;
        let bytes = match http_body_util::Limited::new(body, max).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                let r = json_error(413, "request_too_large", format!("chunk request: {e}"));
                return self.chunk_answered(r, &id, &path, t0);
            }
        };
        if let Some(peer) = &self.settings.chunk_peer {
            match crate::peer::send(peer, &parts, bytes.clone()).await {
                Ok(r) if r.status() != hyper::StatusCode::SERVICE_UNAVAILABLE => {
                    return self.chunk_answered(r, &id, &path, t0);
                }
                Ok(_) => tracing::info!(request_id = %id, "the peer is busy: the chunk runs here"),
                Err(e) => {
                    tracing::warn!(request_id = %id, error = %e, "the peer failed: the chunk runs here")
                }
            }
        }
        let Some(component) = self.app.route(&path) else {
            let r = json_error(404, "not_found", format!("no route for {path}"));
            return self.chunk_answered(r, &id, &path, t0);
        };
        let reservation = match self.body_budget.reserve(bytes.len()) {
            Ok(r) => r,
            Err(e) => return self.chunk_answered(e.response(), &id, &path, t0),
        };
        let Some(admission) = self.slots.admit().await else {
            let r = json_error(503, "server_busy", "no instance slot for the chunk");
            return self.chunk_answered(r, &id, &path, t0);
        };
        let req = hyper::Request::from_parts(parts, Full::new(bytes));
        let report = Arc::new(InstanceReport::default());
        let run = Run { component, id: id.clone(), report, limits };
        let (resp, place) = self.run(req, reservation, admission, run).await;
        let resp = resp.map(|b| ReleaseAtEnd::wrap(b, Box::new(place)));
        self.chunk_answered(resp, &id, &path, t0)
    }

    fn chunk_answered(
        &self,
        resp: hyper::Response<WasiBody>,
        id: &str,
        path: &str,
        t0: Instant,
    ) -> hyper::Response<WasiBody> {
        let status = resp.status().as_u16();
        let labels = crate::metrics::StatusLabels { status: status.to_string() };
        self.metrics.chunk_requests.get_or_create(&labels).inc();
        tracing::info!(
            request_id = %id, path = %path.escape_debug(), status,
            duration_ms = (t0.elapsed().as_secs_f64() * 1e3).round(), "chunk request"
        );
        resp
    }

    /// Accepts connections until `shutdown` resolves, then drains: returns whether every
    /// connection had closed within the grace period.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> bool {
        let tasks = TaskTracker::new();
        let timeouts =
            Timeouts { header: self.settings.header_timeout, idle: self.settings.idle_timeout };
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, addr) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: back off instead of spinning.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let Ok(permit) = self.connections.clone().try_acquire_owned() else {
                        self.metrics.reject("connections");
                        tracing::warn!(%addr, limit = self.settings.max_connections, "connection refused: at the connection limit");
                        tasks.spawn(connection::refuse(stream, 1));
                        continue;
                    };
                    // Responses are small and written in pieces (head, body): without this, Nagle
                    // holds the last piece for the client's delayed ACK (40 ms on Linux).
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(%addr, error = %e, "TCP_NODELAY not set");
                    }
                    let Ok(local) = stream.local_addr() else { continue };
                    let activity = Activity::new();
                    let (server, a) = (self.clone(), activity.clone());
                    let service = hyper::service::service_fn(move |req| {
                        server.clone().handle(req, a.clone(), local)
                    });
                    let conn = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(Watched::new(stream, activity.clone()), service);
                    let (timeouts, draining, metrics) =
                        (timeouts.clone(), self.draining.clone(), self.metrics.clone());
                    tasks.spawn(async move {
                        metrics.connections.inc();
                        let ended = connection::drive(conn, &activity, &timeouts, &draining).await;
                        metrics.connections.dec();
                        drop(permit);
                        match ended {
                            Ended::Malformed => {
                                metrics.reject("malformed_request");
                                tracing::info!(%addr, "malformed request: answered with an error and closed");
                            }
                            Ended::TimedOut => {
                                metrics.reject("connection_timeout");
                                tracing::info!(%addr, "connection closed: no complete request within its timeout");
                            }
                            Ended::Failed(e) => tracing::debug!(%addr, error = %e, "connection closed with an error"),
                            Ended::Normally | Ended::Drained => {}
                        }
                    });
                }
                _ = &mut shutdown => break,
            }
        }
        drop(listener);
        self.health.set_draining(&self.metrics);
        self.draining.cancel();
        tracing::info!(
            grace_s = self.settings.drain_grace.as_secs_f64(),
            "draining: idle connections closed, running requests finishing"
        );
        tasks.close();
        tokio::time::timeout(self.settings.drain_grace, tasks.wait()).await.is_ok()
    }
}

/// What an admitted request runs as.
struct Run {
    component: usize,
    id: Arc<str>,
    report: Arc<InstanceReport>,
    limits: Limits,
}

/// One request's line in the log and its sample in the metrics, written when it is answered,
/// or as 499 if the client goes away first (its handler is dropped unanswered).
struct RequestLog {
    metrics: Arc<Metrics>,
    id: Arc<str>,
    method: &'static str,
    path: String,
    label: String,
    t0: Instant,
    report: Arc<InstanceReport>,
    done: bool,
}

impl RequestLog {
    fn record(&self, status: u16, success: bool) {
        let elapsed = self.t0.elapsed();
        self.metrics.observe_request(&self.label, self.method, status, elapsed);
        let audio = self.report.audio_seconds();
        let mut rtf = None;
        if let (true, Some(a), Some(started)) = (success, audio, self.report.started.get())
            && a > 0.0
        {
            let r = started.elapsed().as_secs_f64() / a;
            self.metrics.rtf.observe(r);
            self.metrics.audio_seconds.inc_by(a);
            rtf = Some(r);
        }
        tracing::info!(
            request_id = %self.id, method = self.method, path = %self.path.escape_debug(), status,
            duration_ms = (elapsed.as_secs_f64() * 1e3).round(),
            audio_seconds = audio, rtf, "request"
        );
    }

    fn finish(mut self, resp: Response) -> Response {
        self.done = true;
        self.record(resp.status().as_u16(), resp.status().is_success());
        resp
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        if !self.done {
            self.record(499, false);
        }
    }
}

fn failure_response(failure: Failure) -> Response {
    let (status, code, message) = failure_error(failure);
    json_error(status, code, message)
}

/// The status, code and message of an instance that did not complete.
pub fn failure_error(failure: Failure) -> (u16, &'static str, String) {
    match failure {
        Failure::CpuBudget(b) => (
            504,
            "cpu_budget_exceeded",
            format!(
                "the request was stopped after using its CPU budget of {:.1} s",
                b.as_secs_f64()
            ),
        ),
        Failure::WallClock(d) => (
            504,
            "deadline_exceeded",
            format!("the request was stopped after its deadline of {:.1} s", d.as_secs_f64()),
        ),
        Failure::Memory(limit) => (
            500,
            "memory_limit_exceeded",
            format!(
                "the request needed more than the instance memory limit of {} MiB",
                limit >> 20
            ),
        ),
        Failure::Cancelled => {
            (499, "client_closed_request", "the client closed the request".into())
        }
        Failure::Trap(msg) => {
            tracing::error!(error = %msg, "instance failed");
            (
                500,
                "function_error",
                "the function failed; see the host's log for this request id".into(),
            )
        }
    }
}
