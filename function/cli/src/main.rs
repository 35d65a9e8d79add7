//! `stt`: the engine as a command, native or as a wasm32-wasip2 command component.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use stt_engine::format::{self, Granularities, ResponseFormat};
use stt_engine::{AudioLimits, Engine, Precision, Task, TranscribeOptions};

#[derive(Parser)]
#[command(name = "stt", about = "Whisper speech-to-text")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    VerboseJson,
    Text,
    Srt,
    Vtt,
}

impl From<Format> for ResponseFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Json => Self::Json,
            Format::VerboseJson => Self::VerboseJson,
            Format::Text => Self::Text,
            Format::Srt => Self::Srt,
            Format::Vtt => Self::Vtt,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// Transcribe (or translate) audio files.
    Transcribe {
        files: Vec<PathBuf>,
        /// Model folder made by `stt-models fetch`.
        #[arg(long, default_value_os_t = PathBuf::from(format!("models/{}", stt_contract::defaults::MODEL)))]
        model: PathBuf,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
        #[arg(long)]
        language: Option<String>,
        #[arg(long)]
        translate: bool,
        #[arg(long)]
        prompt: Option<String>,
        #[arg(long, default_value_t = 0.0)]
        temperature: f32,
        #[arg(long)]
        without_timestamps: bool,
        /// Word-level start and end times (in verbose JSON's `words`).
        #[arg(long)]
        word_timestamps: bool,
        /// Beams at temperature 0 (1: greedy).
        #[arg(long, default_value_t = stt_contract::defaults::BEAM_SIZE)]
        beam_size: usize,
        /// Beam search runs until round(beam_size × patience) hypotheses have finished.
        #[arg(long, default_value_t = 1.0)]
        patience: f32,
        /// Rank hypotheses by summed log-probability / ((5 + length) / 6)^α instead of / length.
        #[arg(long)]
        length_penalty: Option<f32>,
        #[arg(long, default_value_t = stt_contract::defaults::MAX_DURATION_SECONDS)]
        max_duration: f64,
        /// Add seconds spent loading the model and transcribing each file to the JSON output.
        #[arg(long)]
        timings: bool,
        /// int8 (default) or f32, the reference.
        #[arg(long, default_value = stt_contract::defaults::PRECISION)]
        precision: Precision,
    },
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// With `--timings`, one JSON line per file: its text, duration and seconds spent. Otherwise
/// each file's result as the API renders it in `--format`.
/// Exit code 0 when every file was transcribed, 1 when some file was rejected (its error is
/// printed as JSON on stdout, like a result), 2 when the command itself could not run.
fn run() -> anyhow::Result<ExitCode> {
    let Cmd::Transcribe {
        files,
        model,
        format,
        language,
        translate,
        prompt,
        temperature,
        without_timestamps,
        word_timestamps,
        beam_size,
        patience,
        length_penalty,
        max_duration,
        timings,
        precision,
    } = Cli::parse().cmd;
    let started = Instant::now();
    let engine = Engine::load_dir_with(&model, precision)
        .with_context(|| format!("loading {}", model.display()))?;
    if timings {
        println!("{}", serde_json::json!({ "load_s": started.elapsed().as_secs_f64() }));
    }
    let options = TranscribeOptions {
        task: if translate { Task::Translate } else { Task::Transcribe },
        language,
        initial_prompt: prompt,
        without_timestamps,
        word_timestamps,
        beam_size,
        patience,
        length_penalty,
        ..TranscribeOptions::default()
    }
    .with_temperature(temperature);
    let limits = AudioLimits { max_duration_s: max_duration };
    let mut failed = false;
    for file in files {
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let started = Instant::now();
        match engine.transcribe_bytes(bytes, limits, &options) {
            Ok(t) if timings => println!(
                "{}",
                serde_json::json!({ "file": file, "text": t.text, "duration": t.duration, "transcribe_s": started.elapsed().as_secs_f64() })
            ),
            // The API's bodies (JSON ones on one line each).
            Ok(t) => {
                let granularities = Granularities { segment: true, word: word_timestamps };
                let r = format::render(&t, format.into(), granularities);
                let body = String::from_utf8_lossy(&r.body);
                match r.content_type {
                    "application/json" => println!("{body}"),
                    _ => print!("{body}"),
                }
            }
            Err(e) => {
                failed = true;
                println!(
                    "{}",
                    serde_json::json!({ "file": file, "error": e.to_string(), "client_error": e.is_client_error() })
                );
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
