//! The function's HTTP API over real HTTP on 127.0.0.1, with the project's spin.toml, the real
//! component and model, under both hosts that serve it: `stt-host serve` and real `spin up`
//! (Spin 4). Each case runs once per host (`stt_host::…` and `spin::…`); what only `stt-host`
//! has (metrics, request ids, probes) is checked in its own cases.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{
    HostKind, Server, agent, assert_still_serves, data_dir, long_jfk, multipart, openai_error,
    start_on, transcribe_jfk,
};
use stt_testkit::http::{get, post};

/// Runs each named case under `stt-host` and under `spin up`, as separate tests.
macro_rules! on_both_hosts {
    ($($case:ident),* $(,)?) => {
        mod stt_host {
            $(#[test] fn $case() { super::$case(super::HostKind::SttHost); })*
        }
        mod spin {
            $(#[test] fn $case() { super::$case(super::HostKind::Spin); })*
        }
    };
}

on_both_hosts!(
    transcribes_lists_its_model_and_refuses_what_is_not_audio,
    the_official_openai_client_transcribes_in_every_format,
    every_bad_input_gets_its_expected_answer,
    limits_set_through_spin_variables_give_openai_errors,
    a_model_outside_the_snapshot_is_read_per_request,
    every_model_is_preloaded_and_chosen_by_the_openai_client,
    cors_preflights_from_allowed_origins_only,
    webm_matroska_surround_ogg_and_he_aac_transcribe,
    options_are_checked_before_any_work_and_prompts_are_plain_text,
    api_keys_guard_every_route_but_the_health_check,
    beam_size_comes_from_the_request_or_the_spin_variable,
    streamed_text_arrives_window_by_window,
    the_vad_filter_keeps_speech_in_place_and_drops_noise,
    a_long_recording_fans_out_to_other_instances,
);

/// Long files transcribed whole, in one instance (not cut into chunks).
const WHOLE: (&str, &str) = ("SPIN_VARIABLE_CHUNK_ABOVE_SECONDS", "3600");

/// The common requests; returns the server and the 415 response's `x-request-id` (`stt-host`
/// only) for the host-specific checks.
fn serve_basic_requests(kind: HostKind) -> (Server, Option<String>) {
    let host = start_on(kind, &[]);
    let agent = agent();
    let jfk = std::fs::read(data_dir().join("jfk.flac")).expect("jfk");

    let (status, body) = transcribe_jfk(&agent, &host);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(v["text"].as_str().is_some_and(|t| t.starts_with("And so my fellow Americans")), "{v}");

    let (ct, body) = multipart(&jfk, "text");
    let (status, text) =
        post(&agent, &format!("{}/v1/audio/transcriptions", host.base), &ct, &body);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("ask not what your country can do for you"), "{text}");

    let (status, body) = get(&agent, &format!("{}/v1/models", host.base));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["data"][0]["id"], "tiny.en", "{v}");
    // build/stt_function.wasm is the snapshot: the instance starts with the weights in memory.
    assert_eq!(v["data"][0]["weights"], "preloaded", "{v}");

    let mut r = agent
        .post(format!("{}/transcribe", host.base))
        .header("content-type", "audio/wav")
        .send(&b"not audio"[..])
        .expect("POST");
    assert_eq!(r.status(), 415);
    let request_id =
        r.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    openai_error(&r.body_mut().read_to_string().expect("body"));
    (host, request_id)
}

fn transcribes_lists_its_model_and_refuses_what_is_not_audio(kind: HostKind) {
    serve_basic_requests(kind);
}

#[test]
fn stt_host_counts_logs_and_probes_every_request() {
    let (host, request_id) = serve_basic_requests(HostKind::SttHost);
    let request_id = request_id.expect("stt-host answers with x-request-id");
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
        log.lines().any(|l| l.contains(&request_id)
            && l.contains("status=415")
            && l.contains("/transcribe")),
        "no log line for {request_id}:\n{log}"
    );
    for probe in ["healthz", "readyz"] {
        let r = agent().get(format!("{}/{probe}", host.admin())).call().expect("probe");
        assert_eq!(r.status(), 200, "{probe}");
    }
}

