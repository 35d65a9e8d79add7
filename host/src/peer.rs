//! Chunks sent to a peer (`--chunk-peer-url`: the Service in front of the pods) instead of this
//! host's slots, so that one long request spreads over pods and the HPA sees its CPU.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use wasmtime_wasi_http::{Error, WasiBody};

/// Largest chunk answer read from a peer: a verbose JSON transcript of 30 s is a few KiB.
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// Sends the request `parts` + `body` to `peer` (its path and query kept) and reads the answer.
pub async fn send(
    peer: &hyper::Uri,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Result<hyper::Response<WasiBody>, Error> {
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut uri = hyper::Uri::builder().scheme("http").path_and_query(path);
    if let Some(a) = peer.authority() {
        uri = uri.authority(a.clone());
    }
    let uri = uri.build().map_err(|_| Error::HttpRequestUriInvalid)?;
    let mut req = hyper::Request::builder().method(parts.method.clone()).uri(uri);
    for (k, v) in &parts.headers {
        if k != hyper::header::HOST {
            req = req.header(k, v);
        }
    }
    let req = req
        .body(Full::new(body).map_err(|never| match never {}))
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let (response, io) = wasmtime_wasi_http::default_send_request(req, None).await?;
    let (parts, body) = response.into_parts();
    // The connection is driven while the answer is read; it ends with it.
    let (answer, _) = tokio::join!(Limited::new(body, MAX_ANSWER_BYTES).collect(), io);
    let bytes = answer.map_err(|_| Error::HttpResponseIncomplete)?.to_bytes();
    Ok(hyper::Response::from_parts(parts, crate::http_error::body(bytes)))
}
