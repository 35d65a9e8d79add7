//! Long recordings under `stt-host`: the chunks an instance sends to the app itself are admitted
//! to the host's own slots (or sent to a peer host) while their parent waits without a slot, so
//! that as many long requests as slots all finish; a chunk stopped by its budget fails its parent
//! with a clear error.

mod common;

use common::{agent, long_jfk, openai_error, start_host, workspace};
use stt_testkit::http::{metric, scrape};

/// POSTs the 66 s file with `fields`; the status, `x-stt-chunks`, `x-stt-cpu-ms` and the body.
fn transcribe_long(
    agent: &ureq::Agent,
    base: &str,
    audio: &[u8],
    fields: &[(&str, &str)],
) -> (u16, Option<String>, Option<f64>, String) {
    let (ct, body) = stt_testkit::http::multipart(fields, Some(("long.flac", audio)));
    let req = agent.post(format!("{base}/v1/audio/transcriptions")).header("content-type", &ct);
    let mut r = req.send(body).expect("POST");
    let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let (chunks, cpu) =
        (header("x-stt-chunks"), header("x-stt-cpu-ms").and_then(|v| v.parse().ok()));
    let text = r.body_mut().read_to_string().expect("body");
    (r.status().as_u16(), chunks, cpu, text)
}

/// From `x-stt-chunks`: the chunks with sound (to transcribe), and how many of them were sent.
fn chunks_sent(header: &Option<String>) -> (usize, usize) {
    let h = header.as_deref().expect("x-stt-chunks");
    let c = stt_contract::fanout::ChunkCounts::parse(h).expect("`N; sent=M; silent=K`");
    (c.chunks - c.silent, c.sent)
}

