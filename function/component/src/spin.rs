//! The Spin HTTP trigger entry point: a fresh instance per request, as Spin runs it.

use spin_sdk::http::{IncomingRequest, IntoResponse, Response};
use spin_sdk::http_component;

use crate::api::{self, Function};

/// One line on stderr (the component's log under Spin too); `stt-host` reads it to scale the
/// instance's CPU budget to the audio's length.
fn log_audio_seconds(seconds: f64) {
    eprintln!("{}", stt_contract::log_line::audio_seconds(seconds));
}

/// A header's first value as text.
fn header(req: &IncomingRequest, name: &str) -> Option<String> {
    let values = req.headers().get(&name.to_string());
    values.first().and_then(|v| String::from_utf8(v.clone()).ok())
}

#[http_component]
async fn handle(req: IncomingRequest) -> anyhow::Result<impl IntoResponse> {
    // The path exactly as the host routed it: spin-sdk's `Request::path` re-parses
    // `authority + path`, which lets a `Host` header such as `x/v1/models#` change the route.
    let path_with_query = req.path_with_query().unwrap_or_default();
    let (path, query) = match path_with_query.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (path_with_query, String::new()),
    };
    let method = req.method().to_string();
    let content_type = header(&req, "content-type");
    let authorization = header(&req, "authorization");
    let origin = header(&req, "origin");
    let body = req.into_body().await.map_err(|e| anyhow::anyhow!("{}", e.to_debug_string()))?;
    let request = api::Request { method, path, query, content_type, authorization, origin, body };
    // The snapshot's models serve the configured ones they match (name and precision); any
    // other configured model is read from its folder by the request that needs it.
    let r = Function::with_models(crate::variables::config(), crate::preload::models())
        .component_digest(crate::preload::component_digest())
        .observe_audio(log_audio_seconds)
        .handle(request);
    let mut b = Response::builder();
    b.status(r.status).header("content-type", r.content_type);
    for (k, v) in r.headers {
        b.header(k, v);
    }
    Ok(b.body(r.body).build())
}
