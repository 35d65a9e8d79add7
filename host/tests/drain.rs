//! SIGTERM, as Kubernetes sends it: not ready, no new connections, the in-flight transcription
//! completes, then the process exits 0.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{agent, start, transcribe_jfk};

#[test]
fn sigterm_lets_the_in_flight_transcription_finish_then_exits_zero() {
    let mut host = start();
    let in_flight = std::thread::scope(|s| {
        let request = s.spawn(|| transcribe_jfk(&agent(), &host));
        // Wait until the transcription runs in an instance.
        let t0 = Instant::now();
        while !host.metrics().contains("stt_instances_busy 1") {
            assert!(t0.elapsed() < Duration::from_secs(20), "the request never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        host.terminate();
        std::thread::sleep(Duration::from_millis(200));
        let r =
            agent().get(format!("{}/readyz", host.admin())).call().expect("readyz while draining");
        assert_eq!(r.status(), 503, "not ready while draining");
        let addr = host.base.trim_start_matches("http://");
        assert!(TcpStream::connect(addr).is_err(), "a new connection was accepted while draining");
        request.join().expect("request thread")
    });
    let (status, body) = in_flight;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ask not what your country can do for you"), "{body}");
    let exit = host.wait_exit(Duration::from_secs(30)).expect("the host exits after draining");
    assert!(exit.success(), "{exit:?}\n{}", host.log_text());
    assert!(host.log_text().contains("drained"));
}

/// Connections that are not mid-request hold nothing up: SIGTERM closes idle and half-sent ones
/// at once, answers a body still arriving with 503, and exits 0 straight away.
#[test]
fn sigterm_closes_idle_and_half_open_connections_and_exits_zero_at_once() {
    use stt_testkit::raw::RawConn;
    let mut host = start();
    let mut silent = RawConn::connect(&host.base);
    let mut half_head = RawConn::connect(&host.base);
    half_head.send(b"POST /transcribe HTTP/1.1\r\nHost: x\r\nContent-Ty").expect("send");
    let mut idle = RawConn::connect(&host.base);
    idle.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    assert_eq!(idle.response(Duration::from_secs(10)).expect("healthz").status, 200);
    let mut half_body = RawConn::connect(&host.base);
    half_body
        .send(b"POST /transcribe HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nRIFF")
        .expect("send");
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    host.terminate();
    let r = half_body.response(Duration::from_secs(5)).expect("an answer to the partial body");
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(common::openai_error(&r.body)["code"], "server_draining");
    for c in [&mut silent, &mut half_head, &mut idle, &mut half_body] {
        assert!(c.closed_within(Duration::from_secs(5)), "a connection stayed open on drain");
    }
    let exit = host.wait_exit(Duration::from_secs(5)).expect("the host exits at once");
    assert!(exit.success(), "{exit:?}\n{}", host.log_text());
    assert!(t0.elapsed() < Duration::from_secs(5), "drain took {:?}", t0.elapsed());
}
