//! stt-bench: the benchmarks behind docs/PERFORMANCE_REPORT.md.

mod advise;
mod audio;
mod beam;
mod clips;
mod cpu_scaling;
mod dot_lowering;
mod engine_rtf;
mod formats;
mod host_proc;
mod hpa;
mod instances;
mod load;
mod long;
mod pcm;
mod plan;
mod plot;
mod soak;
mod vad;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "stt-bench", about = "Benchmarks for stt-edge")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// RTF of tiny.en on jfk.flac and a 60 s clip: native engine, engine in wasm under
    /// wasmtime, and faster-whisper on the same weights, all on one thread, in one run.
    Engine(engine_rtf::Args),
    /// Required pods for a target RPS (the guide's formula) and a replay of a daily curve and a
    /// spike through the HPA with the guide's policies.
    Plan(plan::Args),
    /// Open-loop Poisson load against a host on 127.0.0.1 at one or more rates.
    Load(load::Args),
    /// Latency and RTF for 5 s … 10 min clips: the wasm function via the host, the native
    /// engine and faster-whisper, in one run.
    Audio(audio::Args),
    /// Throughput, latency, CPU and efficiency at 1…N slots on 1…N CPUs.
    CpuScaling(cpu_scaling::Args),
    /// Per-request start with the model ready and memory per busy instance: the component as
    /// built against its snapshot.
    Instances(instances::Args),
    /// The guide's decision matrix: scale up, scale out, smaller model or check bottlenecks.
    Advise(advise::Args),
    /// Mixed good, bad, slow, leaving and hostile clients against one host for a while: RSS
    /// over time, answers by kind, exit on SIGTERM.
    Soak(soak::Args),
    /// Beam search against greedy (dev-set WER, both models) and against faster-whisper's
    /// (latency), and the cost of a decode that falls back through every temperature.
    Beam(beam::Args),
    /// Voice activity detection's cost per minute of audio: ours natively and in wasm as
    /// served, and the silero-vad package's ONNX model under onnxruntime.
    Vad(vad::Args),
    /// A ≈ 10 min recording through `stt-host` on 1 and 2 slots: sequential (one instance)
    /// against fan-out (chunks sent to the slots): latency, WER, first streamed delta.
    Long(long::Args),
    /// What each upload format (WAV, FLAC, MP3, Vorbis, Opus, WebM, AAC) costs as served:
    /// latency and instance CPU against the same recording as WAV, and the decode alone.
    Formats(formats::Args),
    /// Writes the engine's decoding of audio files as 16 kHz f32 samples (for reference runs).
    Pcm(pcm::Args),
    /// The encoder's int8 product step as wasmtime lowers relaxed-simd's dot on x86, against
    /// the same step on AVX-512 VNNI (`vpdpbusd`), natively on the encoder's shapes.
    Dot(dot_lowering::Args),
}

#[derive(clap::Args, Clone)]
pub struct Paths {
    #[arg(long, env = "STT_DATA_DIR", default_value = "../shared/data")]
    pub data: PathBuf,
    #[arg(long, env = "STT_MODELS_DIR", default_value = "models")]
    pub models: PathBuf,
    #[arg(long, env = "STT_WHEEL_CACHE", default_value = "models/.wheels")]
    pub wheels: PathBuf,
}

/// What a side-by-side benchmark of our `stt` (natively and built for wasm32-wasip2) against a
/// reference implementation (run by Python) needs: the data, the programs, how many runs, and
/// where the report goes.
#[derive(clap::Args, Clone)]
pub struct SideBySide {
    #[command(flatten)]
    pub paths: Paths,
    /// Runs of each implementation; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Where the report goes.
    #[arg(long, default_value = "docs/PERFORMANCE_REPORT.md")]
    pub out: PathBuf,
    /// The native `stt` binary (default: beside this one).
    #[arg(long)]
    pub stt: Option<PathBuf>,
    /// The `stt` command built for wasm32-wasip2.
    #[arg(long, env = "STT_CLI_WASM")]
    pub wasm: PathBuf,
    #[arg(long, default_value = "python3")]
    pub python: String,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Engine(args) => engine_rtf::run(&args),
        Cmd::Plan(args) => plan::run(&args),
        Cmd::Load(args) => load::run(&args),
        Cmd::Audio(args) => audio::run(&args),
        Cmd::CpuScaling(args) => cpu_scaling::run(&args),
        Cmd::Advise(args) => advise::run(&args),
        Cmd::Instances(args) => instances::run(&args),
        Cmd::Soak(args) => soak::run(&args),
        Cmd::Pcm(args) => pcm::run(&args),
        Cmd::Beam(args) => beam::run(&args),
        Cmd::Vad(args) => vad::run(&args),
        Cmd::Long(args) => long::run(&args),
        Cmd::Formats(args) => formats::run(&args),
        Cmd::Dot(args) => dot_lowering::run(&args),
    }
}

pub use stt_testkit::stats::percentile;

/// A program of this workspace: `given`, else the one named `name` beside this binary.
pub fn sibling_binary(given: Option<&std::path::Path>, name: &str) -> anyhow::Result<PathBuf> {
    Ok(match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()?.with_file_name(name),
    })
}
