//! HTTP/1.1 over a plain socket, for the faults a client library would hide or refuse to send:
//! half-sent heads, stalled bodies, missing or hostile `Host`, absurd framing, disconnects.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One response as read off the socket.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A connection to a server's `http://127.0.0.1:PORT`.
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    pub fn connect(base: &str) -> Self {
        let addr = base.trim_start_matches("http://");
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_nodelay(true).ok();
        Self { stream, buf: Vec::new() }
    }

    /// Writes bytes; an error (the server closed) is returned, not a panic.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads until `done(buffer)` or EOF or `limit`; whether the stream ended (EOF or reset).
    fn fill_until(&mut self, limit: Duration, done: impl Fn(&[u8]) -> bool) -> bool {
        let t0 = Instant::now();
        let mut chunk = [0u8; 16 * 1024];
        while !done(&self.buf) {
            let left = limit.saturating_sub(t0.elapsed());
            if left.is_zero() {
                return false;
            }
            self.stream.set_read_timeout(Some(left.min(Duration::from_millis(200)))).ok();
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return true,
            }
        }
        false
    }

    /// The next response (Content-Length framed, or up to EOF), within `limit`.
    pub fn response(&mut self, limit: Duration) -> Option<RawResponse> {
        let head_end = |b: &[u8]| b.windows(4).position(|w| w == b"\r\n\r\n");
        self.fill_until(limit, |b| head_end(b).is_some());
        let end = head_end(&self.buf)?;
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        let start = end + 4;
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
        if chunked {
            self.fill_until(limit, |b| dechunk(&b[start..]).is_some());
            let (body, used) = dechunk(&self.buf[start..])?;
            self.buf.drain(..start + used);
            return Some(RawResponse {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        match length {
            Some(n) => {
                self.fill_until(limit, |b| b.len() >= start + n);
            }
            None => {
                self.fill_until(limit, |_| false);
            }
        }
        let stop = length.map_or(self.buf.len(), |n| (start + n).min(self.buf.len()));
        let body = String::from_utf8_lossy(&self.buf[start..stop]).into_owned();
        self.buf.drain(..stop);
        Some(RawResponse { status, headers, body })
    }

    /// Whether the server closes the connection within `limit` (reads nothing more, then EOF).
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        self.fill_until(limit, |_| false)
    }
}

/// A complete chunked body: its bytes and how many bytes of `b` it took; `None` if incomplete.
fn dechunk(b: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + b[at..].windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[at..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        let data = line_end + 2;
        if size == 0 {
            // No trailers from our servers: the last chunk is followed by the blank line.
            return (b.len() >= data + 2).then_some((body, data + 2));
        }
        if b.len() < data + size + 2 {
            return None;
        }
        body.extend_from_slice(&b[data..data + size]);
        at = data + size + 2;
    }
}

/// Sends one whole request on a new connection and reads its response.
pub fn exchange(base: &str, request: &[u8], limit: Duration) -> Option<RawResponse> {
    let mut c = RawConn::connect(base);
    c.send(request).ok()?;
    c.response(limit)
}
