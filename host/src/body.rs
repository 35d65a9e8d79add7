//! Request bodies: read whole before an instance is taken (an instance must not wait on a slow
//! client), each reserved first against one budget of buffered bytes shared by all connections.
//! Memory for bodies is therefore bounded by the budget whatever the number of uploads, and a
//! body lives in a single allocation that is returned to the OS when the request ends.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::http_error::{Response, json_error};

/// The budget is counted in KiB so that one reservation fits the semaphore's `u32`.
const UNIT: usize = 1024;
/// Reservation steps for a body of unknown length (chunked).
const STEP: usize = 1 << 20;

/// Bytes the host may hold in request bodies at once.
pub struct BodyBudget {
    units: Arc<Semaphore>,
    /// Bytes reserved now (`stt_request_body_bytes`), kept by the reservations themselves.
    reserved: Gauge,
}

/// Bytes of the budget held by one request; returned (and taken off the gauge) when dropped.
pub struct Reservation {
    /// Held until dropped, never read.
    _permits: Vec<OwnedSemaphorePermit>,
    bytes: usize,
    reserved: Gauge,
}

impl Reservation {
    /// Adds `bytes` to this reservation, if the budget has room for them.
    fn grow(&mut self, budget: &BodyBudget, bytes: usize) -> Result<(), BodyError> {
        let units = u32::try_from(bytes.div_ceil(UNIT).max(1)).map_err(|_| BodyError::Busy)?;
        let permit =
            budget.units.clone().try_acquire_many_owned(units).map_err(|_| BodyError::Busy)?;
        self._permits.push(permit);
        self.bytes += bytes;
        self.reserved.inc_by(bytes as i64);
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.reserved.dec_by(self.bytes as i64);
    }
}

impl BodyBudget {
    /// A budget of `total` bytes whose use is shown on `reserved`.
    pub fn new(total: usize, reserved: Gauge) -> Self {
        Self { units: Arc::new(Semaphore::new(total.div_ceil(UNIT))), reserved }
    }

    /// A reservation of `bytes` already in memory (a chunk an instance sent), if there is room.
    pub fn reserve(&self, bytes: usize) -> Result<Reservation, BodyError> {
        let mut held = self.reservation();
        if bytes > 0 {
            held.grow(self, bytes)?;
        }
        Ok(held)
    }

    fn reservation(&self) -> Reservation {
        Reservation { _permits: Vec::new(), bytes: 0, reserved: self.reserved.clone() }
    }
}

/// Limits of one body read.
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// Why a body was not read.
#[derive(Debug)]
pub enum BodyError {
    TooLarge(usize),
    Timeout(Duration),
    /// The budget has no room for it now.
    Busy,
    Draining,
    /// The client closed the connection before the body was complete.
    ClientGone,
    Malformed(String),
}

impl BodyError {
    pub fn response(&self) -> Response {
        match self {
            Self::TooLarge(max) => json_error(
                413,
                "request_too_large",
                format!("the request body exceeds {max} bytes"),
            ),
            Self::Timeout(t) => json_error(
                408,
                "request_timeout",
                format!("the request body did not arrive within {t:?}"),
            ),
            Self::Busy => {
                let mut r = json_error(
                    503,
                    "server_busy",
                    "the server is receiving as many uploads as it can hold; retry shortly",
                );
                r.headers_mut()
                    .insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from(1));
                r
            }
            Self::Draining => json_error(
                503,
                "server_draining",
                "the server is shutting down; retry on another instance",
            ),
            Self::ClientGone => {
                json_error(499, "client_closed_request", "the client closed the request")
            }
            Self::Malformed(e) => json_error(
                400,
                "bad_request_body",
                format!("the request body could not be read: {e}"),
            ),
        }
    }
}

/// Reads the whole body within `limits`, reserving its bytes in `budget` first (or as it grows,
/// when its length is not declared). Stops at once when the host starts draining.
pub async fn read(
    req: hyper::Request<hyper::body::Incoming>,
    budget: &BodyBudget,
    limits: &BodyLimits,
    draining: &CancellationToken,
) -> Result<(hyper::Request<Full<Bytes>>, Reservation), BodyError> {
    let max = limits.max_bytes;
    let declared: Option<u64> = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge(max));
    }
    let declared = declared.map(|n| n as usize);
    let mut held = budget.reservation();
    // A request without a body (most GETs) needs no room.
    if let Some(n) = declared.filter(|n| *n > 0) {
        held.grow(budget, n)?;
    }
    let (parts, mut body) = req.into_parts();
    // One allocation of the declared size: freed whole (and unmapped) when the request ends.
    let mut buf: Vec<u8> = Vec::with_capacity(declared.unwrap_or(0));
    let collect = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
                    BodyError::ClientGone
                } else {
                    BodyError::Malformed(e.to_string())
                }
            })?;
            let Ok(data) = frame.into_data() else { continue };
            let len = buf.len() + data.len();
            if len > max {
                return Err(BodyError::TooLarge(max));
            }
            if len > held.bytes {
                // Only a body without a declared length gets here (hyper enforces a declared one).
                let step = (len - held.bytes).max(STEP).min(max - held.bytes);
                held.grow(budget, step)?;
                // The allocation grows with the reservation, not by doubling past it.
                buf.reserve_exact(held.bytes - buf.len());
            }
            buf.extend_from_slice(&data);
        }
        Ok(())
    };
    tokio::select! {
        r = tokio::time::timeout(limits.timeout, collect) => match r {
            Err(_) => return Err(BodyError::Timeout(limits.timeout)),
            Ok(r) => r?,
        },
        _ = draining.cancelled() => return Err(BodyError::Draining),
    }
    let req = hyper::Request::from_parts(parts, Full::new(Bytes::from(buf)));
    Ok((req, held))
}
