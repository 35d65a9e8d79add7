//! `stt`: the engine as a command, native or as a wasm32-wasip2 command component.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use stt_engine::{AudioLimits, Engine, Precision, Task, TranscribeOptions, format};

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
        ..TranscribeOptions::default()
    }
    .with_temperature(temperature);
    let limits = AudioLimits { max_duration_s: max_duration };
    let mut failed = false;
    for file in files {
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let started = Instant::now();
        match engine.transcribe_bytes(bytes, limits, &options) {
            Ok(t) => match format {
                Format::Json if timings => println!(
                    "{}",
                    serde_json::json!({ "file": file, "text": t.text, "duration": t.duration, "transcribe_s": started.elapsed().as_secs_f64() })
                ),
                Format::Json => println!("{}", serde_json::json!({ "file": file, "text": t.text })),
                Format::VerboseJson => {
                    println!("{}", serde_json::json!({ "file": file, "transcript": t }))
                }
                Format::Text => print!("{}", format::to_text(&t)),
                Format::Srt => print!("{}", format::to_srt(&t)),
                Format::Vtt => print!("{}", format::to_vtt(&t)),
            },
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
