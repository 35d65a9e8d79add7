//! `stt-bench beam`: beam search against greedy and against faster-whisper, in one run.
//!
//! - Accuracy: dev-set WER of tiny.en and base (int8, the served precision; native engine in
//!   this process), greedy and beam N, with the time each decoding took over the set.
//! - Latency: tiny.en on jfk.flac and a 60 s clip, our engine in wasm as served (epoch checks
//!   on, one instance) against faster-whisper 1.2.1 (`cpu_threads=1`, int8 and float32), greedy
//!   and beam N on both sides.
//! - Fallback: a clip that sends every window through all six temperatures (German speech on
//!   the English-only tiny.en), native int8, against the `stt` built before the audio context
//!   was shared (`--before`), when given.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use stt_engine::{AudioLimits, Engine, Precision, TranscribeOptions};
use stt_testkit::wasi_command::{self as command, Preopen};

use crate::Paths;
use crate::engine_rtf::{Timings, faster_whisper, median, transcribe_lines, write_section};

#[derive(clap::Args, Clone)]
pub struct Args {
    #[command(flatten)]
    paths: Paths,
    /// Beams compared with greedy.
    #[arg(long, default_value_t = 5)]
    beams: usize,
    /// Runs of each latency measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// The `stt` command built for wasm32-wasip2.
    #[arg(long, env = "STT_CLI_WASM")]
    wasm: PathBuf,
    /// The native `stt` binary (default: beside this one).
    #[arg(long)]
    stt: Option<PathBuf>,
    /// A native `stt` built before the seams, for the fallback row's "before".
    #[arg(long)]
    before: Option<PathBuf>,
    /// The clip that triggers fallback (relative to the data folder).
    #[arg(long, default_value = "multi/fleurs_de_001.ogg")]
    fallback_clip: PathBuf,
    #[arg(long, default_value = "python3")]
    python: String,
    #[arg(long, default_value = "docs/PERFORMANCE_REPORT.md")]
    out: PathBuf,
}

struct Accuracy {
    model: String,
    precision: Precision,
    beams: usize,
    errors: usize,
    words: usize,
    seconds: f64,
}

fn dev_set(engine: &Engine, data: &Path, beams: usize) -> anyhow::Result<Accuracy> {
    let o = TranscribeOptions { beam_size: beams, ..Default::default() };
    let mut pairs = Vec::new();
    let started = Instant::now();
    for row in stt_testkit::paths::data_manifest("dev") {
        let path = data.join("dev").join(&row["file"]);
        let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
        let t = engine.transcribe_bytes(bytes, AudioLimits::default(), &o)?;
        pairs.push((row["reference"].clone(), t.text));
    }
    let seconds = started.elapsed().as_secs_f64();
    let (errors, words) =
        stt_testkit::wer::corpus_wer(pairs.iter().map(|(r, h)| (r.as_str(), h.as_str())));
    Ok(Accuracy {
        model: engine.name.clone(),
        precision: engine.model.precision,
        beams,
        errors,
        words,
        seconds,
    })
}

fn label(what: &str, beams: usize) -> String {
    match beams {
        1 => format!("{what}, greedy"),
        n => format!("{what}, beam {n}"),
    }
}

fn native(
    stt: &Path,
    model: &Path,
    clip: &Path,
    label: &str,
    t: &mut Timings,
) -> anyhow::Result<()> {
    let out = Command::new(stt)
        .env("RAYON_NUM_THREADS", "1")
        .args(["transcribe", "--timings", "--model"])
        .arg(model)
        .arg(clip)
        .output()
        .with_context(|| stt.display().to_string())?;
    if !out.status.success() {
        bail!("{} failed: {}", stt.display(), String::from_utf8_lossy(&out.stderr));
    }
    transcribe_lines(&String::from_utf8_lossy(&out.stdout), label, t)
}

