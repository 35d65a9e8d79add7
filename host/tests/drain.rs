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
