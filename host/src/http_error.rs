//! Responses the host itself gives (queue full, budget exceeded, …), in OpenAI's error shape like
//! the function's own errors, so that clients handle both the same way.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

pub type Response = hyper::Response<HyperOutgoingBody>;

pub fn body(bytes: impl Into<Bytes>) -> HyperOutgoingBody {
    Full::new(bytes.into()).map_err(wasmtime_wasi_http::Error::from).boxed_unsync()
}

/// `{"error": {"message", "type", "param", "code"}}` with `status`.
pub fn json_error(status: u16, code: &str, message: impl Into<String>) -> Response {
    let kind = stt_contract::errors::error_type(status);
    let text = json!({ "error": { "message": message.into(), "type": kind, "param": null, "code": code } });
    let mut r = hyper::Response::new(body(text.to_string()));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}
