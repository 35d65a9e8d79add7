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
    let body = req.into_body().await.map_err(|e| anyhow::anyhow!("{}", e.to_debug_string()))?;
    let request = api::Request { method, path, query, content_type, authorization, body };
    let config = crate::variables::config();
    let function = match crate::preload::engine_for(&config.model_dir, config.precision) {
        Some(engine) => Function::with_engine(config, engine),
        // Another model than the snapshot's (`spin up` with `model_dir` set): read at run time.
        None => Function::new(config),
    };
    let r = function.observe_audio(log_audio_seconds).handle(request);
    Ok(Response::builder()
        .status(r.status)
        .header("content-type", r.content_type)
        .body(r.body)
        .build())
}
