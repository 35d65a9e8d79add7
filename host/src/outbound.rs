//! Outgoing HTTP from instances (`wasi:http/outgoing-handler`): refused, before any connection.
//! Spin lets a component reach only the hosts its `allowed_outbound_hosts` lists, and the
//! project's components list none; wasmtime-wasi-http's default hook would connect anywhere,
//! which a component served here must not be able to do.

use std::future::Future;

use hyper::{Request, Response};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The result a send hook gives the guest: the response and the future of its body's end.
type Sent = Result<(Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>;

#[derive(Debug, Default)]
pub struct NoOutbound;

impl WasiHttpHooks for NoOutbound {
    fn send_request(
        &mut self,
        _request: Request<WasiBody>,
        _options: Option<RequestOptions>,
        _body_done: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        Box::new(async { Err(Error::HttpRequestDenied) })
    }
}
