//! `stt`: the engine as a command, native or as a wasm32-wasip2 command component.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::sync::Arc;
use stt_engine::format::{self, Granularities, ResponseFormat};

use stt_engine::{
    AudioLimits, Engine, EngineError, Precision, Task, TranscribeOptions, Vad, VadOptions,
};

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
    Transcribe(TranscribeArgs),
    /// Where audio files hold speech (Silero VAD, faster-whisper's `vad_filter` options): one
    /// JSON line per file with its speech spans in seconds and the seconds detection took.
    Vad {
        files: Vec<PathBuf>,
        #[arg(long, default_value_os_t = PathBuf::from(format!("models/{}", stt_contract::defaults::VAD_MODEL)))]
        model: PathBuf,
    },
}

#[derive(Args)]
struct TranscribeArgs {
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
    /// Transcribe only the speech Silero VAD finds (faster-whisper's `vad_filter`).
    #[arg(long)]
    vad_filter: bool,
    /// Cut long audio at speech pauses into chunks of at most 30 s transcribed on their own
    /// (no window's end is lost; with --vad-filter only the speech is kept).
    #[arg(long)]
    chunked: bool,
    /// The VAD model folder; by default `silero-vad` beside the model's folder.
    #[arg(long)]
    vad_model: Option<PathBuf>,
}

fn load_vad(dir: &std::path::Path) -> anyhow::Result<Vad> {
    Vad::load_dir(dir).with_context(|| format!("loading {}", dir.display()))
}

fn vad(files: Vec<PathBuf>, model: PathBuf) -> anyhow::Result<ExitCode> {
    let vad = load_vad(&model)?;
    for file in files {
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let pcm = stt_engine::audio::load(bytes, AudioLimits::default())
            .with_context(|| format!("decoding {}", file.display()))?;
        let started = Instant::now();
        let spans = vad.speech(&pcm.samples, &VadOptions::default())?;
        let vad_s = started.elapsed().as_secs_f64();
        let seconds = stt_engine::audio::seconds;
        let speech: Vec<[f64; 2]> =
            spans.iter().map(|s| [seconds(s.start), seconds(s.end)]).collect();
        emit(format_args!(
            "{}\n",
            serde_json::json!({ "file": file, "duration": pcm.duration_s(), "speech": speech, "vad_s": vad_s })
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes to standard output. A failed write (a reader that went away: `stt … | head`) ends the
/// command with an error, where `print!` would panic.
fn emit(text: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use std::io::Write;
    std::io::stdout().lock().write_fmt(text).context("writing to standard output")
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

fn run() -> anyhow::Result<ExitCode> {
    match Cli::parse().cmd {
        Cmd::Transcribe(args) => transcribe(args),
        Cmd::Vad { files, model } => vad(files, model),
    }
}

/// With `--timings`, one JSON line per file: its text, duration and seconds spent. Otherwise
/// each file's result as the API renders it in `--format`.
/// Exit code 0 when every file was transcribed, 1 when some file was rejected (its error is
/// printed as JSON on stdout, like a result), 2 when the command itself could not run.
fn transcribe(args: TranscribeArgs) -> anyhow::Result<ExitCode> {
    let TranscribeArgs {
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
        vad_filter,
        chunked,
        vad_model,
    } = args;
    let started = Instant::now();
    let mut engine = Engine::load_dir_with(&model, precision)
        .with_context(|| format!("loading {}", model.display()))?;
    if vad_filter || chunked {
        let dir =
            vad_model.unwrap_or_else(|| model.with_file_name(stt_contract::defaults::VAD_MODEL));
        engine = engine.with_vad(Arc::new(load_vad(&dir)?));
    }
    if timings {
        emit(format_args!(
            "{}\n",
            serde_json::json!({ "load_s": started.elapsed().as_secs_f64() })
        ))?;
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
        vad: vad_filter.then(VadOptions::default),
        ..TranscribeOptions::default()
    }
    .with_temperature(temperature);
    let limits = AudioLimits { max_duration_s: max_duration };
    let mut failed = false;
    for file in files {
        let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let started = Instant::now();
        let result =
            stt_engine::audio::load(bytes, limits).map_err(EngineError::from).and_then(|pcm| {
                if chunked {
                    engine.transcribe_chunked(pcm.samples, &options, &mut |_| {})
                } else {
                    engine.transcribe_pcm(pcm.samples, &options)
                }
            });
        match result {
            Ok(t) if timings => emit(format_args!(
                "{}\n",
                serde_json::json!({ "file": file, "text": t.text, "duration": t.duration, "transcribe_s": started.elapsed().as_secs_f64() })
            ))?,
            // The API's bodies (JSON ones on one line each).
            Ok(t) => {
                let granularities = Granularities { segment: true, word: word_timestamps };
                let r = format::render(&t, format.into(), granularities);
                let body = String::from_utf8_lossy(&r.body);
                match r.content_type {
                    "application/json" => emit(format_args!("{body}\n"))?,
                    _ => emit(format_args!("{body}"))?,
                }
            }
            Err(e) => {
                failed = true;
                emit(format_args!(
                    "{}\n",
                    serde_json::json!({ "file": file, "error": e.to_string(), "client_error": e.is_client_error() })
                ))?;
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
