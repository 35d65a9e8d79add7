//! `stt-bench instances`: what a pre-initialised component buys, side by side in one run.
//! `stt-host` serves the component as built (the model read per request) and the snapshot
//! (`build/stt_function.wasm`, every served model in its initial memory), for each model; then
//! real `spin up` serves the same snapshot. Per-request start with the model ready
//! (`GET /v1/models` with that model served, answered from its loaded weights) and the memory
//! each additional busy instance costs (process RSS / PSS with 1 and then 2 requests
//! transcribing at once with that model).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use stt_testkit::manifest::{self, Component};
use stt_testkit::server::{Launch, process_memory};

use crate::host_proc::{self, HostProc, metric, scrape};
use crate::load::write_report;
use crate::{Paths, percentile};

#[derive(clap::Args, Clone)]
pub struct Args {
    #[command(flatten)]
    paths: Paths,
    /// The function as built, without the snapshot (reads the model per request).
    #[arg(long, env = "STT_FUNCTION_RAW_WASM")]
    raw: PathBuf,
    /// The pre-initialised function.
    #[arg(long, default_value = "build/stt_function.wasm")]
    snapshot: PathBuf,
    /// `GET /v1/models` requests per component.
    #[arg(long, default_value_t = 50)]
    requests: usize,
    #[arg(long)]
    host: Option<PathBuf>,
    #[arg(long, default_value = "docs/benchmarks/instances_report.md")]
    out: PathBuf,
    /// Few requests and jfk.flac as the busy load (for `make test`).
    #[arg(long)]
    quick: bool,
}

struct Start {
    p50_ms: f64,
    p95_ms: f64,
    /// The host's own mean instantiation time (`stt-host` only).
    instantiate_ms: Option<f64>,
    weights: String,
}

fn measure_start(host: &HostProc, requests: usize) -> anyhow::Result<Start> {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let get = || -> anyhow::Result<(f64, String)> {
        let t0 = Instant::now();
        let mut r = agent.get(format!("{}/v1/models", host.base)).call()?;
        let body = r.body_mut().read_to_string()?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        if r.status() != 200 {
            bail!("GET /v1/models: HTTP {}: {body}", r.status());
        }
        Ok((ms, body))
    };
    get()?;
    let before = host.admin.as_deref().map(scrape);
    let mut times = Vec::with_capacity(requests);
    let mut weights = String::new();
    for _ in 0..requests {
        let (ms, body) = get()?;
        times.push(ms);
        let v: serde_json::Value = serde_json::from_str(&body)?;
        weights = v["data"][0]["weights"].as_str().unwrap_or("?").to_string();
    }
    let instantiate_ms = match (before, host.admin.as_deref().map(scrape)) {
        (Some(before), Some(after)) => {
            let delta =
                |s: &str| metric(&after, s).unwrap_or(0.0) - metric(&before, s).unwrap_or(0.0);
            Some(
                delta("stt_instance_startup_seconds_sum")
                    / delta("stt_instance_startup_seconds_count").max(1.0)
                    * 1e3,
            )
        }
        _ => None,
    };
    Ok(Start {
        p50_ms: percentile(&times, 0.5),
        p95_ms: percentile(&times, 0.95),
        instantiate_ms,
        weights,
    })
}

