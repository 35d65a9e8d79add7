//! `stt-bench audio`: latency and RTF for clips of 5 s to 10 min built from the dev set: the
//! function in WASM through `stt-host` (one slot), the native engine, and faster-whisper on the
//! same tiny.en weights, in the same run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::Paths;
use crate::engine_rtf::{Timings, faster_whisper, median};
use crate::host_proc;
use crate::load::write_report;
use crate::plot::{self, Series};

#[derive(clap::Args, Clone)]
pub struct Args {
    #[command(flatten)]
    paths: Paths,
    /// Clip lengths, seconds.
    #[arg(long, value_delimiter = ',', default_value = "5,30,60,300,600")]
    seconds: Vec<f64>,
    /// Models (folders under the models directory); the first gets every clip length.
    #[arg(long = "model-list", value_delimiter = ',', default_value = "tiny.en,base")]
    model_list: Vec<String>,
    /// Clip lengths for the models after the first (larger models take longer).
    #[arg(long, value_delimiter = ',', default_value = "5,30,60")]
    other_model_seconds: Vec<f64>,
    /// Skip faster-whisper (when it is not installed).
    #[arg(long)]
    no_faster_whisper: bool,
    #[arg(long, default_value = "python3")]
    python: String,
    #[arg(long, default_value = "spin.toml")]
    manifest: PathBuf,
    #[arg(long)]
    host: Option<PathBuf>,
    /// The native `stt` binary (default: beside this one).
    #[arg(long)]
    stt: Option<PathBuf>,
    #[arg(long, default_value = "docs/benchmarks/audio_benchmark_report.md")]
    out: PathBuf,
    /// The 5 s clip only, without faster-whisper (for `make test`).
    #[arg(long)]
    quick: bool,
}

pub fn run(a: &Args) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join("stt-bench-clips");
    let name =
        |p: &PathBuf| p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let mut t = Timings::new();
    anyhow::ensure!(!a.model_list.is_empty(), "--model-list is empty");
    let models: Vec<String> =
        a.model_list.iter().take(if a.quick { 1 } else { usize::MAX }).cloned().collect();
    let mut first_clips = vec![];
    let mut durations: BTreeMap<String, f64> = BTreeMap::new();
    for (i, model) in models.iter().enumerate() {
        let seconds = match (a.quick, i) {
            (true, _) => vec![5.0],
            (false, 0) => a.seconds.clone(),
            (false, _) => a.other_model_seconds.clone(),
        };
        let mut clips = vec![];
        for &s in &seconds {
            let c = crate::clips::joined_clip(&a.paths.data, s, &dir)?;
            durations.insert(name(&c), s);
            clips.push(c);
        }
        measure_model(a, model, &clips, &mut t)?;
        if i == 0 {
            first_clips = clips;
        }
    }
    if !(a.quick || a.no_faster_whisper) {
        let fw = format!("faster-whisper ({})", models[0]);
        faster_whisper(&a.python, &a.paths.wheels, &first_clips, 1, &fw, &mut t)?;
    }
    let report = render(&t, &durations, a);
    write_report(&a.out, &report)?;
    print!("{report}");
    Ok(())
}

