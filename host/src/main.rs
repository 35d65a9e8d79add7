//! `stt-host serve`: runs the function of `spin.toml` on wasmtime.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use stt_host::manifest::App;
use stt_host::server::Server;

#[derive(Parser)]
#[command(name = "stt-host", about = "Serve the transcription function on wasmtime")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the HTTP component of a Spin manifest.
    Serve {
        #[arg(long, default_value = "spin.toml")]
        manifest: PathBuf,
        #[arg(long, env = "STT_LISTEN", default_value = "127.0.0.1:3000")]
        listen: String,
        /// Where compiled components are cached.
        #[arg(long, env = "STT_COMPILE_CACHE", default_value = "build/cwasm-cache")]
        cache: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cmd::Serve { manifest, listen, cache } = Cli::parse().cmd;
    let app = App::load(&manifest)?;
    let server = Arc::new(Server::new(&app, &cache)?);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    // The bound address on stdout, so that a caller that asked for port 0 learns the port.
    println!("listening on http://{}", listener.local_addr()?);
    server.serve(listener).await
}