#[test]
fn spin_logs_the_functions_audio_line() {
    // Under Spin the component's stderr goes to Spin's log directory: the line stt-host reads
    // to scale CPU budgets is written there too, unchanged.
    let host = start_on(HostKind::Spin, &[]);
    let (status, body) = transcribe_jfk(&agent(), &host);
    assert_eq!(status, 200, "{body}");
    let log = host.log_text();
    assert!(log.contains("stt-function: audio_seconds=11.000"), "{log}");
}

fn the_official_openai_client_transcribes_in_every_format(kind: HostKind) {
    let host = start_on(kind, &[]);
    // Five formats, words alone and with segments, a beam search and a stream.
    python_client("openai_client.py", &host, &data_dir().join("jfk.flac"), 9);
}

/// Runs `tests/python/<script> BASE_URL ARG` (the official openai client) and expects `oks`
/// lines ending in " ok".
fn python_client(script: &str, host: &Server, arg: &std::path::Path, oks: usize) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python").join(script);
    let out = Command::new("python3")
        .arg(&script)
        .arg(&host.base)
        .arg(arg)
        .output()
        .expect("python3 (make test installs the openai package)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().filter(|l| l.ends_with(" ok")).count(), oks, "{stdout}");
}

/// The status of a POST; a non-200 answer must be an OpenAI error.
fn error_status(agent: &ureq::Agent, url: &str, ct: &str, body: &[u8]) -> u16 {
    let (status, text) = post(agent, url, ct, body);
    if status != 200 {
        openai_error(&text);
    }
    status
}

fn every_bad_input_gets_its_expected_answer(kind: HostKind) {
    let host = start_on(kind, &[]);
    let agent = agent();
    let url = format!("{}/v1/audio/transcriptions", host.base);
    for row in stt_testkit::paths::data_manifest("bad") {
        let (Some(file), Some(expect)) = (row.get("file"), row.get("expect")) else { continue };
        let bytes = std::fs::read(data_dir().join("bad").join(file)).expect("bad file");
        let (ct, body) = multipart(&bytes, "json");
        let (status, text) = post(&agent, &url, &ct, &body);
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {text}: {e}"));
        eprintln!("{file} ({expect}): {status} {v}");
        assert!(status < 500, "{file}: {status} {v}");
        if status != 200 {
            openai_error(&text);
        }
        let text = v["text"].as_str().unwrap_or_default().to_lowercase();
        match expect.as_str() {
            "error" => assert!((400..500).contains(&status), "{file}: {status}"),
            "jfk" => assert!(
                status == 200 && text.contains("ask not what your country can do for you"),
                "{file}: {v}"
            ),
            "empty" => {
                assert!(status == 200 && text.split_whitespace().count() <= 2, "{file}: {v}")
            }
            "error_or_empty" => {
                assert!(status != 200 || text.split_whitespace().count() <= 2, "{file}: {v}")
            }
            _ => {}
        }
    }
    assert_still_serves(&agent, &host);
}

fn limits_set_through_spin_variables_give_openai_errors(kind: HostKind) {
    let host = start_on(
        kind,
        &[
            ("SPIN_VARIABLE_MAX_DURATION_SECONDS", "5"),
            ("SPIN_VARIABLE_UPLOAD_LIMIT_BYTES", "3145728"),
        ],
    );
    let agent = agent();
    let url = format!("{}/v1/audio/transcriptions", host.base);
    let jfk = std::fs::read(data_dir().join("jfk.flac")).expect("jfk");
    let (ct, body) = multipart(&jfk, "json");
    assert_eq!(error_status(&agent, &url, &ct, &body), 422, "11 s over a 5 s limit");
    let (ct, body) = multipart(&vec![0u8; 4 << 20], "json");
    assert_eq!(error_status(&agent, &url, &ct, &body), 413);
    assert_eq!(
        error_status(&agent, &url, "multipart/form-data; boundary=x", b"--x\r\nbroken"),
        400
    );
    let b = "----x";
    let no_file = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--{b}--\r\n"
    );
    assert_eq!(
        error_status(
            &agent,
            &url,
            &format!("multipart/form-data; boundary={b}"),
            no_file.as_bytes()
        ),
        400
    );
    assert_still_serves(&agent, &host);
}

