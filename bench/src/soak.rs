//! `stt-bench soak`: one `stt-host` on 127.0.0.1 under a mix of clients for a while, at and above
//! its capacity: good clients in a closed loop (as many as slots + queue, plus two), clients
//! sending the bad-input corpus, slow clients (a head, then a trickle of body), clients that
//! leave before their answer, and hostile heads (garbage, unknown methods, hostile `Host`).
//! Sampled every second: RSS, open connections, busy instances. At the end SIGTERM, and the exit
//! code. Report: docs/benchmarks/soak_report.md with soak_rss.svg.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stt_testkit::raw::RawConn;

use crate::host_proc::{self, metric, scrape};
use crate::load::write_report;
use crate::plot::{self, Series};
use crate::{Paths, percentile};

#[derive(clap::Args, Clone)]
pub struct Args {
    #[command(flatten)]
    paths: Paths,
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    #[arg(long, default_value_t = 2)]
    slots: usize,
    #[arg(long, default_value = "spin.toml")]
    manifest: PathBuf,
    #[arg(long)]
    host: Option<PathBuf>,
    #[arg(long, default_value = "docs/benchmarks/soak_report.md")]
    out: PathBuf,
}

/// Client kinds and what each saw.
#[derive(Default)]
struct Tally {
    /// kind → status → count (0 = no answer: the client left, or the connection was closed).
    statuses: Mutex<BTreeMap<&'static str, BTreeMap<u16, u64>>>,
    good_latency_s: Mutex<Vec<f64>>,
    sent: AtomicU64,
}

impl Tally {
    fn record(&self, kind: &'static str, status: u16) {
        if let Ok(mut m) = self.statuses.lock() {
            *m.entry(kind).or_default().entry(status).or_default() += 1;
        }
    }
}

struct Sample {
    t: f64,
    rss_mib: f64,
    connections: f64,
    busy: f64,
}

/// The files clients send: good (dev clips) and bad (the bad-input corpus).
struct Files {
    good: Vec<Vec<u8>>,
    bad: Vec<Vec<u8>>,
}

fn audio_files(a: &Args) -> anyhow::Result<Files> {
    let mut good = Vec::new();
    for e in std::fs::read_dir(a.paths.data.join("dev"))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x != "tsv" && x != "txt" && x != "md") {
            good.push(std::fs::read(&p)?);
        }
    }
    let mut bad = Vec::new();
    for e in std::fs::read_dir(a.paths.data.join("bad"))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x != "tsv") && std::fs::metadata(&p)?.len() < 8 << 20 {
            bad.push(std::fs::read(&p)?);
        }
    }
    anyhow::ensure!(!good.is_empty() && !bad.is_empty(), "no audio in {}", a.paths.data.display());
    Ok(Files { good, bad })
}