/// Two long requests at once on two slots: each parent gives its slot up while its chunks run,
/// so both finish with every chunk sent (no deadlock); with no room for waiting parents, a long
/// request transcribes its chunks itself. The chunks are counted apart from the requests.
#[test]
fn as_many_long_requests_as_slots_all_finish() {
    let audio = long_jfk();
    let host =
        start_host(&workspace().join("spin.toml"), &["--slots", "2", "--queue-depth", "1"], &[]);
    let admin = host.admin.clone().expect("admin listener");
    let answers: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| s.spawn(|| transcribe_long(&agent(), &host.base, &audio, &[])))
            .collect();
        handles.into_iter().map(|h| h.join().expect("client thread")).collect()
    });
    let mut total = 0;
    for (status, chunks, _, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        let (n, sent) = chunks_sent(chunks);
        assert_eq!(n, sent, "{chunks:?}");
        total += n;
    }
    assert_eq!(answers[0].3, answers[1].3, "the same file, the same transcript");
    let m = scrape(&admin);
    assert_eq!(metric(&m, r#"stt_chunk_requests_total{status="200"}"#), Some(total as f64), "{m}");
    assert_eq!(
        metric(
            &m,
            r#"http_requests_total{path="/v1/audio/transcriptions",method="POST",status="200"}"#
        ),
        Some(2.0),
        "chunks are not client requests"
    );
    let settled = (0..50).any(|_| {
        let m = scrape(&admin);
        std::thread::sleep(std::time::Duration::from_millis(100));
        metric(&m, "stt_waiting_parents") == Some(0.0)
            && metric(&m, "stt_instances_busy") == Some(0.0)
    });
    assert!(settled, "no parent waits and no instance runs once both are answered");
    drop(host);

    // No waiting parents allowed: the chunks run in the parent's own instance.
    let host = start_host(
        &workspace().join("spin.toml"),
        &["--slots", "1", "--waiting-parents", "0"],
        &[],
    );
    let (status, chunks, _, body) = transcribe_long(&agent(), &host.base, &audio, &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(chunks_sent(&chunks), (chunks_sent(&answers[0].1).0, 0));
    assert_eq!(body, answers[0].3, "chunks transcribed here give the same transcript");
}

/// Every instance of a request has its own CPU budget, scaled to its own audio: with budgets
/// set from what the parent (decoding, cutting) and its chunks (Whisper, here with beam search)
/// use, the parent fits and its chunks do not. The request then fails with the chunk's status and a message
/// naming the chunk and the budget, and the host serves on.
#[test]
fn a_chunk_stopped_by_its_budget_fails_its_parent() {
    let audio = long_jfk();
    let manifest = workspace().join("spin.toml");
    let beams = [("beam_size", "5")];
    // What each part costs here.
    let (parent_s, chunk_s) = {
        let host = start_host(&manifest, &["--slots", "2"], &[]);
        let admin = host.admin.clone().expect("admin listener");
        let cpu = || metric(&scrape(&admin), "stt_instance_cpu_seconds_total").unwrap_or(0.0);
        let before = cpu();
        let (status, chunks, parent_ms, body) =
            transcribe_long(&agent(), &host.base, &audio, &beams);
        assert_eq!(status, 200, "{body}");
        let (n, _) = chunks_sent(&chunks);
        let parent_s = parent_ms.expect("x-stt-cpu-ms") / 1e3;
        (parent_s, (cpu() - before - parent_s) / n as f64)
    };
    // The parent's budget is twice what it used: a base of all of it (most of which, decoding
    // the upload and starting, is spent before the audio's length is known and the budget can
    // grow) and as much again over its 66 s. A chunk, with a quarter of that audio on average,
    // gets about 1.25 times the parent's use and needs more than 1.5 times that.
    let rate = parent_s / 66.0;
    let chunk_budget = parent_s * 1.25;
    assert!(
        1.5 * chunk_budget < chunk_s,
        "no budget separates the parent ({parent_s:.2} s) from its chunks ({chunk_s:.2} s each)"
    );
    let base = format!("{}", (parent_s * 1e3) as u64);
    let rate = format!("{rate:.5}");
    let flags =
        ["--slots", "2", "--cpu-budget-base-ms", &base, "--cpu-budget-per-audio-second", &rate];
    let host = start_host(&manifest, &flags, &[]);
    let admin = host.admin.clone().expect("admin listener");
    let agent = agent();
    let (status, _, _, body) = transcribe_long(&agent, &host.base, &audio, &beams);
    assert_eq!(status, 504, "{body}");
    let e = openai_error(&body);
    assert_eq!(e["code"], "chunk_failed", "{body}");
    let message = e["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("chunk ") && message.contains("cpu_budget_exceeded"), "{message}");
    // The parent's instance ends just after its answer.
    let settled = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        metric(&scrape(&admin), "stt_waiting_parents") == Some(0.0)
    });
    assert!(settled, "the failed parent is no longer waiting");
    // The host serves on (a transcription would not fit in these budgets).
    let (status, body) = stt_testkit::http::get(&agent, &format!("{}/v1/models", host.base));
    assert_eq!(status, 200, "{body}");
}

/// With `--chunk-peer-url`, chunks go to the peer (in Kubernetes, the Service in front of the
/// pods) as ordinary requests: the peer counts them as its own requests, this host as chunks.
#[test]
fn chunks_go_to_the_peer_host_when_one_is_set() {
    let audio = long_jfk();
    let manifest = workspace().join("spin.toml");
    let peer = start_host(&manifest, &["--slots", "1", "--queue-depth", "8"], &[]);
    let host = start_host(&manifest, &["--slots", "1", "--chunk-peer-url", &peer.base], &[]);
    let (status, chunks, _, body) = transcribe_long(&agent(), &host.base, &audio, &[]);
    assert_eq!(status, 200, "{body}");
    let (n, sent) = chunks_sent(&chunks);
    assert_eq!(n, sent);
    let on_peer = scrape(peer.admin.as_deref().expect("peer admin"));
    assert_eq!(
        metric(
            &on_peer,
            r#"http_requests_total{path="/v1/audio/transcriptions",method="POST",status="200"}"#
        ),
        Some(n as f64),
        "{on_peer}"
    );
    let here = scrape(host.admin.as_deref().expect("admin"));
    assert_eq!(metric(&here, r#"stt_chunk_requests_total{status="200"}"#), Some(n as f64));
}

/// A client that leaves a streamed long request after its first text stops the request's
/// chunks: the chunks not yet answered are cancelled or never sent, and the slots are free
/// again at once rather than after the whole recording.
#[test]
fn a_client_leaving_a_long_stream_stops_its_chunks() {
    use std::io::BufRead;
    let jfk = common::data_dir().join("jfk.flac");
    let long = stt_testkit::media::encode(
        "jfk_x18.flac",
        &["-stream_loop", "17", "-i", &jfk.display().to_string()],
        &[],
    );
    let audio = std::fs::read(&long).expect("198 s clip");
    let host = start_host(&workspace().join("spin.toml"), &["--slots", "2"], &[]);
    let admin = host.admin.clone().expect("admin listener");
    let (ct, body) =
        stt_testkit::http::multipart(&[("stream", "true")], Some(("long.flac", &audio)));
    let mut r = agent()
        .post(format!("{}/v1/audio/transcriptions", host.base))
        .header("content-type", &ct)
        .send(&body[..])
        .expect("POST");
    assert_eq!(r.status(), 200);
    let mut lines = std::io::BufReader::new(r.body_mut().as_reader()).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l.contains("transcript.text.delta"))), "a first delta");
    drop(lines);
    drop(r);
    let settled = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let m = scrape(&admin);
        metric(&m, "stt_waiting_parents") == Some(0.0)
            && metric(&m, "stt_instances_busy") == Some(0.0)
    });
    assert!(settled, "the parent and its chunks stop within 10 s of the client leaving");
    let m = scrape(&admin);
    let answered = metric(&m, r#"stt_chunk_requests_total{status="200"}"#).unwrap_or(0.0);
    assert!(answered < 8.0, "198 s is at least eight chunks; {answered} were transcribed\n{m}");
}