fn a_model_outside_the_snapshot_is_read_per_request(kind: HostKind) {
    // The snapshot holds int8 models: f32 is read from the mounted folder by each request.
    let host =
        start_on(kind, &[("SPIN_VARIABLE_MODELS", "tiny.en"), ("SPIN_VARIABLE_PRECISION", "f32")]);
    let agent = agent();
    let (status, body) = get(&agent, &format!("{}/v1/models", host.base));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["data"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["data"][0]["id"], "tiny.en", "{v}");
    assert_eq!(v["data"][0]["weights"], "loaded_per_request", "{v}");
    assert_eq!(v["data"][0]["precision"], "f32", "{v}");
    let (status, body) = transcribe_jfk(&agent, &host);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ask not what your country"), "{body}");
}

/// Both models in the snapshot, chosen by the official client's `model`; `whisper-1` on the
/// translations route goes to the multilingual one; each answer names its model and weights.
fn every_model_is_preloaded_and_chosen_by_the_openai_client(kind: HostKind) {
    let host = start_on(kind, &[]);
    // The list, each model by name, and a translation.
    python_client("openai_models.py", &host, &data_dir(), 4);
}

/// A browser's preflight (`OPTIONS` with `Origin`, no credentials) from an allowed origin gets
/// 204 with the methods and headers it may use; from another origin, 403. The allowed origin's
/// real request, with its API key, gets the CORS headers and may read the metering headers.
fn cors_preflights_from_allowed_origins_only(kind: HostKind) {
    let app = "http://localhost:5173";
    let host = start_on(
        kind,
        &[("SPIN_VARIABLE_CORS_ALLOWED_ORIGINS", app), ("SPIN_VARIABLE_API_KEYS", "sk-cors")],
    );
    let agent = agent();
    let url = format!("{}/v1/audio/transcriptions", host.base);
    let preflight = |origin: &str| {
        agent
            .options(url.as_str())
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .call()
            .expect("OPTIONS")
    };
    let r = preflight(app);
    let h = |r: &ureq::http::Response<ureq::Body>, name: &str| {
        r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    };
    assert_eq!(r.status(), 204);
    assert_eq!(h(&r, "access-control-allow-origin"), app);
    assert!(h(&r, "access-control-allow-methods").contains("POST"));
    assert!(h(&r, "access-control-allow-headers").contains("authorization"));
    let mut r = preflight("http://evil.example");
    assert_eq!(r.status(), 403);
    assert_eq!(h(&r, "access-control-allow-origin"), "");
    openai_error(&r.body_mut().read_to_string().expect("body"));

    let jfk = std::fs::read(data_dir().join("jfk.flac")).expect("jfk");
    let (ct, body) = stt_testkit::http::multipart(&[], Some(("jfk.flac", &jfk)));
    let r = agent
        .post(&url)
        .header("origin", app)
        .header("authorization", "Bearer sk-cors")
        .header("content-type", &ct)
        .send(&body[..])
        .expect("POST");
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, "access-control-allow-origin"), app);
    assert!(h(&r, "access-control-expose-headers").contains("x-stt-model"));
    assert_eq!(h(&r, "x-stt-model"), "tiny.en");
    if kind == HostKind::SttHost {
        // The host's own error (the caller's CPU budget spent) is readable by the page too.
        let mut r = agent
            .post(&url)
            .header("origin", app)
            .header("authorization", "Bearer sk-cors")
            .header("content-type", &ct)
            .header("x-stt-cpu-budget-ms", "1")
            .send(&body[..])
            .expect("POST");
        assert_eq!(r.status(), 504);
        assert_eq!(h(&r, "access-control-allow-origin"), app);
        let body = r.body_mut().read_to_string().expect("body");
        assert_eq!(openai_error(&body)["code"], "cpu_budget_exceeded");
    }
}

