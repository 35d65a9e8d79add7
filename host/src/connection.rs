//! Connections in front of the instances: a cap on how many are open, a deadline for each request
//! head and for idle keep-alive, closing at once on drain whatever is not mid-request, and
//! OpenAI's error shape on the responses hyper writes by itself (a malformed or oversized head).

use std::any::Any;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::HttpService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::http_error::raw_error_response;

/// How long a connection may take over a request head, or stay idle between requests.
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// From the connection's start, or the first byte of a later request, to the end of its head.
    pub header: Duration,
    /// From the end of a response to the first byte of the next request.
    pub idle: Duration,
}

const NONE: u64 = u64::MAX;

/// What one connection is doing, shared by its socket, its requests and its task.
pub struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    served_one: AtomicBool,
    /// Milliseconds after `opened`: when the last response ended.
    idle_since: AtomicU64,
    /// Milliseconds after `opened`: the first byte of a request head not yet complete, or NONE.
    head_since: AtomicU64,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served_one: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(NONE),
        })
    }

    fn now_ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    /// A request's head has been read; the returned guard ends the request when dropped (at
    /// the end of its response, or when it is abandoned).
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.served_one.store(true, Ordering::Relaxed);
        self.head_since.store(NONE, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn bytes_arrived(&self) {
        if self.in_flight.load(Ordering::SeqCst) == 0
            && self.head_since.load(Ordering::Relaxed) == NONE
        {
            self.head_since.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) > 0
    }

    /// When the connection is to be closed if nothing changes (`None` while a request runs).
    fn deadline(&self, t: &Timeouts) -> Option<Instant> {
        if self.busy() {
            return None;
        }
        let head = self.head_since.load(Ordering::Relaxed);
        Some(if head != NONE {
            self.at(head) + t.header
        } else if !self.served_one.load(Ordering::Relaxed) {
            self.opened + t.header
        } else {
            self.at(self.idle_since.load(Ordering::Relaxed)) + t.idle
        })
    }
}

/// One request in progress on a connection.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now_ms(), Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that drops what it holds (the request's [`InFlight`], its admission) as soon
/// as its last frame is handed to hyper: before the client can have read the response, so a
/// client that sends its next request on receipt always finds the place free.
pub struct ReleaseAtEnd {
    inner: HyperOutgoingBody,
    hold: Mutex<Option<Box<dyn Any + Send>>>,
}

impl ReleaseAtEnd {
    pub fn wrap(inner: HyperOutgoingBody, hold: Box<dyn Any + Send>) -> HyperOutgoingBody {
        Self { inner, hold: Mutex::new(Some(hold)) }.boxed_unsync()
    }

    fn release(&self) {
        if let Ok(mut h) = self.hold.lock() {
            h.take();
        }
    }
}

impl Body for ReleaseAtEnd {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        match &r {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => self.release(),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.release(),
            _ => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end {
            self.release();
        }
        end
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket as hyper sees it: reads mark activity; a response head hyper wrote by itself (no
/// `x-request-id`, which the host puts on every response of its own) is replaced by the same
/// status with an OpenAI-shaped JSON body. hyper writes such a head only when it could not parse
/// a request, and closes the connection after it.
pub struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    /// The replacement response and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
}

impl Watched {
    pub fn new(inner: TcpStream, activity: Arc<Activity>) -> TokioIo<Self> {
        TokioIo::new(Self { inner, activity, replacement: None })
    }

    /// Writes what is left of the replacement; Ready once it is all out.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, done)) = &mut self.replacement {
            if *done >= bytes.len() {
                return Poll::Ready(Ok(()));
            }
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(()))
    }
}

