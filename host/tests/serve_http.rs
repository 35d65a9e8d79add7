//! `stt-host serve` with the project's spin.toml: real HTTP on 127.0.0.1, the real component,
//! the real model.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{agent, assert_still_serves, data_dir, multipart, start, start_with, transcribe_jfk};

#[test]
fn the_host_serves_the_function_over_http() {
    let host = start();
    let agent = agent();
    let jfk = std::fs::read(data_dir().join("jfk.flac")).expect("jfk");

    let (status, body) = transcribe_jfk(&agent, &host);
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(v["text"].as_str().is_some_and(|t| t.starts_with("And so my fellow Americans")), "{v}");

    let (ct, body) = multipart(&jfk, "text");
    let mut r = agent
        .post(format!("{}/v1/audio/transcriptions", host.base))
        .header("content-type", &ct)
        .send(&body[..])
        .expect("POST");
    assert_eq!(r.status(), 200);
    assert!(r.body_mut().read_to_string().expect("body").contains("ask not what your country can do for you"));

    let mut r = agent.get(format!("{}/v1/models", host.base)).call().expect("GET /v1/models");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().expect("body")).expect("json");
    assert_eq!(v["data"][0]["id"], "tiny.en", "{v}");
    // build/stt_function.wasm is the snapshot: the instance starts with the weights in memory.
    assert_eq!(v["data"][0]["weights"], "preloaded", "{v}");

    let mut r = agent
        .post(format!("{}/transcribe", host.base))
        .header("content-type", "audio/wav")
        .send(&b"not audio"[..])
        .expect("POST");
    assert_eq!(r.status(), 415);
    let request_id = r.headers().get("x-request-id").and_then(|v| v.to_str().ok()).expect("x-request-id").to_string();
    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().expect("body")).expect("json");
    assert!(v["error"]["message"].is_string(), "{v}");

    // Every request is in /metrics under its route template, and in the log with its id.
    let m = host.metrics();
    for line in [
        r#"http_requests_total{path="/transcribe",method="POST",status="200"} 1"#,
        r#"http_requests_total{path="/v1/audio/transcriptions",method="POST",status="200"} 1"#,
        r#"http_requests_total{path="/v1/models",method="GET",status="200"} 1"#,
        r#"http_requests_total{path="/transcribe",method="POST",status="415"} 1"#,
        r#"http_request_duration_seconds_bucket{le="60.0",path="/transcribe",method="POST",status="200"} 1"#,
        "stt_audio_seconds_total 22.0",
        "stt_rtf_count 2",
        "stt_ready 1",
    ] {
        assert!(m.contains(line), "{line} not in\n{m}");
    }
    let log = host.log_text();
    assert!(
        log.lines().any(|l| l.contains(&request_id) && l.contains("status=415") && l.contains("/transcribe")),
        "no log line for {request_id}:\n{log}"
    );
    for probe in ["healthz", "readyz"] {
        let r = agent.get(format!("{}/{probe}", host.admin)).call().expect("probe");
        assert_eq!(r.status(), 200, "{probe}");
    }
}

#[test]
fn the_official_openai_client_transcribes_in_every_format() {
    let host = start();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/openai_client.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&host.base)
        .arg(data_dir().join("jfk.flac"))
        .output()
        .expect("python3 (make test installs the openai package)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.lines().filter(|l| l.ends_with(" ok")).count(), 5, "{stdout}");
}

fn error_status(agent: &ureq::Agent, url: &str, ct: &str, body: &[u8]) -> u16 {
    let mut r = agent.post(url).header("content-type", ct).send(body).expect("POST");
    let status = r.status().as_u16();
    if status != 200 {
        let text = r.body_mut().read_to_string().expect("body");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: {text}: {e}"));
        let e = &v["error"];
        assert!(
            e["message"].is_string() && e["type"].is_string() && e.get("param").is_some() && e.get("code").is_some(),
            "{v}"
        );
    }
    status
}

#[test]
fn every_bad_input_over_http_gets_its_expected_answer() {
    let host = start();
    let agent = agent();
    let url = format!("{}/v1/audio/transcriptions", host.base);
    let manifest = std::fs::read_to_string(data_dir().join("bad/manifest.tsv")).expect("manifest");
    for line in manifest.lines().skip(1) {
        let mut cols = line.split('\t');
        let (Some(file), Some(expect)) = (cols.next(), cols.next()) else { continue };
        let bytes = std::fs::read(data_dir().join("bad").join(file)).expect("bad file");
        let (ct, body) = multipart(&bytes, "json");
        let mut r = agent.post(&url).header("content-type", &ct).send(&body[..]).expect("POST");
        let status = r.status().as_u16();
        let v: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().expect("body")).expect("JSON body");
        eprintln!("{file} ({expect}): {status} {v}");
        assert!(status < 500, "{file}: {status} {v}");
        if status != 200 {
            assert!(v["error"]["message"].is_string() && v["error"].get("code").is_some(), "{file}: {v}");
        }
        let text = v["text"].as_str().unwrap_or_default().to_lowercase();
        match expect {
            "error" => assert!((400..500).contains(&status), "{file}: {status}"),
            "jfk" => assert!(status == 200 && text.contains("ask not what your country can do for you"), "{file}: {v}"),
            "empty" => assert!(status == 200 && text.split_whitespace().count() <= 2, "{file}: {v}"),
            "error_or_empty" => assert!(status != 200 || text.split_whitespace().count() <= 2, "{file}: {v}"),
            _ => {}
        }
    }
    assert_still_serves(&agent, &host);
}

#[test]
fn limits_and_malformed_requests_over_http_get_openai_errors() {
    // Spin variables overridden from the environment, as `spin up` allows.
    let host =
        start_with(&[("SPIN_VARIABLE_MAX_DURATION_SECONDS", "5"), ("SPIN_VARIABLE_UPLOAD_LIMIT_BYTES", "3145728")]);
    let agent = agent();
    let url = format!("{}/v1/audio/transcriptions", host.base);
    let jfk = std::fs::read(data_dir().join("jfk.flac")).expect("jfk");
    let (ct, body) = multipart(&jfk, "json");
    assert_eq!(error_status(&agent, &url, &ct, &body), 422, "11 s over a 5 s limit");
    let (ct, body) = multipart(&vec![0u8; 4 << 20], "json");
    assert_eq!(error_status(&agent, &url, &ct, &body), 413);
    assert_eq!(error_status(&agent, &url, "multipart/form-data; boundary=x", b"--x\r\nbroken"), 400);
    let b = "----x";
    let no_file = format!("--{b}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--{b}--\r\n");
    assert_eq!(error_status(&agent, &url, &format!("multipart/form-data; boundary={b}"), no_file.as_bytes()), 400);
    assert_still_serves(&agent, &host);
}

#[test]
fn another_model_than_the_snapshots_is_read_from_the_mounted_folder() {
    // `spin up` with another `model_dir`: the snapshot's tiny.en is not used, base is loaded.
    let host = start_with(&[("SPIN_VARIABLE_MODEL_DIR", "/models/base")]);
    let agent = agent();
    let mut r = agent.get(format!("{}/v1/models", host.base)).call().expect("GET /v1/models");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string().expect("body")).expect("json");
    assert_eq!(v["data"][0]["id"], "base", "{v}");
    assert_eq!(v["data"][0]["weights"], "loaded_per_request", "{v}");
    assert_eq!(v["data"][0]["multilingual"], true, "{v}");
    let (status, body) = transcribe_jfk(&agent, &host);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ask not what your country"), "{body}");
}
