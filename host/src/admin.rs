//! The admin listener: `/metrics` for Prometheus, `/healthz` (the process is alive) and
//! `/readyz` (compiled, warmed up and not draining), apart from the API port so that probes and
//! scrapes never queue behind transcriptions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hyper::server::conn::http1;
use tokio::net::TcpListener;
use wasmtime_wasi_http::io::TokioIo;

use crate::http_error::{Response, body, json_error};
use crate::metrics::Metrics;

#[derive(Default)]
pub struct Health {
    ready: AtomicBool,
    draining: AtomicBool,
}

impl Health {
    pub fn set_ready(&self, metrics: &Metrics) {
        self.ready.store(true, Ordering::SeqCst);
        metrics.ready.set(1);
    }

    pub fn set_draining(&self, metrics: &Metrics) {
        self.draining.store(true, Ordering::SeqCst);
        metrics.ready.set(0);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.draining.load(Ordering::SeqCst)
    }
}

fn respond(path: &str, method: &hyper::Method, health: &Health, metrics: &Metrics) -> Response {
    if method != hyper::Method::GET {
        return json_error(405, "method_not_allowed", format!("{method} is not allowed on {path}"));
    }
    let json = |status: u16, text: &'static str| {
        let mut r = hyper::Response::new(body(text));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        r
    };
    match path {
        "/metrics" => {
            let mut r = hyper::Response::new(body(metrics.encode()));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        }
        "/healthz" => json(200, r#"{"status":"ok"}"#),
        "/readyz" if health.is_ready() => json(200, r#"{"status":"ready"}"#),
        "/readyz" => json(503, r#"{"status":"not ready"}"#),
        _ => json_error(404, "not_found", format!("no admin route {path}")),
    }
}

/// Serves the admin routes until the process ends.
pub async fn serve(listener: TcpListener, health: Arc<Health>, metrics: Arc<Metrics>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let (health, metrics) = (health.clone(), metrics.clone());
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let r = respond(req.uri().path(), req.method(), &health, &metrics);
                    async move { Ok::<_, std::convert::Infallible>(r) }
                });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