/// The function via a one-slot host, and the native engine, on one model.
fn measure_model(a: &Args, model: &str, clips: &[PathBuf], t: &mut Timings) -> anyhow::Result<()> {
    let name =
        |p: &PathBuf| p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let bar = indicatif::ProgressBar::new(clips.len() as u64 * 2);
    bar.set_message(model.to_string());
    let host = host_proc::start(
        &crate::sibling_binary(a.host.as_deref(), "stt-host")?,
        &a.manifest,
        &["--slots".into(), "1".into(), "--cpu-budget-per-audio-second".into(), "4".into()],
        None,
        // The model served by default (each is preloaded in the snapshot); every clip whole, in
        // one instance, as faster-whisper decodes it (`stt-bench long` measures chunking).
        &[("SPIN_VARIABLE_MODELS", model), ("SPIN_VARIABLE_CHUNK_ABOVE_SECONDS", "100000")],
    )?;
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();
    for clip in clips {
        let body = std::fs::read(clip)?;
        let t0 = Instant::now();
        let r = agent
            .post(format!("{}/transcribe", host.base))
            .header("content-type", "audio/wav")
            .send(&body[..])?;
        if r.status() != 200 {
            bail!("{}: HTTP {}", clip.display(), r.status());
        }
        t.entry((format!("wasm function via stt-host ({model} int8)"), name(clip)))
            .or_default()
            .push(t0.elapsed().as_secs_f64());
        bar.inc(1);
    }
    drop(host);
    // The native engine, model load included as for the function.
    let stt = crate::sibling_binary(a.stt.as_deref(), "stt")?;
    for clip in clips {
        let out = Command::new(&stt)
            .env("RAYON_NUM_THREADS", "1")
            .args(["transcribe", "--timings", "--model"])
            .arg(a.paths.models.join(model))
            .arg(clip)
            .output()
            .with_context(|| stt.display().to_string())?;
        if !out.status.success() {
            bail!("native stt failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        // `--timings` prints the model load on its own line, then one line per file.
        let mut load = 0.0;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line)?;
            if let Some(l) = v["load_s"].as_f64() {
                load = l;
            }
            if let Some(x) = v["transcribe_s"].as_f64() {
                t.entry((format!("native engine ({model} int8)"), name(clip)))
                    .or_default()
                    .push(load + x);
            }
        }
        bar.inc(1);
    }
    bar.finish();
    Ok(())
}

fn render(t: &Timings, durations: &BTreeMap<String, f64>, a: &Args) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Audio benchmark\n");
    let _ = writeln!(
        s,
        "Generated by `stt-bench audio`: tiny.en and base on clips built from the dev set (the long-form clips joined, repeated past 83 s), one thread / one instance each, in one run. *wasm function via stt-host*: `POST /transcribe` to a one-slot host, the time a client waits; both models are served from the snapshot (in the instance's initial memory), the one measured as the default. *native engine*: the same engine as a native command, model load + transcription. *faster-whisper*: 1.2.1 on the same CTranslate2 tiny.en weights, `cpu_threads=1`, transcription only (base's package splits model.bin in two parts; faster-whisper is run on tiny.en only). Our engine computes with its int8 kernels (the default precision). Ratio = time ÷ faster-whisper tiny.en int8 on the same clip.\n"
    );
    let _ = writeln!(s, "| clip | implementation | latency s | RTF | × faster-whisper int8 |");
    let _ = writeln!(s, "|---|---|---:|---:|---:|");
    let mut by_impl: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut order: Vec<(&String, &f64)> = durations.iter().collect();
    order.sort_by(|x, y| x.1.total_cmp(y.1));
    for (clip, dur) in order {
        let base = t
            .iter()
            .find(|((label, c), _)| {
                c == clip && label.starts_with("faster-whisper") && label.ends_with(" int8")
            })
            .map(|(_, v)| median(v));
        for ((label, c), v) in t {
            if c != clip {
                continue;
            }
            let m = median(v);
            let ratio = base.map(|b| format!("{:.2}", m / b)).unwrap_or_else(|| "–".into());
            let _ = writeln!(s, "| {dur:.0} s | {label} | {m:.2} | {:.3} | {ratio} |", m / dur);
            by_impl.entry(label.clone()).or_default().push((*dur, m / dur));
        }
    }
    let svg = a.out.with_file_name("audio_benchmark_rtf.svg");
    let series: Vec<Series> =
        by_impl.into_iter().map(|(name, points)| Series { name, points }).collect();
    if plot::lines(&svg, "RTF by clip length (lower is faster)", "audio seconds", "RTF", &series)
        .is_ok()
    {
        let _ = writeln!(s, "\n![RTF by clip length](audio_benchmark_rtf.svg)");
    }
    s
}
