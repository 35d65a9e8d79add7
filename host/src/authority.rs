//! The authority a request is for, checked: the request target's (absolute form), else its
//! `Host` header, else (HTTP/1.0 may omit it) the address the connection came in on. The guest
//! gets the request with exactly this authority and the path the host routed, so that nothing
//! in a header can change which route runs.

use std::net::SocketAddr;

use hyper::Uri;
use hyper::http::uri::{Authority, PathAndQuery};

/// Whether `a` is `host[:port]`: a DNS name or IPv4 address, or an IPv6 literal in brackets; no
/// user info, no path, no query, no fragment.
fn is_host_port(a: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = a.strip_prefix('[') {
        let Some((v6, tail)) = rest.split_once(']') else { return false };
        let port = match tail {
            "" => None,
            t => match t.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        (v6.parse::<std::net::Ipv6Addr>().is_ok(), port)
    } else {
        let (h, port) = match a.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (a, None),
        };
        let name = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_';
        (!h.is_empty() && h.len() <= 253 && h.bytes().all(name), port)
    };
    host_ok
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The request's URI rebuilt in absolute form (`http://authority/path?query`), or why not.
pub fn absolute_uri(
    uri: &Uri,
    host_header: Option<&[u8]>,
    local: SocketAddr,
) -> Result<Uri, String> {
    let authority = match (uri.authority(), host_header) {
        (Some(a), _) => a.as_str().to_string(),
        (None, Some(h)) => std::str::from_utf8(h)
            .map_err(|_| "the Host header is not text".to_string())?
            .to_string(),
        (None, None) => local.to_string(),
    };
    if !is_host_port(&authority) {
        return Err(format!("`{}` is not a valid host[:port]", authority.escape_debug()));
    }
    let authority: Authority = authority.parse().map_err(|e| format!("invalid host: {e}"))?;
    let path = uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(path)
        .build()
        .map_err(|e| format!("invalid request target: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_host_and_port_are_authorities() {
        for ok in ["x", "example.com", "a-b.c:8080", "127.0.0.1:3000", "[::1]", "[::1]:80"] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in [
            "",
            "x/v1/models#",
            "x/v1/audio/transcriptions?",
            "u@x",
            "x:",
            "x:abc",
            "[::1",
            "[zz]:1",
            "x:1:2",
            "x?y",
            "x#",
            "a b",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }

    #[test]
    fn the_path_is_the_request_targets_whatever_the_host_says() {
        let local: SocketAddr = "127.0.0.1:3000".parse().expect("addr");
        let uri: Uri = "/nope?a=1".parse().expect("uri");
        let u = absolute_uri(&uri, Some(b"api.example:443"), local).expect("ok");
        assert_eq!(u.to_string(), "http://api.example:443/nope?a=1");
        assert!(absolute_uri(&uri, Some(b"x/v1/models#"), local).is_err());
        let u = absolute_uri(&uri, None, local).expect("HTTP/1.0 without Host");
        assert_eq!(u.authority().map(|a| a.as_str()), Some("127.0.0.1:3000"));
    }
}
