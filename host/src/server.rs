//! Serving the app: each request's body is buffered (bounded in size and time), admitted to an
//! instance slot or the bounded queue (else 503 with Retry-After at once), and run in a fresh
//! instance from the pooling allocator with its CPU budget and memory cap. SIGTERM stops
//! accepting, lets in-flight requests finish within the grace period, and returns.

use std::convert::Infallible;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::server::conn::http1;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use wasmtime_wasi::WasiView;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::admin::Health;
use crate::http_error::{Response, json_error};
use crate::instance::{Call, Failure, InstanceReport, InstanceState, Limits, Prepared};
use crate::manifest::App;
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::slots::Slots;
use crate::variables::{self, Variables};

/// How often the epoch advances, i.e. how often a running instance's CPU use is checked.
const EPOCH_TICK: Duration = Duration::from_millis(10);

pub struct Server {
    app: App,
    components: Vec<Arc<Prepared>>,
    settings: Settings,
    limits: Limits,
    slots: Slots,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    next_id: AtomicU64,
}

/// The engine every instance runs on; `stt-host compile` uses it too, so that the code it
/// caches matches the server's.
pub fn engine(settings: &Settings) -> anyhow::Result<Engine> {
    // Room for every slot's instance plus the warm-up one; a component of the function has a
    // handful of core instances, memories and tables (its main module and wit-component shims).
    let n = settings.slots as u32 + 1;
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
            let component = crate::component_cache::load(&engine, &c.source, cache_dir)
                .with_context(|| format!("component `{}`", c.id))?;
            let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
            components.push(Arc::new(Prepared {
                id: c.id.as_str().into(),
                pre,
                files: c.files.clone(),
                variables: Variables(Arc::new(c.variables.clone())),
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
        let slots = Slots::start(settings.slots, settings.queue_depth, metrics.clone())?;
        metrics.instance_memory_limit.set(settings.instance_memory as i64);
        let limits = Limits { budget: settings.budget.clone(), memory: settings.instance_memory };
        Ok(Self {
            app: app.clone(),
            components,
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
        req: hyper::Request<hyper::body::Incoming>,
    ) -> Result<Response, Infallible> {
        let t0 = Instant::now();
        let id = self.request_id(&req);
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let component = self.app.route(&path);
        let label = match component {
            // The function's routes are labels as they are; any other path is labelled with the
            // route of the component that served it, so label values stay few.
            _ if stt_contract::routes::method(&path).is_some() => path.clone(),
            Some(i) => self.app.components[i].route.to_string(),
            None => "unmatched".into(),
        };
        let report = Arc::new(InstanceReport::default());
        let mut resp = match component {
            Some(i) => self.respond(req, i, id.clone(), report.clone()).await,
            None => json_error(404, "not_found", format!("no route for {path}")),
        };
        let status = resp.status().as_u16();
        let elapsed = t0.elapsed();
        self.metrics.observe_request(&label, &method, status, elapsed);
        let audio = report.audio_seconds();
        let mut rtf = None;
        if let (true, Some(a), Some(started)) =
            (resp.status().is_success(), audio, report.started.get())
            && a > 0.0
        {
            let r = started.elapsed().as_secs_f64() / a;
            self.metrics.rtf.observe(r);
            self.metrics.audio_seconds.inc_by(a);
            rtf = Some(r);
        }
        tracing::info!(
            request_id = %id, method, path, status,
            duration_ms = (elapsed.as_secs_f64() * 1e3).round(),
            audio_seconds = audio, rtf, "request"
        );
        if let Ok(v) = hyper::header::HeaderValue::from_str(&id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        Ok(resp)
    }

    /// The whole body, within the host's size and time limits.
    async fn read_body(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Request<Full<Bytes>>, Response> {
        let max = self.settings.max_request_bytes;
        let too_large = || {
            json_error(413, "request_too_large", format!("the request body exceeds {max} bytes"))
        };
        let declared = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        if declared.is_some_and(|n: u64| n > max as u64) {
            return Err(too_large());
        }
        let (parts, body) = req.into_parts();
        match tokio::time::timeout(self.settings.body_timeout, Limited::new(body, max).collect())
            .await
        {
            Err(_) => Err(json_error(
                408,
                "request_timeout",
                format!("the request body did not arrive within {:?}", self.settings.body_timeout),
            )),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
            Ok(Err(e)) => Err(json_error(
                400,
                "bad_request_body",
                format!("the request body could not be read: {e}"),
            )),
            Ok(Ok(collected)) => {
                Ok(hyper::Request::from_parts(parts, Full::new(collected.to_bytes())))
            }
        }
    }

    async fn respond(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
        component: usize,
        id: Arc<str>,
        report: Arc<InstanceReport>,
    ) -> Response {
        let req = match self.read_body(req).await {
            Ok(r) => r,
            Err(resp) => return resp,
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
            return r;
        };
        let (respond, response) = tokio::sync::oneshot::channel();
        let (done, ended) = tokio::sync::oneshot::channel();
        // Cancels the instance if this handler is dropped (client gone) before the response head.
        let cancel = CancellationToken::new();
        let guard = cancel.clone().drop_guard();
        let (prepared, limits, metrics) =
            (self.components[component].clone(), self.limits.clone(), self.metrics.clone());
        self.slots.submit(admission, async move {
            if cancel.is_cancelled() {
                return;
            }
            let r =
                prepared.run(Call { id, req, respond, report, cancel }, &limits, &metrics).await;
            let _ = done.send(r);
        });
        match response.await {
            Ok(Ok(resp)) => {
                // The guest may still be writing the body: it must not be cancelled now.
                guard.disarm();
                resp
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
        }
    }

    /// Accepts connections until `shutdown` resolves, then drains: returns whether every
    /// in-flight request finished within the grace period.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> bool {
        let graceful = GracefulShutdown::new();
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
                    // Responses are small and written in pieces (head, body): without this, Nagle
                    // holds the last piece for the client's delayed ACK (40 ms on Linux).
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(%addr, error = %e, "TCP_NODELAY not set");
                    }
                    let server = self.clone();
                    let service = hyper::service::service_fn(move |req| server.clone().handle(req));
                    let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(%addr, error = %e, "connection closed with an error");
                        }
                    });
                }
                _ = &mut shutdown => break,
            }
        }
        drop(listener);
        self.health.set_draining(&self.metrics);
        tracing::info!(
            grace_s = self.settings.drain_grace.as_secs_f64(),
            "draining: no new connections"
        );
        tokio::time::timeout(self.settings.drain_grace, graceful.shutdown()).await.is_ok()
    }
}

fn failure_response(failure: Failure) -> Response {
    match failure {
        Failure::CpuBudget(b) => json_error(
            504,
            "cpu_budget_exceeded",
            format!(
                "the request was stopped after using its CPU budget of {:.1} s",
                b.as_secs_f64()
            ),
        ),
        Failure::WallClock(d) => json_error(
            504,
            "deadline_exceeded",
            format!("the request was stopped after its deadline of {:.1} s", d.as_secs_f64()),
        ),
        Failure::Memory(limit) => json_error(
            500,
            "memory_limit_exceeded",
            format!(
                "the request needed more than the instance memory limit of {} MiB",
                limit >> 20
            ),
        ),
        Failure::Cancelled => {
            json_error(499, "client_closed_request", "the client closed the request")
        }
        Failure::Trap(msg) => {
            tracing::error!(error = %msg, "instance failed");
            json_error(
                500,
                "function_error",
                "the function failed; see the host's log for this request id",
            )
        }
    }
}
