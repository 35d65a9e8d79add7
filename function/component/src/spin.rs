//! The Spin HTTP trigger entry point: a fresh instance per request, as Spin runs it.

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;

use crate::api::{self, Function};

/// One line on stderr (the component's log under Spin too); `stt-host` reads it to scale the
/// instance's CPU budget to the audio's length.
fn log_audio_seconds(seconds: f64) {
    eprintln!("{}", stt_contract::log_line::audio_seconds(seconds));
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
