//! The API on the real model and real audio, called as the component calls it (natively here;
//! over HTTP once the host serves the component).

use serde_json::Value;
use stt_component::api::{Function, FunctionConfig, Request, Response};
use stt_engine::Engine;
use stt_testkit::http::words;
use stt_testkit::paths::{data_dir, model_dir};

const JFK: &str = "and so my fellow americans ask not what your country can do for you ask what you can do for your country";

fn function(config: FunctionConfig) -> Function {
    let dir = model_dir("tiny.en");
    let engine = Engine::load_dir(&dir).expect("tiny.en (make models)");
    Function::with_engine(FunctionConfig { model_dir: dir, ..config }, engine)
}

/// A multipart body with `fields` and, if given, a file part.
fn multipart(fields: &[(&str, &str)], file: Option<&[u8]>) -> (String, Vec<u8>) {
    stt_testkit::http::multipart(fields, file.map(|f| ("a.flac", f)))
}

fn post(f: &mut Function, path: &str, ct: &str, body: Vec<u8>) -> Response {
    f.handle(Request {
        method: "POST".into(),
        path: path.into(),
        query: String::new(),
        content_type: Some(ct.into()),
        authorization: None,
        body,
    })
}

fn assert_openai_error(r: &Response, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).expect("JSON error body");
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(
        v["error"]["type"].is_string()
            && v["error"].get("param").is_some()
            && v["error"].get("code").is_some(),
        "{v}"
    );
    v
}

/// Start and end seconds of each cue of an SRT or VTT document.
fn cue_times(doc: &str) -> Vec<(f64, f64)> {
    let secs = |t: &str| -> f64 {
        let t = t.trim().replace(',', ".");
        let p: Vec<f64> = t.split(':').map(|x| x.parse().expect("time")).collect();
        p[0] * 3600.0 + p[1] * 60.0 + p[2]
    };
    doc.lines().filter_map(|l| l.split_once(" --> ")).map(|(a, b)| (secs(a), secs(b))).collect()
}

#[test]
fn jfk_in_every_response_format() {
    let mut f = function(FunctionConfig::default());
    let jfk = std::fs::read(data_dir().join("jfk.flac")).expect("jfk");
    for format in ["json", "text", "srt", "vtt", "verbose_json"] {
        let (ct, body) =
            multipart(&[("model", "whisper-1"), ("response_format", format)], Some(&jfk));
        let r = post(&mut f, "/v1/audio/transcriptions", &ct, body);
        assert_eq!(r.status, 200, "{format}: {}", String::from_utf8_lossy(&r.body));
        let text = String::from_utf8_lossy(&r.body).into_owned();
        match format {
            "json" => assert_eq!(
                words(
                    serde_json::from_str::<Value>(&text).expect("json")["text"]
                        .as_str()
                        .expect("text")
                ),
                JFK
            ),
            "text" => assert_eq!(words(&text), JFK),
            "verbose_json" => {
                let v: Value = serde_json::from_str(&text).expect("json");
                assert_eq!(words(v["text"].as_str().expect("text")), JFK);
                assert_eq!(
                    (v["task"].as_str(), v["language"].as_str()),
                    (Some("transcribe"), Some("english"))
                );
                assert!((v["duration"].as_f64().expect("duration") - 11.0).abs() < 0.05);
                let seg = &v["segments"][0];
                for k in [
                    "id",
                    "start",
                    "end",
                    "text",
                    "tokens",
                    "temperature",
                    "avg_logprob",
                    "compression_ratio",
                    "no_speech_prob",
                ] {
                    assert!(seg.get(k).is_some(), "segment lacks {k}: {seg}");
                }
            }
            _ => {
                let cues = cue_times(&text);
                assert!(!cues.is_empty(), "{text}");
                let mut last = 0.0;
                for (a, b) in cues {
                    assert!(a >= last && b > a, "{format}: {a} --> {b} after {last}");
                    last = b;
                }
                if format == "vtt" {
                    assert!(text.starts_with("WEBVTT"));
                }
                let spoken: String = text
                    .lines()
                    .filter(|l| !l.contains("-->") && l.parse::<u32>().is_err() && *l != "WEBVTT")
                    .collect::<Vec<_>>()
                    .join(" ");
                assert_eq!(words(&spoken), JFK);
            }
        }
    }
    let r = post(&mut f, "/transcribe", "audio/flac", jfk);
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(words(v["text"].as_str().expect("text")), JFK);
    assert!(v["segments"].as_array().is_some_and(|s| !s.is_empty()) && v["language"] == "english");
}