pub fn run(a: &Args) -> anyhow::Result<()> {
    // Accuracy and the dev set's decoding time, both models, greedy and beam.
    let mut accuracy = Vec::new();
    for model in ["tiny.en", "base"] {
        for precision in [Precision::Int8, Precision::F32] {
            let engine = Engine::load_dir_with(&a.paths.models.join(model), precision)?;
            for beams in [1, a.beams] {
                eprintln!("dev set: {model} {precision}, {beams} beam(s)");
                accuracy.push(dev_set(&engine, &a.paths.data, beams)?);
            }
        }
    }

    // Latency, tiny.en, wasm as served against faster-whisper.
    let (clips_dir, clips) = crate::clips::jfk_and_60s(&a.paths.data)?;
    let served = wasmtime::Engine::new(wasmtime::Config::new().epoch_interruption(true))?;
    let cache = a.wasm.with_file_name("cwasm-cache");
    let component = stt_host::component_cache::load(&served, &a.wasm, &cache)?;
    let preopens = [
        Preopen { host: a.paths.models.clone(), guest: "/models".into() },
        Preopen { host: clips_dir.clone(), guest: "/clips".into() },
    ];
    let stt = crate::sibling_binary(a.stt.as_deref(), "stt")?;
    let fallback_clip = a.paths.data.join(&a.fallback_clip);
    let tiny = a.paths.models.join("tiny.en");
    let mut t = Timings::new();
    for rep in 0..a.reps {
        eprintln!("latency round {}/{}", rep + 1, a.reps);
        for beams in [1, a.beams] {
            let mut args: Vec<String> =
                ["stt", "transcribe", "--timings", "--model", "/models/tiny.en", "--beam-size"]
                    .map(String::from)
                    .to_vec();
            args.push(beams.to_string());
            args.extend(["/clips/jfk.flac".to_string(), "/clips/dev_joined_60s.wav".to_string()]);
            let out = command::run(&served, &component, &args, &preopens)?;
            if out.exit_code != 0 {
                bail!("wasm stt failed: {}", out.stderr);
            }
            transcribe_lines(&out.stdout, &label("wasm int8", beams), &mut t)?;
            let label = label("faster-whisper", beams);
            faster_whisper(&a.python, &a.paths.wheels, &clips, beams, &label, &mut t)?;
        }
        native(&stt, &tiny, &fallback_clip, "native int8, context once per window", &mut t)?;
        if let Some(before) = &a.before {
            native(
                before,
                &tiny,
                &fallback_clip,
                "native int8, before (context per decode)",
                &mut t,
            )?;
        }
    }
    let report = render(a, &accuracy, &t);
    print!("{report}");
    write_section(&a.out, "beam", &report)
}

/// "greedy" or "beam N" of a label ("wasm int8, beam 5", "faster-whisper, beam 5 int8").
fn decoding_of(label: &str) -> Option<String> {
    let d = label.split(", ").nth(1)?;
    if d.starts_with("greedy") {
        return Some("greedy".into());
    }
    let mut words = d.split(' ');
    match (words.next(), words.next()) {
        (Some("beam"), Some(n)) => Some(format!("beam {n}")),
        _ => None,
    }
}

fn render(a: &Args, accuracy: &[Accuracy], t: &Timings) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "`stt-bench beam`, one run. **Accuracy**: the dev set (20 clips, 343 words), native engine, \
         WER after our normaliser; seconds = the whole set's transcription time. \
         **Latency**: median of {} runs, tiny.en, transcription only, one thread each: our engine in \
         wasm as served (int8, epoch checks on, one instance) against faster-whisper 1.2.1 \
         (`cpu_threads=1`) on the same weights; ratio = time ÷ faster-whisper int8 with the same \
         decoding. Beam search: the reference's semantics (patience 1, no length penalty), \
         temperature fallback as usual.\n",
        a.reps
    );
    let _ = writeln!(
        s,
        "| model | precision | decoding | dev WER | errors / words | dev set s | × greedy time |"
    );
    let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|");
    for r in accuracy {
        let greedy = accuracy
            .iter()
            .find(|g| g.model == r.model && g.precision == r.precision && g.beams == 1);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} % | {}/{} | {:.1} | {:.2} |",
            r.model,
            r.precision,
            if r.beams == 1 { "greedy".to_string() } else { format!("beam {}", r.beams) },
            100.0 * r.errors as f64 / r.words.max(1) as f64,
            r.errors,
            r.words,
            r.seconds,
            greedy.map_or(f64::NAN, |g| r.seconds / g.seconds),
        );
    }
    let _ = writeln!(s);
    let _ =
        writeln!(s, "| clip | implementation | seconds | × faster-whisper int8, same decoding |");
    let _ = writeln!(s, "|---|---|---:|---:|");
    let clips: std::collections::BTreeSet<&str> = t.keys().map(|(_, c)| c.as_str()).collect();
    for clip in clips {
        for ((name, c), v) in t {
            if c != clip {
                continue;
            }
            let ours = decoding_of(name);
            let base = t
                .iter()
                .find(|((n, c2), _)| {
                    c2 == c
                        && n.starts_with("faster-whisper")
                        && n.ends_with(" int8")
                        && ours.is_some()
                        && decoding_of(n) == ours
                })
                .map(|(_, b)| median(b));
            let ratio = base.map(|b| format!("{:.2}", median(v) / b)).unwrap_or_default();
            let _ = writeln!(s, "| {clip} | {name} | {:.3} | {ratio} |", median(v));
        }
    }
    s
}