/// What browsers' MediaRecorder and desktop tools produce: WebM/Opus, Matroska audio with
/// Vorbis, Matroska with stereo 48 kHz Opus; 5.1 Vorbis and Opus in Ogg (a film's sound); and
/// HE-AAC v2 in M4A (a podcast's), read as its AAC-LC core.
fn webm_matroska_surround_ogg_and_he_aac_transcribe(kind: HostKind) {
    use stt_testkit::media::{AAC_LC_24K, reencode, signalled_as_he_aac};
    let jfk = data_dir().join("jfk.flac");
    let files = [
        (reencode(&jfk, "jfk.webm", &["-c:a", "libopus", "-b:a", "24k"]), "audio/webm"),
        (reencode(&jfk, "jfk.mka", &["-c:a", "libvorbis", "-q:a", "2"]), "audio/x-matroska"),
        (
            reencode(&jfk, "jfk.mkv", &["-ar", "48000", "-ac", "2", "-c:a", "libopus"]),
            "video/x-matroska",
        ),
        (reencode(&jfk, "jfk_5.1.ogg", &["-ac", "6", "-c:a", "libvorbis"]), "audio/ogg"),
        (reencode(&jfk, "jfk_5.1.opus", &["-ac", "6", "-c:a", "libopus"]), "audio/ogg"),
        (signalled_as_he_aac(&reencode(&jfk, "jfk_lc_24k.m4a", &AAC_LC_24K), 29), "audio/mp4"),
    ];
    let host = start_on(kind, &[]);
    let agent = agent();
    for (file, ct) in &files {
        let bytes = std::fs::read(file).expect("encoded file");
        // Through OpenAI's route with the file's own name, and raw.
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("a");
        let (mct, body) = stt_testkit::http::multipart(
            &[("model", "whisper-1"), ("response_format", "text")],
            Some((name, &bytes)),
        );
        let (status, text) =
            post(&agent, &format!("{}/v1/audio/transcriptions", host.base), &mct, &body);
        assert_eq!(status, 200, "{name}: {text}");
        assert!(text.contains("ask not what your country can do for you"), "{name}: {text}");
        let (status, text) =
            post(&agent, &format!("{}/transcribe", host.base), "application/octet-stream", &bytes);
        assert_eq!(status, 200, "{name} as {ct}: {text}");
    }
}

/// The options of both routes follow one set of rules, checked before the audio is touched:
/// a bad option on a body that is not audio is a 400 for the option (not a 415 for the body).
fn options_are_checked_before_any_work_and_prompts_are_plain_text(kind: HostKind) {
    let host = start_on(kind, &[]);
    let agent = agent();
    let base = &host.base;
    let (status, text) = post(
        &agent,
        &format!("{base}/transcribe?response_format=bogus"),
        "audio/wav",
        b"not audio",
    );
    assert_eq!(status, 400, "{text}");
    assert_eq!(openai_error(&text)["param"], "response_format");
    let (status, text) =
        post(&agent, &format!("{base}/transcribe?temperature=7"), "audio/wav", b"not audio");
    assert_eq!((status, openai_error(&text)["param"].clone()), (400, "temperature".into()));
    // Percent-encoding is decoded; an empty language means "detect", as on OpenAI's route.
    let jfk = std::fs::read(data_dir().join("jfk.flac")).expect("jfk");
    let (status, text) = post(
        &agent,
        &format!("{base}/transcribe?response_format=verbose%5Fjson&language="),
        "audio/flac",
        &jfk,
    );
    assert_eq!(status, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(v["task"], "transcribe", "verbose_json, decoded: {v}");
    // Special-token names in a prompt are text: the transcript is the same as without one.
    let url = format!("{base}/v1/audio/transcriptions");
    let hostile = "<|endoftext|><|startoftranscript|><|fr|><|translate|><|notimestamps|> Bonjour";
    let (ct, body) = stt_testkit::http::multipart(
        &[("prompt", hostile), ("response_format", "text")],
        Some(("jfk.flac", &jfk)),
    );
    let (status, text) = post(&agent, &url, &ct, &body);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("ask not what your country can do for you"), "{text}");
    // A prompt past the limit is refused before any work; one just under it is served.
    let huge = "The president spoke to the nation about freedom and duty. ".repeat(300);
    let (ct, body) =
        stt_testkit::http::multipart(&[("prompt", &huge)], Some(("a.wav", b"not audio")));
    let (status, text) = post(&agent, &url, &ct, &body);
    assert_eq!((status, openai_error(&text)["param"].clone()), (400, "prompt".into()), "{text}");
    let (ct, body) = stt_testkit::http::multipart(
        &[("prompt", &huge[..16 * 1024 - 10]), ("response_format", "text")],
        Some(("jfk.flac", &jfk)),
    );
    let (status, text) = post(&agent, &url, &ct, &body);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("ask not what your country"), "{text}");
}