#[test]
fn bad_requests_get_openai_errors_and_the_next_request_succeeds() {
    let mut f = function(FunctionConfig {
        upload_limit: 3 << 20,
        max_duration_s: 5.0,
        ..FunctionConfig::default()
    });
    let manifest = std::fs::read_to_string(data_dir().join("bad/manifest.tsv")).expect("manifest");
    for line in manifest.lines().skip(1) {
        let mut cols = line.split('\t');
        let (Some(file), Some(expect)) = (cols.next(), cols.next()) else { continue };
        let bytes = std::fs::read(data_dir().join("bad").join(file)).expect("bad file");
        let (ct, body) = multipart(&[("model", "whisper-1")], Some(&bytes));
        let r = post(&mut f, "/v1/audio/transcriptions", &ct, body);
        eprintln!("{file} ({expect}): {} {}", r.status, String::from_utf8_lossy(&r.body));
        assert!(r.status < 500, "{file}: {}", r.status);
        if expect == "error" {
            let v = assert_openai_error(&r, r.status);
            assert!((400..500).contains(&r.status), "{file}: {v}");
        }
        if r.status != 200 {
            assert_openai_error(&r, r.status);
        }
    }
    let jfk = std::fs::read(data_dir().join("jfk.flac")).expect("jfk");
    // 11 s over a 5 s limit.
    let (ct, body) = multipart(&[], Some(&jfk));
    assert_openai_error(&post(&mut f, "/v1/audio/transcriptions", &ct, body), 422);
    // Over the 3 MiB upload limit.
    let (ct, body) = multipart(&[], Some(&vec![0u8; 4 << 20]));
    assert_openai_error(&post(&mut f, "/v1/audio/transcriptions", &ct, body), 413);
    // No file, malformed multipart, not multipart, unknown model, word timestamps.
    let (ct, body) = multipart(&[("model", "whisper-1")], None);
    assert_eq!(
        assert_openai_error(&post(&mut f, "/v1/audio/transcriptions", &ct, body), 400)["error"]["param"],
        "file"
    );
    assert_openai_error(
        &post(
            &mut f,
            "/v1/audio/transcriptions",
            "multipart/form-data; boundary=x",
            b"--x\r\nnot a part".to_vec(),
        ),
        400,
    );
    assert_openai_error(
        &post(&mut f, "/v1/audio/transcriptions", "application/json", b"{}".to_vec()),
        400,
    );
    let (ct, body) = multipart(&[("model", "gpt-4o")], Some(b"x"));
    assert_openai_error(&post(&mut f, "/v1/audio/transcriptions", &ct, body), 400);
    // Words need verbose_json (the default format is json).
    let (ct, body) = multipart(&[("timestamp_granularities[]", "word")], Some(b"x"));
    assert_openai_error(&post(&mut f, "/v1/audio/transcriptions", &ct, body), 400);
    // Unknown path and method.
    let get = |f: &mut Function, p: &str| {
        f.handle(Request {
            method: "GET".into(),
            path: p.into(),
            query: String::new(),
            content_type: None,
            authorization: None,
            body: vec![],
        })
    };
    assert_openai_error(&get(&mut f, "/nope"), 404);
    assert_openai_error(&get(&mut f, "/v1/audio/transcriptions"), 405);
    // And the instance still serves.
    let short = std::fs::read(data_dir().join("dev/ps_goforward.wav")).expect("clip");
    let r = post(&mut f, "/transcribe", "audio/wav", short);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(words(&String::from_utf8_lossy(&r.body)).contains("go forward"));
}

#[test]
fn models_are_listed_from_the_loaded_weights() {
    let mut f = function(FunctionConfig::default());
    let r = f.handle(Request {
        method: "GET".into(),
        path: "/v1/models".into(),
        query: String::new(),
        content_type: None,
        authorization: None,
        body: vec![],
    });
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["data"][0]["id"], "tiny.en");
    // tiny.en has 37.8 M parameters (39 M with the decoder's tied projection counted once).
    let p = v["data"][0]["parameters"].as_u64().expect("parameters");
    assert!((37_000_000..39_500_000).contains(&p), "{p}");
}
