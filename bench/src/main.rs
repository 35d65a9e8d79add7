//! stt-bench: the benchmarks behind docs/PERFORMANCE_REPORT.md.

mod clips;
mod engine_rtf;

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

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Engine(args) => engine_rtf::run(&args),
    }
}