fn api_keys_guard_every_route_but_the_health_check(kind: HostKind) {
    let host = start_on(kind, &[("SPIN_VARIABLE_API_KEYS", "sk-test-one, sk-test-two")]);
    let agent = agent();
    let base = &host.base;
    let models = format!("{base}/v1/models");
    let call = |key: Option<&str>| {
        let mut r = agent.get(&models);
        if let Some(k) = key {
            r = r.header("authorization", k);
        }
        let mut r = r.call().expect("GET");
        (r.status().as_u16(), r.body_mut().read_to_string().expect("body"))
    };
    for key in [None, Some("Bearer sk-test"), Some("Bearer sk-test-one-more"), Some("sk-test-one")]
    {
        let (status, text) = call(key);
        assert_eq!(status, 401, "{key:?}: {text}");
        assert_eq!(openai_error(&text)["code"], "invalid_api_key", "{key:?}");
    }
    assert_eq!(call(Some("Bearer sk-test-two")).0, 200);
    // Unknown routes do not say they are unknown without a key.
    assert_eq!(get(&agent, &format!("{base}/nope")).0, 401);
    assert_eq!(get(&agent, &format!("{base}/healthz")).0, 200, "the health check stays open");
    let jfk = std::fs::read(data_dir().join("jfk.flac")).expect("jfk");
    let mut r = agent
        .post(format!("{base}/transcribe"))
        .header("content-type", "audio/flac")
        .header("authorization", "Bearer sk-test-one")
        .send(&jfk[..])
        .expect("POST");
    assert_eq!(r.status(), 200);
    assert!(r.body_mut().read_to_string().expect("body").contains("ask not what your country"));
}

/// `beam_size` (a form field or query parameter, not OpenAI's) over the `beam_size` Spin
/// variable's default: on jfk.flac tiny.en's five beams punctuate ("And so, my fellow
/// Americans") where greedy does not.
fn beam_size_comes_from_the_request_or_the_spin_variable(kind: HostKind) {
    let host = start_on(kind, &[("SPIN_VARIABLE_BEAM_SIZE", "5")]);
    let agent = agent();
    let url = format!("{}/v1/audio/transcriptions", host.base);
    let jfk = std::fs::read(data_dir().join("jfk.flac")).expect("jfk");
    let text_of = |fields: &[(&str, &str)]| {
        let (ct, body) = stt_testkit::http::multipart(fields, Some(("jfk.flac", &jfk)));
        let (status, text) = post(&agent, &url, &ct, &body);
        assert_eq!(status, 200, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        v["text"].as_str().expect("text").to_string()
    };
    let beams = text_of(&[]);
    assert!(beams.starts_with("And so, my fellow Americans"), "the variable's 5 beams: {beams}");
    let greedy = text_of(&[("beam_size", "1")]);
    assert!(greedy.starts_with("And so my fellow Americans"), "the field's greedy: {greedy}");
    for bad in ["0", "17", "five"] {
        let (status, text) = post(
            &agent,
            &format!("{}/transcribe?beam_size={bad}", host.base),
            "audio/wav",
            b"not audio",
        );
        assert_eq!((status, openai_error(&text)["param"].clone()), (400, "beam_size".into()));
    }
    let (ct, body) = stt_testkit::http::multipart(
        &[("timestamp_granularities[]", "word"), ("response_format", "json")],
        Some(("a.wav", b"not audio")),
    );
    let (status, text) = post(&agent, &url, &ct, &body);
    assert_eq!(status, 400, "words need verbose_json: {text}");
    assert_eq!(openai_error(&text)["param"], "timestamp_granularities");
}

/// base detects the language of every multi/ clip through the HTTP API (`model=base`,
/// `verbose_json`), two requests at a time.
#[test]
fn base_detects_the_language_of_every_multilingual_clip() {
    let host = start_on(HostKind::SttHost, &[]);
    let manifest = std::fs::read_to_string(data_dir().join("multi/manifest.tsv")).expect("tsv");
    let clips: Vec<(String, String)> = manifest
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some((f.first()?.to_string(), f.get(5)?.to_string()))
        })
        .collect();
    assert!(clips.len() >= 20, "{} clips", clips.len());
    let detect = |(file, _): &(String, String)| {
        let audio = std::fs::read(data_dir().join("multi").join(file)).expect("clip");
        let (ct, body) = stt_testkit::http::multipart(
            &[("model", "base"), ("response_format", "verbose_json")],
            Some((file, &audio)),
        );
        let (status, text) =
            post(&agent(), &format!("{}/v1/audio/transcriptions", host.base), &ct, &body);
        assert_eq!(status, 200, "{file}: {text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        v["language"].as_str().unwrap_or_default().to_string()
    };
    let (first, second) = clips.split_at(clips.len() / 2);
    let other = std::thread::scope(|s| {
        let t = s.spawn(|| second.iter().map(detect).collect::<Vec<_>>());
        let mine: Vec<String> = first.iter().map(detect).collect();
        mine.into_iter().chain(t.join().expect("thread")).collect::<Vec<_>>()
    });
    for ((file, code), got) in clips.iter().zip(&other) {
        let want = stt_engine::format::english_name(code);
        assert_eq!(got, want, "{file}");
    }
}

