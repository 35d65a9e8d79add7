//! Outgoing HTTP from instances (`wasi:http/outgoing-handler`). Spin lets a component reach only
//! the hosts its `allowed_outbound_hosts` lists; here the one allowed is the app itself
//! (`http://self`, for a long recording's chunks), and only to a component that lists it.
//! Anything else is refused before any connection: wasmtime-wasi-http's default hook would
//! connect anywhere.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hyper::{Request, Response};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::report::InstanceReport;
use crate::slots::Running;

/// The result a send hook gives the guest: the response and the future of its body's end.
type Sent = Result<(Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>), Error>;

/// Answers a request an instance sends to its own app.
pub type SelfCall = Arc<
    dyn Fn(
            Request<WasiBody>,
        ) -> Pin<Box<dyn Future<Output = Result<Response<WasiBody>, Error>> + Send>>
        + Send
        + Sync,
>;

/// One instance's outgoing requests.
#[derive(Default)]
pub struct Outbound {
    to_self: Option<ToSelf>,
}

struct ToSelf {
    call: SelfCall,
    running: Running,
    report: Arc<InstanceReport>,
    /// The most memory a waiting parent may hold, bytes.
    parent_memory: usize,
}

impl Outbound {
    /// Requests to the app itself go to `call`. The first one makes the instance a waiting
    /// parent (`running`), whose memory is capped from then on at `parent_memory`; it is
    /// refused when the host has no room for another waiting parent or the instance holds more
    /// memory than that already (the function then transcribes its chunks itself).
    pub fn to_self(
        call: SelfCall,
        running: Running,
        report: Arc<InstanceReport>,
        parent_memory: usize,
    ) -> Self {
        Self { to_self: Some(ToSelf { call, running, report, parent_memory }) }
    }
}

impl ToSelf {
    /// Whether the instance may wait for requests to the app itself (and now does).
    fn wait(&self) -> bool {
        if self.report.is_waiting_parent() {
            return true;
        }
        if self.report.peak_memory.load(Ordering::Relaxed) > self.parent_memory
            || !self.running.wait_for_children()
        {
            return false;
        }
        self.report.memory_cap.store(self.parent_memory, Ordering::Relaxed);
        true
    }
}

/// Whether `request` is for the app itself: Spin's `self.alt` authority, or none at all.
fn is_self(request: &Request<WasiBody>) -> bool {
    request
        .uri()
        .authority()
        .is_none_or(|a| a.host().eq_ignore_ascii_case(stt_contract::fanout::SELF_AUTHORITY))
}

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        _options: Option<RequestOptions>,
        _body_done: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let call = match &self.to_self {
            Some(to) if is_self(&request) && to.wait() => to.call.clone(),
            _ => return Box::new(async { Err(Error::HttpRequestDenied) }),
        };
        Box::new(async move {
            let response = call(request).await?;
            Ok((response, Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>))
        })
    }
}
