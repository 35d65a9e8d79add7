//! The Spin HTTP trigger entry point: a fresh instance per request, as Spin runs it.

use std::path::PathBuf;

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

use crate::api::{self, Function, FunctionConfig};

/// A Spin variable, or `None` when it is unset or the host has none.
fn var(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok().filter(|v| !v.trim().is_empty())
}

pub(crate) fn config() -> FunctionConfig {
    let d = FunctionConfig::default();
    FunctionConfig {
        model_dir: var("model_dir").map(PathBuf::from).unwrap_or(d.model_dir),
        upload_limit: var("upload_limit_bytes").and_then(|v| v.parse().ok()).unwrap_or(d.upload_limit),
        max_duration_s: var("max_duration_seconds").and_then(|v| v.parse().ok()).unwrap_or(d.max_duration_s),
        default_language: var("default_language"),
        precision: var("precision").and_then(|v| v.parse().ok()).unwrap_or(d.precision),
    }
}

/// One line on stderr (the component's log under Spin too); `stt-host` reads it to scale the
/// instance's CPU budget to the audio's length.
fn log_audio_seconds(seconds: f64) {
    eprintln!("stt-function: audio_seconds={seconds:.3}");
}

#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let request = api::Request {
        method: req.method().to_string(),
        path: req.path().to_string(),
        query: req.query().to_string(),
        content_type: req.header("content-type").and_then(|v| v.as_str()).map(str::to_string),
        body: req.into_body(),
    };
    let config = config();
    let function = match crate::preload::engine_for(&config.model_dir, config.precision) {
        Some(engine) => Function::with_engine(config, engine),
        // Another model than the snapshot's (`spin up` with `model_dir` set): read at run time.
        None => Function::new(config),
    };
    let r = function.observe_audio(log_audio_seconds).handle(request);
    Ok(Response::builder().status(r.status).header("content-type", r.content_type).body(r.body).build())
}