/// The instance's CPU time comes back as `x-stt-cpu-ms` and agrees with what `/metrics`
/// counted for it; a caller's budget below what the request needs gives 504 and the next
/// request succeeds; a malformed budget is the caller's mistake (400).
#[test]
fn metering_agrees_with_metrics_and_a_caller_budget_stops_the_instance() {
    use stt_testkit::http::{metric, scrape};
    let host = start_on(HostKind::SttHost, &[]);
    let agent = agent();
    let cpu_total =
        || metric(&scrape(host.admin()), "stt_instance_cpu_seconds_total").unwrap_or(0.0);
    let before = cpu_total();
    let jfk = std::fs::read(data_dir().join("jfk.flac")).expect("jfk");
    let send = |budget: Option<&str>| {
        let mut req =
            agent.post(format!("{}/transcribe", host.base)).header("content-type", "audio/flac");
        if let Some(b) = budget {
            req = req.header("x-stt-cpu-budget-ms", b);
        }
        let mut r = req.send(&jfk[..]).expect("POST");
        let header = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (cpu, model) = (header("x-stt-cpu-ms"), header("x-stt-model"));
        (r.status().as_u16(), cpu, model, r.body_mut().read_to_string().unwrap_or_default())
    };
    let (status, cpu, model, body) = send(None);
    assert_eq!((status, model.as_deref()), (200, Some("tiny.en")), "{body}");
    let cpu_ms: f64 = cpu.expect("x-stt-cpu-ms").parse().expect("number");
    // The metric is added once the instance has ended, just after it answered.
    let counted = (0..100)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            cpu_total()
        })
        .find(|&t| t > before)
        .unwrap_or(before);
    let counted_ms = (counted - before) * 1e3;
    assert!(cpu_ms > 50.0, "{cpu_ms} ms");
    // The header is read when the instance answers; the metric when it has finished.
    assert!(
        (counted_ms - cpu_ms).abs() <= 20.0 + 0.05 * counted_ms,
        "header {cpu_ms} ms, /metrics {counted_ms} ms"
    );

    let (status, _, _, body) = send(Some("30"));
    assert_eq!(status, 504, "{body}");
    assert_eq!(openai_error(&body)["code"], "cpu_budget_exceeded");
    // A budget above the host's own does not raise it; this one is ample.
    let (status, _, _, body) = send(Some("600000"));
    assert_eq!(status, 200, "{body}");
    let (status, _, _, body) = send(Some("soon"));
    assert_eq!((status, openai_error(&body)["code"].clone()), (400, "invalid_cpu_budget".into()));
    assert_still_serves(&agent, &host);
}

/// The events of a 200 `text/event-stream` response as they arrive: seconds since `t0`, the
/// data, with an `error` event's data under `"error"` as OpenAI's clients read it.
fn read_events(
    mut r: ureq::http::Response<ureq::Body>,
    t0: std::time::Instant,
) -> Vec<(f64, serde_json::Value)> {
    use std::io::BufRead;
    assert_eq!(r.status(), 200);
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    let mut events = Vec::new();
    for line in std::io::BufReader::new(r.body_mut().as_reader()).lines() {
        let line = line.expect("the stream ends cleanly");
        if let Some(data) = line.strip_prefix("data: ") {
            let v: serde_json::Value = serde_json::from_str(data).expect("event json");
            events.push((t0.elapsed().as_secs_f64(), v));
        }
    }
    events
}

