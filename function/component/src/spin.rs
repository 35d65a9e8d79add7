//! The Spin HTTP trigger entry point: a fresh instance per request, as Spin runs it.

use spin_sdk::http::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;

use crate::api::{self, Function};

/// One line on stderr (the component's log under Spin too); `stt-host` reads it to scale the
/// instance's CPU budget to the audio's length.
fn log_audio_seconds(seconds: f64) {
    eprintln!("{}", stt_contract::log_line::audio_seconds(seconds));
}

/// A header's first value as text.
fn header(req: &IncomingRequest, name: &str) -> Option<String> {
    let values = req.headers().get(name);
    values.first().and_then(|v| String::from_utf8(v.clone()).ok())
}

#[http_component]
async fn handle(req: IncomingRequest, out: ResponseOutparam) {
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
    let r = match req.into_body().await {
        Ok(body) => {
            let request =
                api::Request { method, path, query, content_type, authorization, origin, body };
            // The snapshot's models serve the configured ones they match (name and precision);
            // any other configured model is read from its folder by the request that needs it.
            Function::with_models(crate::variables::config(), crate::preload::models())
                .component_digest(crate::preload::component_digest())
                .dispatch(std::rc::Rc::new(crate::self_requests::SelfRequests))
                .observe_audio(log_audio_seconds)
                .handle(request)
        }
        Err(e) => api::Response::from(api::error::ApiError::new(
            400,
            format!("reading the request body: {}", e.to_debug_string()),
        )),
    };
    let mut headers = vec![("content-type".to_string(), r.content_type.as_bytes().to_vec())];
    headers.extend(r.headers.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())));
    // Header values are ours (names constant, values ASCII): a refusal here is a bug, and the
    // host turns a response never set into a 500.
    let Ok(fields) = Fields::from_list(&headers) else { return };
    let response = OutgoingResponse::new(fields);
    if response.set_status_code(r.status).is_err() {
        return;
    }
    let Ok(body) = response.body() else { return };
    out.set(response);
    let Ok(stream) = body.write() else { return };
    // In the pieces a blocking write may take (wasi:io: at most 4096 bytes per call); `false`
    // once the client is gone.
    let write_all =
        |bytes: &[u8]| bytes.chunks(4096).all(|c| stream.blocking_write_and_flush(c).is_ok());
    // The head is on its way; a streamed body is written event by event while the model runs.
    let mut open = write_all(&r.body);
    if let Some(events) = r.stream {
        events.write_to(&mut |bytes| {
            open = open && write_all(bytes);
            open
        });
    }
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
}
