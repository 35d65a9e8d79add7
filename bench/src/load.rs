//! `stt-bench load`: an open-loop load generator (Poisson arrivals at a target rate, bounded in
//! count and time, 127.0.0.1 only) against a host, and a sweep of rates that finds where p95
//! latency crosses the guide's 2 s and 5 s thresholds.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use crate::host_proc::{self, HostProc, metric, scrape};
use crate::plot::{self, Series};
use crate::{Paths, percentile};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadResult {
    pub target_rps: f64,
    pub sent: usize,
    pub achieved_rps: f64,
    pub ok: usize,
    pub refused_503: usize,
    pub errors: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max_queue: f64,
    pub mean_busy: f64,
    /// Host CPU cores used on average during the run.
    pub cpu_cores: f64,
}

/// Sends `count` requests (at most for `max_time`) with exponential gaps at `rps` to `url`.
pub fn open_loop(
    host: &HostProc,
    audio: &[u8],
    rps: f64,
    count: usize,
    max_time: Duration,
    seed: u64,
) -> LoadResult {
    let url = format!("{}/transcribe", host.base);
    let mut rng = fastrand::Rng::with_seed(seed);
    let (tx, rx) = mpsc::channel::<(u16, f64)>();
    let t0 = Instant::now();
    let cpu0 = host.cpu_seconds();
    let mut next = 0.0f64;
    let mut sent = 0;
    let (mut max_queue, mut busy_sum, mut samples) = (0.0f64, 0.0, 0usize);
    let mut last_scrape = Instant::now() - Duration::from_secs(1);
    let audio = std::sync::Arc::new(audio.to_vec());
    while sent < count && t0.elapsed() < max_time {
        let now = t0.elapsed().as_secs_f64();
        if now >= next {
            let (tx, url, audio) = (tx.clone(), url.clone(), audio.clone());
            std::thread::spawn(move || {
                let s = Instant::now();
                let agent: ureq::Agent =
                    ureq::Agent::config_builder().http_status_as_error(false).build().into();
                let status = agent
                    .post(&url)
                    .header("content-type", "application/octet-stream")
                    .send(&audio[..])
                    .map(|mut r| {
                        let _ = r.body_mut().read_to_vec();
                        r.status().as_u16()
                    })
                    .unwrap_or(0);
                let _ = tx.send((status, s.elapsed().as_secs_f64()));
            });
            sent += 1;
            next += -(1.0 - rng.f64()).ln() / rps;
        }
        if last_scrape.elapsed() >= Duration::from_millis(500) {
            let m = scrape(host.admin());
            max_queue = max_queue.max(metric(&m, "stt_queue_depth").unwrap_or(0.0));
            busy_sum += metric(&m, "stt_instances_busy").unwrap_or(0.0);
            samples += 1;
            last_scrape = Instant::now();
        }
        std::thread::sleep(
            Duration::from_millis(2).min(Duration::from_secs_f64((next - now).max(0.0))),
        );
    }
    drop(tx);
    let send_time = t0.elapsed().as_secs_f64();
    let results: Vec<(u16, f64)> = rx.iter().collect();
    let wall = t0.elapsed().as_secs_f64();
    let ok: Vec<f64> = results.iter().filter(|r| r.0 == 200).map(|r| r.1).collect();
    LoadResult {
        target_rps: rps,
        sent,
        achieved_rps: ok.len() as f64 / wall,
        ok: ok.len(),
        refused_503: results.iter().filter(|r| r.0 == 503).count(),
        errors: results.iter().filter(|r| r.0 != 200 && r.0 != 503).count(),
        p50: percentile(&ok, 0.50),
        p95: percentile(&ok, 0.95),
        p99: percentile(&ok, 0.99),
        max_queue,
        mean_busy: busy_sum / samples.max(1) as f64,
        cpu_cores: (host.cpu_seconds() - cpu0) / wall.max(send_time),
    }
}

#[derive(clap::Args, Clone)]
pub struct Args {
    #[command(flatten)]
    paths: Paths,
    /// Rates to try, requests per second (a sweep when several).
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,0.75,1.0,1.25,1.5")]
    rps: Vec<f64>,
    /// Requests per rate.
    #[arg(long, default_value_t = 24)]
    requests: usize,
    /// Longest time spent sending at one rate, s.
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
    /// The audio each request sends (default: dev/ldc93s1.wav, 2.9 s).
    #[arg(long)]
    audio: Option<PathBuf>,
    /// Instance slots of the host under test (default: its own default).
    #[arg(long)]
    slots: Option<u32>,
    #[arg(long, default_value = "spin.toml")]
    manifest: PathBuf,
    #[arg(long)]
    host: Option<PathBuf>,
    #[arg(long, default_value = "docs/benchmarks/load_test_report.md")]
    out: PathBuf,
    /// One low rate, few requests (for `make test`).
    #[arg(long)]
    quick: bool,
}

