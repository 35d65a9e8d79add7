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

/// `{"error": {"message", "type", "param", "code"}}` for `status`.
pub fn error_json(status: u16, code: &str, message: &str) -> String {
    let kind = stt_contract::errors::error_type(status);
    json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })
        .to_string()
}

/// A whole HTTP/1.1 error response as bytes, with `extra` headers, for answers written straight
/// to a socket (before or instead of hyper); the connection is closed after it.
pub fn raw_error_response(
    status: u16,
    code: &str,
    message: &str,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let body = error_json(status, code, message);
    let reason = hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let extra: String = extra.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `{"error": {"message", "type", "param", "code"}}` with `status`.
pub fn json_error(status: u16, code: &str, message: impl Into<String>) -> Response {
    let text = error_json(status, code, &message.into());
    let mut r = hyper::Response::new(body(text));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}
