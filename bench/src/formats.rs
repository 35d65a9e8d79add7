//! `stt-bench formats`: what each upload format costs as served. One recording (the dev set's
//! long-form clips joined) encoded by ffmpeg as clients send it, posted to a one-slot
//! `stt-host`: the time a client waits, the instance's CPU (`x-stt-cpu-ms`), both against the
//! same recording as 16-bit WAV, and the words that differ from the WAV's transcript; beside
//! them the engine's decode alone, natively (`audio::load`).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::engine_rtf::median;
use crate::load::write_report;
use crate::{Paths, host_proc};

#[derive(clap::Args, Clone)]
pub struct Args {
    #[command(flatten)]
    paths: Paths,
    /// Length of the recording, seconds.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Requests per format; the median is reported.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    #[arg(long, default_value = "spin.toml")]
    manifest: PathBuf,
    #[arg(long)]
    host: Option<PathBuf>,
    #[arg(long, default_value = "docs/benchmarks/formats_report.md")]
    out: PathBuf,
}

/// An upload format: what the report calls it, its file name, ffmpeg's output options and the
/// content type a client sends.
struct Format {
    label: &'static str,
    file: &'static str,
    ffmpeg: &'static [&'static str],
    content_type: &'static str,
}

const FORMATS: &[Format] = &[
    Format { label: "WAV, 16 kHz 16-bit mono", file: "", ffmpeg: &[], content_type: "audio/wav" },
    Format { label: "FLAC", file: "f.flac", ffmpeg: &["-c:a", "flac"], content_type: "audio/flac" },
    Format {
        label: "MP3, 64 kb/s",
        file: "f.mp3",
        ffmpeg: &["-c:a", "libmp3lame", "-b:a", "64k"],
        content_type: "audio/mpeg",
    },
    Format {
        label: "Ogg Vorbis",
        file: "f.ogg",
        ffmpeg: &["-c:a", "libvorbis", "-q:a", "3"],
        content_type: "audio/ogg",
    },
    Format {
        label: "Ogg Opus, 24 kb/s (voice)",
        file: "f.opus",
        ffmpeg: &["-c:a", "libopus", "-b:a", "24k", "-application", "voip"],
        content_type: "audio/ogg",
    },
    Format {
        label: "WebM Opus, 48 kHz stereo 64 kb/s (a browser's MediaRecorder)",
        file: "f.webm",
        ffmpeg: &["-ar", "48000", "-ac", "2", "-c:a", "libopus", "-b:a", "64k"],
        content_type: "audio/webm",
    },
    Format {
        label: "M4A AAC, 64 kb/s",
        file: "f.m4a",
        ffmpeg: &["-c:a", "aac", "-b:a", "64k"],
        content_type: "audio/mp4",
    },
];

struct Row {
    label: &'static str,
    bytes: usize,
    decode_s: f64,
    latency_s: f64,
    cpu_s: f64,
    windows: usize,
    differing_words: usize,
}

/// The transcript's text and how many 30 s windows the model decoded (distinct `seek`s).
fn text_and_windows(verbose: &str) -> anyhow::Result<(String, usize)> {
    let v: serde_json::Value = serde_json::from_str(verbose)?;
    let text = v["text"].as_str().context("text")?.to_string();
    let mut seeks: Vec<u64> = v["segments"]
        .as_array()
        .context("segments")?
        .iter()
        .filter_map(|s| s["seek"].as_u64())
        .collect();
    seeks.dedup();
    Ok((text, seeks.len()))
}

pub fn run(a: &Args) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join("stt-bench-clips");
    let wav = crate::clips::joined_clip(&a.paths.data, a.seconds, &dir)?;
    let files: Vec<PathBuf> = FORMATS
        .iter()
        .map(|f| match f.file {
            "" => wav.clone(),
            name => stt_testkit::media::reencode(&wav, name, f.ffmpeg),
        })
        .collect();
    let host = host_proc::start(
        &crate::sibling_binary(a.host.as_deref(), "stt-host")?,
        &a.manifest,
        &["--slots".into(), "1".into()],
        None,
        // tiny.en from the snapshot, the whole recording in one instance.
        &[("SPIN_VARIABLE_MODELS", "tiny.en"), ("SPIN_VARIABLE_CHUNK_ABOVE_SECONDS", "100000")],
    )?;
    let agent = stt_testkit::http::agent();
    let mut rows = vec![];
    let mut wav_text = String::new();
    for (f, path) in FORMATS.iter().zip(&files) {
        let body = std::fs::read(path).with_context(|| path.display().to_string())?;
        let mut decode = vec![];
        for _ in 0..a.reps {
            let t0 = Instant::now();
            stt_engine::audio::load(body.clone(), stt_engine::AudioLimits::default())
                .with_context(|| format!("{}: native decode", f.label))?;
            decode.push(t0.elapsed().as_secs_f64());
        }
        let (mut latency, mut cpu, mut text) = (vec![], vec![], String::new());
        for _ in 0..a.reps {
            let t0 = Instant::now();
            let mut r = agent
                .post(format!("{}/transcribe?response_format=verbose_json", host.base))
                .header("content-type", f.content_type)
                .send(&body[..])?;
            latency.push(t0.elapsed().as_secs_f64());
            let ms = r.headers().get("x-stt-cpu-ms").and_then(|v| v.to_str().ok()?.parse().ok());
            cpu.push(ms.map_or(f64::NAN, |ms: f64| ms / 1e3));
            text = r.body_mut().read_to_string()?;
            if r.status() != 200 {
                bail!("{}: HTTP {}: {text}", f.label, r.status());
            }
        }
        let (text, windows) = text_and_windows(&text)?;
        if f.file.is_empty() {
            wav_text = text.clone();
        }
        let (differing_words, _) =
            stt_testkit::wer::corpus_wer([(wav_text.as_str(), text.as_str())]);
        rows.push(Row {
            label: f.label,
            bytes: body.len(),
            decode_s: median(&decode),
            latency_s: median(&latency),
            cpu_s: median(&cpu),
            windows,
            differing_words,
        });
        eprintln!("{}: {:.2} s", f.label, median(&latency));
    }
    let report = render(a, &rows);
    write_report(&a.out, &report)?;
    print!("{report}");
    Ok(())
}

fn render(a: &Args, rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Upload formats\n");
    let _ = writeln!(
        s,
        "Generated by `stt-bench formats`: {:.0} s of the dev set's long-form clips joined, encoded by ffmpeg (imageio-ffmpeg) as clients send them, each `POST /transcribe` to a one-slot `stt-host` serving tiny.en from the snapshot, {} times (medians). *decode, native*: the engine's `audio::load` alone (container, codec, resampling to 16 kHz mono) in this process. *latency*: the time a client waits; *instance CPU*: `x-stt-cpu-ms`; both also as × the WAV upload. *windows*: the 30 s windows the model decoded (where a window ends is the model's choice, so a lossy codec can add one: that, not the decode, is most of a latency difference); *words differing*: edit distance of the transcript from the WAV upload's, after the English normaliser.\n",
        a.seconds, a.reps
    );
    let _ = writeln!(
        s,
        "| format | size KB | decode, native s | latency s | × WAV | instance CPU s | × WAV | windows | words differing |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let (wl, wc) = rows.first().map_or((f64::NAN, f64::NAN), |r| (r.latency_s, r.cpu_s));
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {:.3} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
            r.label,
            r.bytes / 1024,
            r.decode_s,
            r.latency_s,
            r.latency_s / wl,
            r.cpu_s,
            r.cpu_s / wc,
            r.windows,
            r.differing_words
        );
    }
    s
}