/// The status of a response head hyper wrote by itself, if `buf` starts with one.
fn hypers_own_error(buf: &[u8]) -> Option<u16> {
    if !(buf.starts_with(b"HTTP/1.1 ") || buf.starts_with(b"HTTP/1.0 ")) {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    if head.contains("\r\nx-request-id:") {
        return None;
    }
    head.get(9..12)?.parse().ok().filter(|s| *s >= 400)
}

fn replacement_for(status: u16) -> Vec<u8> {
    let (code, message) = match status {
        431 => {
            ("request_header_fields_too_large", "the request's headers are too large or too many")
        }
        414 => ("uri_too_long", "the request target is too long"),
        505 => ("http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served"),
        _ => {
            ("bad_request", "the request is not valid HTTP/1.1 (request line, headers or framing)")
        }
    };
    raw_error_response(status, code, message, &[])
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacement.is_none()
            && let Some(status) = hypers_own_error(buf)
        {
            self.replacement = Some((replacement_for(status), 0));
        }
        if self.replacement.is_some() {
            // hyper's own bytes are dropped: the replacement answers instead.
            std::task::ready!(self.poll_replacement(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_replacement(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How a connection ended, for the log and metrics.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The client closed it, or it ended after a response.
    Normally,
    /// hyper could not parse a request (answered 400/431/414 with a JSON body).
    Malformed,
    /// No complete request head within the header timeout, or idle past the idle timeout.
    TimedOut,
    /// Closed at once on drain (idle, or mid-head).
    Drained,
    Failed(String),
}

/// Serves one connection until it ends, closing it when its deadline passes while no request
/// runs, or at once on drain when no request runs (otherwise after the running one's response).
pub async fn drive<S, B>(
    conn: http1::Connection<TokioIo<Watched>, S>,
    activity: &Activity,
    timeouts: &Timeouts,
    draining: &CancellationToken,
) -> Ended
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut conn = std::pin::pin!(conn);
    let mut shutting = false;
    loop {
        // Re-read at least every second: a request may start or end meanwhile.
        let wake = match activity.deadline(timeouts) {
            Some(d) => d.min(Instant::now() + Duration::from_secs(1)),
            None => Instant::now() + Duration::from_secs(1),
        };
        tokio::select! {
            r = conn.as_mut() => return match r {
                Ok(()) => Ended::Normally,
                Err(e) if e.is_parse() || e.is_parse_too_large() => Ended::Malformed,
                Err(e) if e.is_incomplete_message() || e.is_canceled() => Ended::Normally,
                Err(e) => Ended::Failed(e.to_string()),
            },
            _ = tokio::time::sleep_until(wake.into()) => {
                if activity.deadline(timeouts).is_some_and(|d| d <= Instant::now()) {
                    return Ended::TimedOut;
                }
            }
            _ = draining.cancelled(), if !shutting => {
                if !activity.busy() {
                    return Ended::Drained;
                }
                // Finish the running request's response, then close.
                conn.as_mut().graceful_shutdown();
                shutting = true;
            }
        }
    }
}

/// Answers a connection over the cap with 503 and closes it, without reading its request.
pub async fn refuse(mut stream: TcpStream, retry_after_s: u64) {
    let bytes = raw_error_response(
        503,
        "too_many_connections",
        "the server has as many open connections as it serves; retry shortly",
        &[("retry-after", &retry_after_s.to_string())],
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_heads_without_a_request_id_are_hypers() {
        let hyper =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(hypers_own_error(hyper), Some(431));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nx-request-id: req-1\r\n\r\n{}";
        assert_eq!(hypers_own_error(ours), None);
        assert_eq!(hypers_own_error(b"HTTP/1.1 200 OK\r\n\r\n"), None);
        assert_eq!(hypers_own_error(b"{\"text\":\"HTTP/1.1 400\"}"), None);
    }

    #[test]
    fn deadlines_follow_the_connections_state() {
        let t = Timeouts { header: Duration::from_secs(2), idle: Duration::from_secs(10) };
        let a = Activity::new();
        assert_eq!(a.deadline(&t), Some(a.opened + t.header), "a new connection owes a head");
        let r = a.request();
        assert_eq!(a.deadline(&t), None, "no deadline while a request runs");
        drop(r);
        let d = a.deadline(&t).expect("idle");
        assert!(d >= a.opened + t.idle, "idle after a response");
        a.bytes_arrived();
        assert!(a.deadline(&t).expect("head") < d, "a head under way has the shorter deadline");
    }
}