/// `stream=true`: the head and each window's text arrive while later windows are decoded (a
/// 66 s file, three windows, transcribed whole in one instance), the deltas join to the text the
/// same request gives unstreamed, and the last event is `transcript.text.done`.
fn streamed_text_arrives_window_by_window(kind: HostKind) {
    let audio = long_jfk();
    let host = start_on(kind, &[WHOLE]);
    let agent = agent();
    let url = format!("{}/v1/audio/transcriptions", host.base);
    let (ct, body) = stt_testkit::http::multipart(&[], Some(("long.flac", &audio)));
    let (status, text) = post(&agent, &url, &ct, &body);
    assert_eq!(status, 200, "{text}");
    let whole: serde_json::Value = serde_json::from_str(&text).expect("json");

    let (ct, body) =
        stt_testkit::http::multipart(&[("stream", "true")], Some(("long.flac", &audio)));
    let t0 = std::time::Instant::now();
    let r = agent.post(&url).header("content-type", &ct).send(&body[..]).expect("POST");
    let events = read_events(r, t0);
    let total = t0.elapsed().as_secs_f64();
    let deltas: Vec<&(f64, serde_json::Value)> =
        events.iter().filter(|(_, e)| e["type"] == "transcript.text.delta").collect();
    let (_, done) = events.last().expect("events");
    assert_eq!(done["type"], "transcript.text.done", "{events:?}");
    let joined: String = deltas.iter().filter_map(|(_, e)| e["delta"].as_str()).collect();
    assert_eq!(joined, done["text"].as_str().unwrap_or_default());
    assert_eq!(done["text"], whole["text"], "streamed and whole transcripts differ");
    assert_eq!(done["usage"]["seconds"], 66);
    // The first window's text came before the stream ended: not buffered by either host.
    let first = deltas.first().map(|(t, _)| *t).expect("deltas");
    assert!(first < 0.7 * total, "first delta at {first:.2} s of {total:.2} s");
}