/// Where a rising curve crosses `y`, by linear interpolation.
pub fn crossing(points: &[(f64, f64)], y: f64) -> Option<f64> {
    points.windows(2).find(|w| w[0].1 <= y && w[1].1 > y).map(|w| {
        let (x0, y0, x1, y1) = (w[0].0, w[0].1, w[1].0, w[1].1);
        x0 + (x1 - x0) * (y - y0) / (y1 - y0)
    })
}

pub fn run(a: &Args) -> anyhow::Result<()> {
    let audio_path = a.audio.clone().unwrap_or_else(|| a.paths.data.join("dev/ldc93s1.wav"));
    let audio = std::fs::read(&audio_path).with_context(|| audio_path.display().to_string())?;
    let seconds = stt_engine::audio::load(audio.clone(), Default::default())?.duration_s();
    let mut args = vec!["--queue-depth".to_string(), "64".into()];
    if let Some(s) = a.slots {
        args.extend(["--slots".into(), s.to_string()]);
    }
    let host = host_proc::start(
        &crate::sibling_binary(a.host.as_deref(), "stt-host")?,
        &a.manifest,
        &args,
        None,
        &[],
    )?;
    ensure!(host.base.starts_with("http://127.0.0.1:"), "load tests only target 127.0.0.1");
    let slots = metric(&scrape(host.admin()), "stt_instance_slots").unwrap_or(1.0);
    let (rates, requests) = if a.quick { (vec![a.rps[0]], 4) } else { (a.rps.clone(), a.requests) };
    let bar = indicatif::ProgressBar::new(rates.len() as u64);
    let mut results = vec![];
    for (i, &rps) in rates.iter().enumerate() {
        bar.set_message(format!("{rps} RPS"));
        results.push(open_loop(
            &host,
            &audio,
            rps,
            requests,
            Duration::from_secs(a.max_seconds),
            i as u64 + 1,
        ));
        bar.inc(1);
    }
    bar.finish();
    let report = render(&results, &audio_path, seconds, slots, a);
    write_report(&a.out, &report)?;
    let json = a.out.with_extension("json");
    std::fs::write(&json, serde_json::to_string_pretty(&results)?)?;
    print!("{report}");
    Ok(())
}

fn render(results: &[LoadResult], audio: &Path, seconds: f64, slots: f64, a: &Args) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Load test\n");
    let _ = writeln!(
        s,
        "Generated by `stt-bench load`: open-loop Poisson arrivals against `stt-host` ({slots} slots, queue 64) on 127.0.0.1, each request `POST /transcribe` of `{}` ({seconds:.1} s of audio), {} requests per rate. Latencies of successful requests; CPU = host process CPU ÷ wall time, in cores; busy = mean `stt_instances_busy`.\n",
        audio.file_name().map(|f| f.to_string_lossy()).unwrap_or_default(),
        if a.quick { 4 } else { a.requests }
    );
    let _ = writeln!(
        s,
        "| target RPS | achieved RPS | ok | 503 | errors | p50 s | p95 s | p99 s | max queue | busy | CPU cores |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        let _ = writeln!(
            s,
            "| {:.2} | {:.3} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} |",
            r.target_rps,
            r.achieved_rps,
            r.ok,
            r.refused_503,
            r.errors,
            r.p50,
            r.p95,
            r.p99,
            r.max_queue,
            r.mean_busy,
            r.cpu_cores
        );
    }
    let p95: Vec<(f64, f64)> = results.iter().map(|r| (r.target_rps, r.p95)).collect();
    for threshold in [2.0, 5.0] {
        let at = match crossing(&p95, threshold) {
            Some(x) => format!("at ≈ {x:.2} RPS"),
            None if p95.first().is_some_and(|p| p.1 > threshold) => {
                "already at the lowest rate".into()
            }
            None => "not within the rates tried".into(),
        };
        let _ = writeln!(s, "\np95 latency crosses {threshold} s {at}.");
    }
    let svg = a.out.with_file_name("load_test_latency.svg");
    let series = [
        Series {
            name: "p50".into(),
            points: results.iter().map(|r| (r.target_rps, r.p50)).collect(),
        },
        Series { name: "p95".into(), points: p95.clone() },
        Series {
            name: "p99".into(),
            points: results.iter().map(|r| (r.target_rps, r.p99)).collect(),
        },
    ];
    if plot::lines(&svg, "latency vs offered load", "offered RPS", "seconds", &series).is_ok() {
        let _ = writeln!(s, "\n![latency vs offered load](load_test_latency.svg)");
    }
    s
}

pub fn write_report(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(path, text).with_context(|| path.display().to_string())
}
