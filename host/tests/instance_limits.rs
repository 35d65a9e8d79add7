//! The per-instance CPU budget, wall-clock deadline and memory cap, against a real misbehaving
//! component (host/fixtures/hog) served beside the real function.

mod common;

use std::time::{Duration, Instant};

use common::{
    Server as Host, agent, assert_still_serves, manifest_with_hog, openai_error, start_host,
    transcribe_jfk,
};

/// POSTs to a hog route; status, body and how long it took.
fn hog(host: &Host, route: &str) -> (u16, String, Duration) {
    let t0 = Instant::now();
    let mut r =
        agent().post(format!("{}/hog/{route}", host.base)).send(&b""[..]).expect("POST hog");
    (r.status().as_u16(), r.body_mut().read_to_string().expect("body"), t0.elapsed())
}

#[test]
fn a_spinning_instance_is_stopped_at_its_cpu_budget_while_a_concurrent_transcription_succeeds() {
    let manifest = manifest_with_hog();
    // 2 s before the audio's length is known (the hog never tells), then + 1 s per audio second.
    let host = start_host(&manifest, &["--slots", "2", "--cpu-budget-base-ms", "2000"], &[]);
    std::thread::scope(|s| {
        let spinning = s.spawn(|| hog(&host, "spin"));
        std::thread::sleep(Duration::from_millis(100));
        let (status, body) = transcribe_jfk(&agent(), &host);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("ask not what your country can do for you"), "{body}");
        let (status, body, took) = spinning.join().expect("hog thread");
        assert_eq!(status, 504, "{body}");
        assert_eq!(openai_error(&body)["code"], "cpu_budget_exceeded");
        // Wall time ≥ CPU time; the budget is checked every 10 ms of it.
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(10),
            "stopped after {took:?}"
        );
    });
    let m = host.metrics();
    assert!(m.contains("stt_cpu_budget_exceeded_total 1"), "{m}");
    assert!(
        m.contains(r#"http_requests_total{path="/hog/...",method="POST",status="504"} 1"#),
        "{m}"
    );
    assert_still_serves(&agent(), &host);
}

#[test]
fn an_instance_blocked_without_cpu_is_stopped_at_its_wall_clock_deadline() {
    let manifest = manifest_with_hog();
    // Wall deadline = 2 × CPU budget + 5 s = 7 s.
    let host = start_host(&manifest, &["--cpu-budget-base-ms", "1000"], &[]);
    let (status, body, took) = hog(&host, "sleep");
    assert_eq!(status, 504, "{body}");
    assert_eq!(openai_error(&body)["code"], "deadline_exceeded");
    assert!(
        took >= Duration::from_secs(7) && took < Duration::from_secs(12),
        "stopped after {took:?}"
    );
    assert!(host.metrics().contains("stt_wall_deadline_exceeded_total 1"));
    let (status, body, _) = hog(&host, "ok");
    assert_eq!((status, body.as_str()), (200, "ok"));
}

#[test]
fn an_instance_over_its_memory_cap_gets_a_clear_error_and_the_host_serves_on() {
    let manifest = manifest_with_hog();
    let host = start_host(&manifest, &["--instance-memory-mb", "640"], &[]);
    let (status, body, _) = hog(&host, "alloc");
    assert_eq!(status, 500, "{body}");
    let e = openai_error(&body);
    assert_eq!(e["code"], "memory_limit_exceeded");
    assert!(e["message"].as_str().is_some_and(|m| m.contains("640 MiB")), "{e}");
    let m = host.metrics();
    assert!(m.contains("stt_instance_memory_limit_exceeded_total 1"), "{m}");
    assert!(m.contains("stt_instance_memory_limit_bytes 671088640"), "{m}");
    // The real function fits under the same cap.
    assert_still_serves(&agent(), &host);
}

/// An instance's outgoing HTTP request is refused before any connection is made: a listener on
/// 127.0.0.1 that the component asks for is never reached (wasmtime-wasi-http's default hook
/// would have connected; Spin allows only `allowed_outbound_hosts`).
#[test]
fn an_instance_cannot_make_outgoing_requests() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let manifest = manifest_with_hog();
    let host = start_host(&manifest, &[], &[]);
    let (status, body, _) = hog(&host, &format!("outbound?to=http://127.0.0.1:{port}/"));
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("refused") && body.contains("HttpRequestDenied"), "{body}");
    assert!(listener.accept().is_err(), "the instance reached the listener");
    assert_still_serves(&agent(), &host);
}
