//! The connection layer in front of the instances, against a real `stt-host serve` on 127.0.0.1
//! over raw sockets (a client library would not send these faults): the connection cap, head and
//! idle timeouts, the buffered-bytes budget, hostile heads, bounded labels, disconnects, long
//! high-rate audio, and the instance memory floor.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{STT_HOST, agent, data_dir, openai_error, start, start_host, workspace};
use stt_testkit::http::{get, metric};
use stt_testkit::raw::{RawConn, exchange};

const SECOND: Duration = Duration::from_secs(1);

fn manifest() -> std::path::PathBuf {
    workspace().join("spin.toml")
}

#[test]
fn connections_are_capped_and_heads_and_idle_connections_time_out() {
    let host = start_host(
        &manifest(),
        &["--max-connections", "4", "--header-timeout-seconds", "1", "--idle-timeout-seconds", "2"],
        &[],
    );
    // Over the cap: answered at once with 503 in OpenAI's shape, and closed.
    let open: Vec<RawConn> = (0..4).map(|_| RawConn::connect(&host.base)).collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut fifth = RawConn::connect(&host.base);
    let r = fifth.response(SECOND).expect("the fifth connection is answered");
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(openai_error(&r.body)["code"], "too_many_connections");
    assert!(r.header("retry-after").is_some(), "{r:?}");
    assert!(fifth.closed_within(SECOND));
    // The four that sent nothing are closed by the header timeout, which frees their places.
    for mut c in open {
        assert!(c.closed_within(3 * SECOND), "a silent connection stayed open");
    }
    // A half-sent head is closed after the header timeout, not before.
    let mut half = RawConn::connect(&host.base);
    half.send(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: ").expect("send");
    let t0 = Instant::now();
    assert!(half.closed_within(4 * SECOND), "a half-sent head stayed open");
    assert!(t0.elapsed() >= Duration::from_millis(800), "closed too early: {:?}", t0.elapsed());
    // A keep-alive connection serves, then is closed once idle for the idle timeout.
    let mut idle = RawConn::connect(&host.base);
    idle.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    assert_eq!(idle.response(5 * SECOND).expect("response").status, 200);
    let t0 = Instant::now();
    assert!(idle.closed_within(5 * SECOND), "an idle connection stayed open");
    assert!(t0.elapsed() >= Duration::from_millis(1500), "idle closed early: {:?}", t0.elapsed());
    let m = host.metrics();
    assert!(metric(&m, r#"stt_requests_rejected_total{reason="connections"}"#) >= Some(1.0), "{m}");
    assert!(
        metric(&m, r#"stt_requests_rejected_total{reason="connection_timeout"}"#) >= Some(5.0),
        "{m}"
    );
    assert_eq!(get(&agent(), &format!("{}/healthz", host.base)).0, 200, "still serves");
}

#[test]
fn buffered_uploads_are_bounded_by_the_body_budget_and_their_memory_is_returned() {
    // Two 8 MiB bodies fit the 16 MiB budget; more are refused before their bytes are read.
    let host = start_host(
        &manifest(),
        &["--max-request-mb", "8", "--body-budget-mb", "16", "--body-timeout-seconds", "30"],
        &[],
    );
    assert_eq!(get(&agent(), &format!("{}/v1/models", host.base)).0, 200);
    let (rss_before, _) = host.memory();
    let length = (8 << 20) - 1;
    let chunk = vec![7u8; 1 << 20];
    let mut stalled = Vec::new();
    let mut refused = 0;
    for _ in 0..8 {
        let mut c = RawConn::connect(&host.base);
        let head = format!(
            "POST /transcribe HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: {length}\r\n\r\n"
        );
        c.send(head.as_bytes()).expect("head");
        match c.response(Duration::from_millis(500)) {
            Some(r) => {
                assert_eq!(r.status, 503, "{r:?}");
                assert_eq!(openai_error(&r.body)["code"], "server_busy");
                assert!(r.header("retry-after").is_some());
                refused += 1;
            }
            None => {
                // Admitted to buffering: 7 of its 8 MiB, then it stalls.
                for _ in 0..7 {
                    c.send(&chunk).expect("body");
                }
                stalled.push(c);
            }
        }
    }
    assert_eq!((stalled.len(), refused), (2, 6), "the budget holds two bodies");
    std::thread::sleep(Duration::from_millis(300));
    let (rss_stalled, _) = host.memory();
    let m = host.metrics();
    assert_eq!(metric(&m, "stt_request_body_budget_bytes"), Some((16u64 << 20) as f64));
    assert_eq!(metric(&m, "stt_request_body_bytes"), Some((2 * length) as f64), "{m}");
    assert!(metric(&m, r#"stt_requests_rejected_total{reason="body_budget"}"#) >= Some(6.0));
    let grew = (rss_stalled - rss_before) / (1 << 20) as f64;
    assert!(grew < 16.0 + 24.0, "RSS grew {grew:.1} MiB for a 16 MiB budget");
    // The stalled clients leave; their bodies' memory goes back.
    drop(stalled);
    std::thread::sleep(Duration::from_millis(500));
    let (rss_after, _) = host.memory();
    let kept = (rss_after - rss_before) / (1 << 20) as f64;
    assert_eq!(metric(&host.metrics(), "stt_request_body_bytes"), Some(0.0));
    assert!(kept < 8.0, "RSS still {kept:.1} MiB above the start after the uploads closed");
    let (status, body) = common::transcribe_jfk(&agent(), &host);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn hostile_heads_get_openai_errors_and_never_change_the_route_or_the_labels() {
    let host = start();
    let base = &host.base;
    let answer = |req: &[u8]| exchange(base, req, 10 * SECOND).expect("an answer");
    // HTTP/1.0 without Host is served (the authority is the address it came in on).
    let r = answer(b"GET /v1/models HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("tiny.en"), "{r:?}");
    let id = r.header("x-request-id").expect("request id").to_string();
    // A Host that is not host[:port] is refused, and cannot reroute the request.
    for req in [
        &b"GET /nope HTTP/1.1\r\nHost: x/v1/models#\r\n\r\n"[..],
        b"POST /healthz HTTP/1.1\r\nHost: x/v1/audio/transcriptions?\r\nContent-Length: 0\r\n\r\n",
        b"GET /v1/models HTTP/1.1\r\nHost: user@x\r\n\r\n",
    ] {
        let r = answer(req);
        assert_eq!(r.status, 400, "{}: {r:?}", String::from_utf8_lossy(req));
        assert_eq!(openai_error(&r.body)["code"], "invalid_host");
    }
    let r = answer(b"GET /nope HTTP/1.1\r\nHost: api.example:443\r\n\r\n");
    assert_eq!(r.status, 404, "{r:?}");
    // What hyper refuses itself is answered in OpenAI's shape too.
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let too_many = format!("GET /v1/models HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    for (req, status) in [
        (too_many.as_bytes(), 431),
        (&b"POST /transcribe HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"[..], 400),
        (b"\x16\x03\x01\x02\x00 hello\r\n\r\n", 400),
        (b"GET /v1/models HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
    ] {
        let r = answer(req);
        assert_eq!(r.status, status, "{r:?}");
        openai_error(&r.body);
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    // Unknown methods are answered, and counted under one label.
    let before = host.metrics().len();
    for i in 0..60 {
        let r =
            answer(format!("M{i}X{} /v1/models HTTP/1.1\r\nHost: x\r\n\r\n", i * 7919).as_bytes());
        assert!((400..500).contains(&r.status), "{r:?}");
    }
    let m = host.metrics();
    assert!(!m.contains("M1X"), "a method string became a label");
    assert!(m.contains(r#"method="other""#), "{m}");
    assert!(m.len() < before + 4096, "/metrics grew from {before} to {} bytes", m.len());
    assert!(metric(&m, r#"stt_requests_rejected_total{reason="malformed_request"}"#) >= Some(4.0));
    // One log line per request, and no backtrace anywhere.
    let log = host.log_text();
    let tag = format!("request_id={id} ");
    assert_eq!(log.lines().filter(|l| l.contains(&tag)).count(), 1, "{log}");
    assert!(!log.contains("backtrace") && !log.contains("panicked"), "{log}");
    assert_eq!(get(&agent(), &format!("{base}/healthz")).0, 200, "still serves");
}

#[test]
fn a_client_that_leaves_before_its_answer_is_counted_and_logged_as_499() {
    let host = start();
    let jfk = std::fs::read(data_dir().join("jfk.flac")).expect("jfk");
    let mut c = RawConn::connect(&host.base);
    let head = format!(
        "POST /transcribe HTTP/1.1\r\nHost: x\r\nContent-Type: audio/flac\r\nX-Request-Id: leaver-1\r\nContent-Length: {}\r\n\r\n",
        jfk.len()
    );
    c.send(head.as_bytes()).expect("head");
    c.send(&jfk).expect("body");
    // Gone while its transcription runs.
    let t0 = Instant::now();
    while !host.metrics().contains("stt_instances_busy 1") {
        assert!(t0.elapsed() < 10 * SECOND, "the transcription never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(c);
    let t0 = Instant::now();
    loop {
        let m = host.metrics();
        if metric(&m, r#"http_requests_total{path="/transcribe",method="POST",status="499"}"#)
            == Some(1.0)
        {
            break;
        }
        assert!(t0.elapsed() < 10 * SECOND, "no 499 counted:\n{m}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = host.log_text();
    assert!(
        log.lines().any(|l| l.contains("leaver-1") && l.contains("499")),
        "no 499 line for the request:\n{log}"
    );
}

/// Long audio at 96 kHz (and 48 kHz Opus) within `max_duration_seconds` decodes into memory
/// proportional to 16 kHz, inside the default 1 GiB instance cap.
#[test]
fn long_high_rate_audio_within_the_limits_transcribes() {
    let jfk = data_dir().join("jfk.flac").display().to_string();
    // jfk, then 28 minutes of digital silence, as a 96 kHz FLAC (29 min, small on the wire).
    let flac = stt_testkit::media::encode(
        "long_96k.flac",
        &["-i", &jfk, "-f", "lavfi", "-t", "1680", "-i", "anullsrc=r=96000:cl=mono"],
        &["-filter_complex", "[0:a]aresample=96000[a];[a][1:a]concat=n=2:v=0:a=1", "-c:a", "flac"],
    );
    let host = start();
    let (status, body) = stt_testkit::http::post_audio(&agent(), &host.base, &flac, "audio/flac");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    // Long audio is transcribed in chunks: a cut may fall in the pause after "ask not", and
    // tiny.en may then hear the five seconds before it as "asked not".
    let words = stt_testkit::http::words(v["text"].as_str().unwrap_or_default());
    assert!(words.contains("what your country can do for you ask what you can do"), "{body}");
    assert!(v["duration"].as_f64().is_some_and(|d| d > 1680.0), "{v}");
}

#[test]
fn an_instance_memory_limit_below_the_snapshot_fails_start_up_in_one_line() {
    let out = Command::new(STT_HOST)
        .current_dir(workspace())
        .args(["serve", "--manifest"])
        .arg(manifest())
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--instance-memory-mb", "16"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("stt-host");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("STT_INSTANCE_MEMORY_MB") && errors[0].contains("at least"),
        "{stderr}"
    );
    assert!(!stderr.contains("backtrace") && !stderr.contains("Caused by"), "{stderr}");
}
