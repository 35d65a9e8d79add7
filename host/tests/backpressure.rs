//! Instance slots and the bounded queue: what does not fit is refused at once with 503 and
//! Retry-After, and everything admitted completes.

mod common;

use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::{agent, data_dir, openai_error, start_host, workspace};

#[test]
fn one_slot_and_a_queue_of_one_refuse_the_excess_at_once_and_finish_the_rest() {
    let host =
        start_host(&workspace().join("spin.toml"), &["--slots", "1", "--queue-depth", "1"], &[]);
    let jfk = std::fs::read(data_dir().join("jfk.flac")).expect("jfk");
    let url = format!("{}/transcribe", host.base);
    let barrier = Barrier::new(4);
    let results: Vec<(u16, Option<String>, String, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let agent = agent();
                    barrier.wait();
                    let t0 = Instant::now();
                    let mut r = agent
                        .post(&url)
                        .header("content-type", "audio/flac")
                        .send(&jfk[..])
                        .expect("POST /transcribe");
                    let retry = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    (
                        r.status().as_u16(),
                        retry,
                        r.body_mut().read_to_string().expect("body"),
                        t0.elapsed(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("client thread")).collect()
    });
    let refused: Vec<_> = results.iter().filter(|r| r.0 == 503).collect();
    let served: Vec<_> = results.iter().filter(|r| r.0 == 200).collect();
    assert!(!refused.is_empty(), "{results:?}");
    assert!(served.len() <= 2 && refused.len() + served.len() == 4, "{results:?}");
    for (_, retry, body, took) in &refused {
        assert_eq!(openai_error(body)["code"], "server_busy");
        assert!(
            retry.as_deref().and_then(|r| r.parse::<u64>().ok()).is_some_and(|s| s >= 1),
            "{retry:?}"
        );
        // At once: well before the transcription that holds the slot could end.
        assert!(*took < Duration::from_millis(1500), "refused after {took:?}");
    }
    for (_, _, body, _) in &served {
        assert!(body.contains("ask not what your country can do for you"), "{body}");
    }
    let m = host.metrics();
    let rejected =
        format!(r#"stt_requests_rejected_total{{reason="queue_full"}} {}"#, refused.len());
    assert!(m.contains(&rejected), "{rejected} not in\n{m}");
    assert!(m.contains("stt_instance_slots 1") && m.contains("stt_queue_capacity 1"), "{m}");
}

/// A finished request frees its place before its client can send the next one: closed-loop
/// clients no more than slots + queue never see 503.
#[test]
fn closed_loop_clients_within_slots_plus_queue_never_see_503() {
    let host =
        start_host(&workspace().join("spin.toml"), &["--slots", "1", "--queue-depth", "1"], &[]);
    let url = format!("{}/v1/models", host.base);
    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let agent = agent();
                    (0..15)
                        .map(|_| {
                            let mut r = agent.get(&url).call().expect("GET");
                            (r.status().as_u16(), r.body_mut().read_to_string().expect("body"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients.into_iter().flat_map(|c| c.join().expect("client")).collect()
    });
    let refused: Vec<&(u16, String)> = answers.iter().filter(|(s, _)| *s != 200).collect();
    assert!(refused.is_empty(), "{refused:?}");
}