/// An instance stopped mid-stream (its caller's CPU budget, here 60 % of what the whole
/// transcription took) ends the stream with an `error` event after the text it had sent, and
/// the host serves on.
#[test]
fn a_stream_stopped_by_its_budget_ends_with_an_error_event() {
    let audio = long_jfk();
    let host = start_on(HostKind::SttHost, &[WHOLE]);
    let agent = agent();
    let url = format!("{}/v1/audio/transcriptions", host.base);
    let (ct, body) = stt_testkit::http::multipart(&[], Some(("long.flac", &audio)));
    let r = agent.post(&url).header("content-type", &ct).send(&body[..]).expect("POST");
    assert_eq!(r.status(), 200);
    let cpu_ms: f64 = r
        .headers()
        .get("x-stt-cpu-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("x-stt-cpu-ms");
    let budget = format!("{}", (cpu_ms * 0.6) as u64);
    let (ct, body) =
        stt_testkit::http::multipart(&[("stream", "true")], Some(("long.flac", &audio)));
    let r = agent
        .post(&url)
        .header("content-type", &ct)
        .header("x-stt-cpu-budget-ms", &budget)
        .send(&body[..])
        .expect("POST");
    let events = read_events(r, std::time::Instant::now());
    let types: Vec<String> =
        events.iter().map(|(_, e)| e["type"].as_str().unwrap_or("error").to_string()).collect();
    assert!(types.first().is_some_and(|t| t == "transcript.text.delta"), "{types:?}");
    let (_, last) = events.last().expect("events");
    assert_eq!(last["error"]["code"], "cpu_budget_exceeded", "{events:?}");
    assert!(!types.iter().any(|t| t == "transcript.text.done"), "{types:?}");
    assert_still_serves(&agent, &host);
}

/// `vad_filter` (a form field or query parameter, faster-whisper's name) over the `vad_filter`
/// Spin variable: quiet noise answers empty text; speech after 20 s of silence keeps its words
/// and its time in the recording. (That a request's `vad_filter=false` wins over the variable
/// is checked natively, in the component's tests, where tiny.en's text on this noise is known:
/// in wasm the integer kernels round differently and its invention on noise differs.)
fn the_vad_filter_keeps_speech_in_place_and_drops_noise(kind: HostKind) {
    use stt_testkit::media::encode;
    let noise = encode(
        "quiet_pink_noise.wav",
        &["-f", "lavfi", "-i", "anoisesrc=d=30:c=pink:a=0.02:r=16000:s=1"],
        &[],
    );
    let jfk = data_dir().join("jfk.flac").display().to_string();
    let late = encode(
        "jfk_after_20s.flac",
        &["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono:d=20", "-i", &jfk],
        &[
            "-filter_complex",
            "[1]aresample=16000,aformat=channel_layouts=mono[a];[0][a]concat=n=2:v=0:a=1",
        ],
    );
    let (noise, late) = (std::fs::read(noise).expect("noise"), std::fs::read(late).expect("late"));
    let host = start_on(kind, &[("SPIN_VARIABLE_VAD_FILTER", "true")]);
    let agent = agent();
    let url = format!("{}/v1/audio/transcriptions", host.base);
    let answer = |fields: &[(&str, &str)], audio: &[u8]| {
        let (ct, body) = stt_testkit::http::multipart(fields, Some(("a.wav", audio)));
        let (status, text) = post(&agent, &url, &ct, &body);
        assert_eq!(status, 200, "{text}");
        serde_json::from_str::<serde_json::Value>(&text).expect("json")
    };
    assert_eq!(answer(&[], &noise)["text"], "", "the variable's default filters");
    let plain = answer(&[("vad_filter", "false")], &noise);
    assert!(plain["text"].is_string(), "{plain}");
    let v = answer(&[("response_format", "verbose_json")], &late);
    assert!(
        v["text"].as_str().is_some_and(|t| t.contains("what your country can do for you")),
        "{v}"
    );
    let first = v["segments"][0]["start"].as_f64().expect("segments");
    assert!((19.5..=20.5).contains(&first), "speech placed at {first} s, not 20 s: {v}");
    assert_eq!(v["duration"].as_f64().map(f64::round), Some(31.0), "{v}");
    let (status, text) = post(
        &agent,
        &format!("{}/transcribe?vad_filter=maybe", host.base),
        "audio/wav",
        b"not audio",
    );
    assert_eq!((status, openai_error(&text)["param"].clone()), (400, "vad_filter".into()));
}

/// A 66 s file (over `chunk_above_seconds`) is cut into chunks that the function sends to the
/// app itself: new instances under Spin, the host's own slots under `stt-host`. The answer says
/// every chunk was sent, its segments are in order and in the recording's time, the words of
/// all six copies are there, and a streamed request's deltas join to the same text.
fn a_long_recording_fans_out_to_other_instances(kind: HostKind) {
    let audio = long_jfk();
    let host = start_on(kind, &[]);
    let agent = agent();
    let url = format!("{}/v1/audio/transcriptions", host.base);
    let (ct, body) = stt_testkit::http::multipart(
        &[("response_format", "verbose_json")],
        Some(("long.flac", &audio)),
    );
    let mut r = agent.post(&url).header("content-type", &ct).send(&body[..]).expect("POST");
    let chunks = r.headers().get("x-stt-chunks").and_then(|v| v.to_str().ok()).map(String::from);
    let text = r.body_mut().read_to_string().expect("body");
    assert_eq!(r.status(), 200, "{text}");
    let chunks = chunks.expect("x-stt-chunks");
    let counts = stt_contract::fanout::ChunkCounts::parse(&chunks).expect("`N; sent=M; silent=K`");
    assert!(counts.chunks >= 3, "{chunks}");
    assert_eq!(counts.sent, counts.chunks - counts.silent, "every chunk went to another instance");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let segments = v["segments"].as_array().expect("segments");
    let starts: Vec<f64> = segments.iter().filter_map(|s| s["start"].as_f64()).collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
    assert!(starts.last().is_some_and(|&s| s > 50.0), "the last copy is placed last: {starts:?}");
    let words = stt_testkit::http::words(v["text"].as_str().unwrap_or_default());
    for phrase in ["my fellow americans", "what you can do for your country"] {
        assert_eq!(words.matches(phrase).count(), 6, "{words}");
    }

    let (ct, body) =
        stt_testkit::http::multipart(&[("stream", "true")], Some(("long.flac", &audio)));
    let r = agent.post(&url).header("content-type", &ct).send(&body[..]).expect("POST");
    let events = read_events(r, std::time::Instant::now());
    let (_, done) = events.last().expect("events");
    assert_eq!(done["type"], "transcript.text.done", "{events:?}");
    let joined: String = events
        .iter()
        .filter(|(_, e)| e["type"] == "transcript.text.delta")
        .filter_map(|(_, e)| e["delta"].as_str())
        .collect();
    assert_eq!(joined, v["text"].as_str().unwrap_or_default());
    assert_eq!(done["text"], v["text"]);
}