/// Peak (RSS, PSS) while `busy` concurrent requests transcribe `audio` with `model`.
fn peak_while_busy(
    host: &HostProc,
    audio: &Arc<Vec<u8>>,
    busy: usize,
    model: &str,
) -> anyhow::Result<(f64, f64)> {
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..busy)
        .map(|_| {
            let (base, audio, model) = (host.base.clone(), audio.clone(), model.to_string());
            std::thread::spawn(move || -> anyhow::Result<u16> {
                let agent: ureq::Agent =
                    ureq::Agent::config_builder().http_status_as_error(false).build().into();
                let r = agent
                    .post(format!("{base}/transcribe?model={model}"))
                    .header("content-type", "audio/wav")
                    .send(&audio[..])?;
                Ok(r.status().as_u16())
            })
        })
        .collect();
    let sampler = {
        let (done, pid) = (done.clone(), host.pid());
        std::thread::spawn(move || {
            let mut peak = (0f64, 0f64);
            while !done.load(Ordering::Relaxed) {
                let (rss, pss) = process_memory(pid);
                peak = (peak.0.max(rss), peak.1.max(pss));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    for w in workers {
        let status = w.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
        if status != 200 {
            bail!("transcription while measuring memory: HTTP {status}");
        }
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().map_err(|_| anyhow::anyhow!("sampler panicked"))
}

struct Memory {
    idle: (f64, f64),
    one: (f64, f64),
    two: (f64, f64),
}

pub fn run(a: &Args) -> anyhow::Result<()> {
    let binary = crate::sibling_binary(a.host.as_deref(), "stt-host")?;
    let clips_dir = std::env::temp_dir().join("stt-bench-clips");
    std::fs::create_dir_all(&clips_dir)?;
    let (audio_path, audio_label) = if a.quick {
        (a.paths.data.join("jfk.flac"), "jfk.flac (11 s)")
    } else {
        (crate::clips::joined_clip(&a.paths.data, 60.0, &clips_dir)?, "a 60 s clip")
    };
    let audio =
        Arc::new(std::fs::read(&audio_path).with_context(|| audio_path.display().to_string())?);
    let requests = if a.quick { 5 } else { a.requests };
    let mut rows = vec![];
    let runs = [
        ("stt-host", "as built: model read per request", &a.raw, "tiny.en"),
        ("stt-host", "snapshot: models in the initial memory", &a.snapshot, "tiny.en"),
        ("stt-host", "snapshot: models in the initial memory", &a.snapshot, "base"),
        ("spin up", "snapshot: models in the initial memory", &a.snapshot, "tiny.en"),
        ("spin up", "snapshot: models in the initial memory", &a.snapshot, "base"),
    ];
    for (host_name, label, source, model) in runs {
        eprintln!("{host_name}, {label}, {model}");
        // Only `model` is served, so that `GET /v1/models` answers from its weights alone (the
        // component as built reads every served model per request); the snapshot holds both
        // models whichever is served. The manifest's variables are literals, so the component's
        // own `models` is set (`SPIN_VARIABLE_MODELS` would not reach it).
        let function = Component::function(source, &a.paths.models).variable("models", model);
        let m = manifest::write("bench-instances", &[function]);
        let host = if host_name == "spin up" {
            Launch::spin(&m).start()?
        } else {
            host_proc::start(&binary, &m, &["--slots".into(), "2".into()], None, &[])?
        };
        let start = measure_start(&host, requests)?;
        std::thread::sleep(Duration::from_millis(300));
        let idle = host.memory();
        let one = peak_while_busy(&host, &audio, 1, model)?;
        let two = peak_while_busy(&host, &audio, 2, model)?;
        rows.push((host_name, label, model, start, Memory { idle, one, two }));
    }
    let mb = |b: f64| b / (1 << 20) as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Instances: start with the model ready, memory per busy instance\n\n\
         `stt-bench instances{}`, one run: `stt-host` (2 slots) serves tiny.en from the component as built, \
         which reads the model per request, then each model from the snapshot `make component` writes \
         (wasmtime-wizer; tiny.en and base both in the initial memory, the `models` variable naming the one \
         served); then real `spin up` (Spin 4, stock wasmtime settings) serves the same snapshot.\n\n\
         ## Per-request start\n\n\
         `GET /v1/models` answers from the loaded weights, so its latency is a fresh instance's time to \
         a ready model, over HTTP on 127.0.0.1; {requests} sequential requests each. *instantiate* is \
         `stt-host`'s own `stt_instance_startup_seconds` (mean); Spin exports no such metric.\n\n\
         | host | component | model | weights | p50 ms | p95 ms | instantiate ms |\n|---|---|---|---|---:|---:|---:|",
        if a.quick { " --quick" } else { "" }
    );
    for (host_name, label, model, st, _) in &rows {
        let inst = st.instantiate_ms.map_or("—".to_string(), |v| format!("{v:.3}"));
        let _ = writeln!(
            s,
            "| {host_name} | {label} | {model} | {} | {:.2} | {:.2} | {inst} |",
            st.weights, st.p50_ms, st.p95_ms
        );
    }
    if let [(_, _, _, naive, _), (_, _, _, snap, _), ..] = rows.as_slice() {
        let _ = writeln!(
            s,
            "\nSnapshot p50 under `stt-host` = {:.0}× faster than reading tiny.en per request.",
            naive.p50_ms / snap.p50_ms,
        );
    }
    let _ = writeln!(
        s,
        "\n## Memory per busy instance\n\n\
         Peak process memory (sampled every 20 ms from /proc/PID/smaps_rollup) while 1, then 2 requests \
         transcribe {audio_label} at once. RSS counts a page once per mapping, so shared weights mapped into \
         two instances count twice; PSS counts them once. *per extra busy* = peak with 2 busy − peak with 1. \
         *idle* is the host with no request in flight (for the snapshot rows: with both models in the component).\n\n\
         | host | component | model | idle RSS MiB | 1 busy RSS | 2 busy RSS | per extra busy (RSS) | idle PSS MiB | 1 busy PSS | 2 busy PSS | per extra busy (PSS) |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (host_name, label, model, _, m) in &rows {
        let _ = writeln!(
            s,
            "| {host_name} | {label} | {model} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
            mb(m.idle.0),
            mb(m.one.0),
            mb(m.two.0),
            mb(m.two.0 - m.one.0),
            mb(m.idle.1),
            mb(m.one.1),
            mb(m.two.1),
            mb(m.two.1 - m.one.1)
        );
    }
    print!("{s}");
    write_report(&a.out, &s)
}