pub fn run(a: &Args) -> anyhow::Result<()> {
    let binary = crate::sibling_binary(a.host.as_deref(), "stt-host")?;
    let queue = 2 * a.slots;
    let flags: Vec<String> = [
        "--slots",
        &a.slots.to_string(),
        "--queue-depth",
        &queue.to_string(),
        "--body-timeout-seconds",
        "10",
        "--header-timeout-seconds",
        "5",
        "--idle-timeout-seconds",
        "10",
        "--max-connections",
        "64",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut host = host_proc::start(&binary, &a.manifest, &flags, None, &[])?;
    let admin = host.admin().to_string();
    let Files { good, bad } = audio_files(a)?;
    let jfk = std::fs::read(a.paths.data.join("jfk.flac"))?;
    let tally = Tally::default();
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(a.seconds);
    let samples = Mutex::new(Vec::<Sample>::new());
    let base = host.base.clone();
    let good_clients = a.slots + queue + 2;
    std::thread::scope(|s| {
        // Sampler.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let m = scrape(&admin);
                let sample = Sample {
                    t: t0.elapsed().as_secs_f64(),
                    rss_mib: host.memory().0 / (1 << 20) as f64,
                    connections: metric(&m, "stt_connections").unwrap_or(0.0),
                    busy: metric(&m, "stt_instances_busy").unwrap_or(0.0),
                };
                if let Ok(mut v) = samples.lock() {
                    v.push(sample);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        // Good clients, closed loop, both routes.
        for i in 0..good_clients {
            let (tally, good, base) = (&tally, &good, &base);
            s.spawn(move || {
                let agent = stt_testkit::http::agent();
                let mut n = i;
                while Instant::now() < end {
                    let clip = &good[n % good.len()];
                    n += 1;
                    let t = Instant::now();
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                    let status = if n % 2 == 0 {
                        post(
                            &agent,
                            &format!("{base}/transcribe"),
                            "application/octet-stream",
                            clip,
                        )
                    } else {
                        let (ct, body) = stt_testkit::http::multipart(
                            &[("model", "whisper-1")],
                            Some(("clip", clip)),
                        );
                        post(&agent, &format!("{base}/v1/audio/transcriptions"), &ct, &body)
                    };
                    tally.record("good", status);
                    if status == 200 {
                        if let Ok(mut l) = tally.good_latency_s.lock() {
                            l.push(t.elapsed().as_secs_f64());
                        }
                    } else if status == 503 {
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            });
        }
        // Bad inputs.
        for i in 0..2 {
            let (tally, bad, base) = (&tally, &bad, &base);
            s.spawn(move || {
                let agent = stt_testkit::http::agent();
                let mut n = i;
                while Instant::now() < end {
                    let file = &bad[n % bad.len()];
                    n += 1;
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                    let (ct, body) = stt_testkit::http::multipart(&[], Some(("bad", file)));
                    let status =
                        post(&agent, &format!("{base}/v1/audio/transcriptions"), &ct, &body);
                    tally.record("bad", status);
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
        // Slow clients: a declared body sent at 1 KiB/s, until the host gives up on it.
        for _ in 0..2 {
            let (tally, base) = (&tally, &base);
            s.spawn(move || {
                while Instant::now() < end {
                    let mut c = RawConn::connect(base);
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                    let head = "POST /transcribe HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: 1000000\r\n\r\n";
                    if c.send(head.as_bytes()).is_err() {
                        tally.record("slow", 0);
                        continue;
                    }
                    let mut status = 0;
                    while Instant::now() < end {
                        if c.send(&[0u8; 1024]).is_err() {
                            break;
                        }
                        if let Some(r) = c.response(Duration::from_secs(1)) {
                            status = r.status;
                            break;
                        }
                    }
                    tally.record("slow", status);
                }
            });
        }
        // Clients that leave while their transcription runs.
        {
            let (tally, base, jfk) = (&tally, &base, &jfk);
            s.spawn(move || {
                let mut rng = fastrand::Rng::with_seed(7);
                while Instant::now() < end {
                    let mut c = RawConn::connect(base);
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                    let head = format!(
                        "POST /transcribe HTTP/1.1\r\nHost: x\r\nContent-Type: audio/flac\r\nContent-Length: {}\r\n\r\n",
                        jfk.len()
                    );
                    let _ = c.send(head.as_bytes()).and_then(|_| c.send(jfk));
                    std::thread::sleep(Duration::from_millis(rng.u64(50..600)));
                    drop(c);
                    tally.record("leaving", 0);
                    std::thread::sleep(Duration::from_millis(500));
                }
            });
        }
        // Hostile heads.
        {
            let (tally, base) = (&tally, &base);
            s.spawn(move || {
                let reqs: [&[u8]; 5] = [
                    b"\x16\x03\x01\x02\x00 garbage\r\n\r\n",
                    b"BREW /v1/models HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET /nope HTTP/1.1\r\nHost: x/v1/models#\r\n\r\n",
                    b"POST /transcribe HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
                    b"GET /v1/models HTTP/1.0\r\n\r\n",
                ];
                let mut n = 0;
                while Instant::now() < end {
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                    let r = stt_testkit::raw::exchange(base, reqs[n % reqs.len()], Duration::from_secs(10));
                    n += 1;
                    tally.record("hostile", r.map_or(0, |r| r.status));
                    std::thread::sleep(Duration::from_millis(250));
                }
            });
        }
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::Relaxed);
    });
    let metrics = scrape(&admin);
    let drain_t0 = Instant::now();
    host.terminate();
    let exit = host.wait_exit(Duration::from_secs(60));
    let drain_s = drain_t0.elapsed().as_secs_f64();
    let samples = samples.into_inner().unwrap_or_default();
    let statuses = tally.statuses.into_inner().unwrap_or_default();
    let latencies = tally.good_latency_s.into_inner().unwrap_or_default();
    let counted: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    let rejected = |r: &str| {
        metric(&metrics, &format!("stt_requests_rejected_total{{reason=\"{r}\"}}")).unwrap_or(0.0)
    };
    let rss: Vec<f64> = samples.iter().map(|s| s.rss_mib).collect();
    let first_minute: Vec<f64> = samples.iter().filter(|s| s.t < 60.0).map(|s| s.rss_mib).collect();
    let last_minute: Vec<f64> =
        samples.iter().filter(|s| s.t > a.seconds as f64 - 60.0).map(|s| s.rss_mib).collect();
    let good_5xx: u64 = statuses
        .get("good")
        .map(|m| m.iter().filter(|(s, _)| **s >= 500 && **s != 503).map(|(_, n)| n).sum())
        .unwrap_or(0);

    let mut r = String::new();
    let _ = writeln!(r, "# Soak: mixed clients at and above capacity\n");
    let _ = writeln!(
        r,
        "`stt-bench soak --seconds {}`: one `stt-host` ({} slots, queue {queue}, body timeout 10 s, header timeout 5 s, idle 10 s, 64 connections) on 127.0.0.1, this machine ({} cores). {good_clients} good clients in a closed loop (dev clips, both routes: more than slots + queue, so the host runs at capacity and refuses the excess), 2 sending the bad-input corpus, 2 slow uploaders (1 KiB/s), 1 client leaving 50–600 ms after sending jfk.flac, 1 sending hostile heads.\n",
        a.seconds,
        a.slots,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let _ = writeln!(
        r,
        "| client | status → count (0: no answer read, the client left or was cut off) |\n|---|---|"
    );
    for (kind, m) in &statuses {
        let cells: Vec<String> = m.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        let _ = writeln!(r, "| {kind} | {} |", cells.join(", "));
    }
    let _ = writeln!(r);
    let _ = writeln!(r, "| measure | value |\n|---|---|");
    let _ = writeln!(r, "| requests sent (client side) | {} |", tally.sent.load(Ordering::Relaxed));
    let _ = writeln!(r, "| requests counted by the host (`http_requests_total`) | {counted:.0} |");
    let _ = writeln!(
        r,
        "| counted + refused as malformed (hyper could not parse them) = sent? | {:.0} = {}: {} |",
        counted + rejected("malformed_request"),
        tally.sent.load(Ordering::Relaxed),
        if (counted + rejected("malformed_request")) as u64 == tally.sent.load(Ordering::Relaxed) {
            "every request answered or counted"
        } else {
            "**no**"
        }
    );
    let _ = writeln!(
        r,
        "| of which 499 (client left) | {:.0} |",
        metrics
            .lines()
            .filter(|l| l.starts_with("http_requests_total{") && l.contains("status=\"499\""))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum::<f64>()
    );
    for reason in [
        "queue_full",
        "body_budget",
        "connections",
        "malformed_request",
        "connection_timeout",
        "draining",
    ] {
        let _ = writeln!(r, "| refused before an instance: `{reason}` | {:.0} |", rejected(reason));
    }
    let _ = writeln!(r, "| good requests answered 5xx other than 503 | **{good_5xx}** |");
    let _ = writeln!(
        r,
        "| good requests: p50 / p95 latency of 200s | {:.2} s / {:.2} s |",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95)
    );
    let _ = writeln!(
        r,
        "| RSS: first minute max / last minute max / overall max | {:.0} / {:.0} / {:.0} MiB |",
        first_minute.iter().cloned().fold(0.0, f64::max),
        last_minute.iter().cloned().fold(0.0, f64::max),
        rss.iter().cloned().fold(0.0, f64::max)
    );
    let _ = writeln!(
        r,
        "| SIGTERM at the end: exit, time to exit | {} , {drain_s:.1} s |",
        exit.map_or("did not exit within 60 s".to_string(), |e| format!("{e}"))
    );
    let _ = writeln!(r, "\n![RSS, connections and busy instances over time](soak_rss.svg)");
    let svg = a.out.with_file_name("soak_rss.svg");
    plot::lines(
        &svg,
        "stt-host under the soak mix",
        "seconds",
        "MiB (RSS) · count",
        &[
            Series {
                name: "RSS, MiB".into(),
                points: samples.iter().map(|s| (s.t, s.rss_mib)).collect(),
            },
            Series {
                name: "open connections × 10".into(),
                points: samples.iter().map(|s| (s.t, s.connections * 10.0)).collect(),
            },
            Series {
                name: "busy instances × 100".into(),
                points: samples.iter().map(|s| (s.t, s.busy * 100.0)).collect(),
            },
        ],
    )?;
    write_report(&a.out, &r)?;
    println!("{r}");
    anyhow::ensure!(good_5xx == 0, "good requests got 5xx other than 503");
    anyhow::ensure!(exit.is_some_and(|e| e.success()), "the host did not exit 0 on SIGTERM");
    Ok(())
}

/// POSTs `body`; the status, or 0 when the exchange failed (reset, closed).
fn post(agent: &ureq::Agent, url: &str, content_type: &str, body: &[u8]) -> u16 {
    match agent.post(url).header("content-type", content_type).send(body) {
        Ok(mut r) => {
            let _ = r.body_mut().read_to_string();
            r.status().as_u16()
        }
        Err(_) => 0,
    }
}
