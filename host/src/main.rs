//! `stt-host serve`: runs the function of `spin.toml` on wasmtime.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use stt_host::admin::{self, Health};
use stt_host::manifest::App;
use stt_host::metrics::Metrics;
use stt_host::server::{self, Server};
use stt_host::settings::{CpuBudget, Settings};
use stt_host::{component_cache, cpu, snapshot};

#[derive(Parser)]
#[command(name = "stt-host", about = "Serve the transcription function on wasmtime")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the HTTP components of a Spin manifest.
    Serve(ServeArgs),
    /// Compile the manifest's components into the cache and exit (for images: pods then start
    /// without compiling).
    Compile(ServeArgs),
    /// Pre-initialise a component of the manifest (wasmtime-wizer): run its `wizer-initialize`
    /// with the manifest's files and variables, and write the snapshot (the model loaded).
    Snapshot(SnapshotArgs),
}

#[derive(Args)]
struct SnapshotArgs {
    #[arg(long, default_value = "spin.toml")]
    manifest: PathBuf,
    /// The component's id in the manifest [default: the only one].
    #[arg(long)]
    component: Option<String>,
    /// The component as built (with the `wizer-initialize` export).
    #[arg(long)]
    input: PathBuf,
    /// Where to write the pre-initialised component [default: the manifest's `source`].
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    #[arg(long, default_value = "spin.toml")]
    manifest: PathBuf,
    #[arg(long, env = "STT_LISTEN", default_value = "127.0.0.1:3000")]
    listen: String,
    /// Metrics and probes.
    #[arg(long, env = "STT_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    admin_listen: String,
    /// Where compiled components are cached.
    #[arg(long, env = "STT_COMPILE_CACHE", default_value = "build/cwasm-cache")]
    cache: PathBuf,
    /// Instances that run at once, one core each [default: the CPU this process may use
    /// (cgroup cpu.max, else the core count), rounded down; WHISPER_N_THREADS is accepted too].
    #[arg(long, env = "STT_INSTANCE_SLOTS", value_parser = clap::value_parser!(u32).range(1..=1024))]
    slots: Option<u32>,
    /// Requests that may wait for a slot before new ones get 503 [default: 2 × slots].
    #[arg(long, env = "STT_QUEUE_DEPTH")]
    queue_depth: Option<u32>,
    /// Instances that may wait for the chunks of a long recording they sent to the app itself,
    /// holding no slot; a long request beyond them transcribes its chunks itself [default:
    /// slots].
    #[arg(long, env = "STT_WAITING_PARENTS")]
    waiting_parents: Option<u32>,
    /// Linear memory a waiting parent may hold, MiB: an instance holding more transcribes its
    /// chunks itself, and one that grows past it while waiting is stopped. The snapshot's
    /// 144 MB plus a 10-minute recording and its chunks fit in the default.
    #[arg(long, env = "STT_WAITING_PARENT_MEMORY_MB", default_value_t = 320, value_parser = clap::value_parser!(u64).range(16..=65536))]
    waiting_parent_memory_mb: u64,
    /// Where chunks go instead of this host's own slots: the base URL of the Service in front
    /// of the pods (e.g. `http://stt-edge.stt.svc.cluster.local`), so one long request spreads
    /// over pods. A chunk the peer answers 503 runs here.
    #[arg(long, env = "STT_CHUNK_PEER_URL")]
    chunk_peer_url: Option<hyper::Uri>,
    /// A fixed CPU budget per request, ms (instead of base + per audio second).
    #[arg(long, env = "STT_CPU_BUDGET_MS")]
    cpu_budget_ms: Option<u64>,
    /// CPU budget before the audio's length is known (start-up, model load, decoding), ms.
    #[arg(long, env = "STT_CPU_BUDGET_BASE_MS", default_value_t = 15_000)]
    cpu_budget_base_ms: u64,
    /// CPU seconds allowed per second of audio (1.0 = the guide's critical RTF).
    #[arg(long, env = "STT_CPU_BUDGET_PER_AUDIO_SECOND", default_value_t = 1.0)]
    cpu_budget_per_audio_second: f64,
    /// Linear memory cap per instance, MiB.
    #[arg(long, env = "STT_INSTANCE_MEMORY_MB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(16..=65536))]
    instance_memory_mb: u64,
    /// Largest request body the host accepts, MiB.
    #[arg(long, env = "STT_MAX_REQUEST_MB", default_value_t = 32)]
    max_request_mb: u64,
    /// Time a client has to send its body, s.
    #[arg(long, env = "STT_BODY_TIMEOUT_SECONDS", default_value_t = 60)]
    body_timeout_seconds: u64,
    /// Bytes of request bodies held at once, MiB; beyond it uploads get 503 [default: (slots +
    /// queue) × the largest request, the bodies that can be waiting for an instance].
    #[arg(long, env = "STT_BODY_BUDGET_MB")]
    body_budget_mb: Option<u64>,
    /// Client connections open at once; more are answered 503 and closed.
    #[arg(long, env = "STT_MAX_CONNECTIONS", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: u64,
    /// Time to send a complete request head, from connecting or from its first byte, s.
    #[arg(long, env = "STT_HEADER_TIMEOUT_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout_seconds: u64,
    /// Time a keep-alive connection may stay idle between requests, s (above the usual 60 s of
    /// load balancers, so that they close first).
    #[arg(long, env = "STT_IDLE_TIMEOUT_SECONDS", default_value_t = 75, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout_seconds: u64,
    /// How long SIGTERM waits for in-flight requests, s.
    #[arg(long, env = "STT_DRAIN_SECONDS", default_value_t = 30)]
    drain_seconds: u64,
    #[arg(long, env = "STT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

impl ServeArgs {
    fn settings(&self) -> anyhow::Result<Settings> {
        let slots = match (self.slots, std::env::var("WHISPER_N_THREADS").ok()) {
            (Some(n), _) => n as usize,
            (None, Some(v)) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .context("WHISPER_N_THREADS must be ≥ 1")?,
            (None, None) => cpu::slots_for(cpu::usable_cores()),
        };
        let queue_depth = self.queue_depth.map_or(2 * slots, |q| q as usize);
        let max_request_bytes = (self.max_request_mb << 20) as usize;
        let peer = match &self.chunk_peer_url {
            Some(u) if u.scheme_str() != Some("http") || u.authority().is_none() => {
                anyhow::bail!("--chunk-peer-url must be an http:// URL with a host, not `{u}`")
            }
            p => p.clone(),
        };
        Ok(Settings {
            slots,
            queue_depth,
            waiting_parents: self.waiting_parents.map_or(slots, |p| p as usize),
            waiting_parent_memory: (self.waiting_parent_memory_mb << 20) as usize,
            chunk_peer: peer,
            budget: CpuBudget {
                fixed: self.cpu_budget_ms.map(Duration::from_millis),
                base: Duration::from_millis(self.cpu_budget_base_ms),
                per_audio_second: self.cpu_budget_per_audio_second,
                caller: None,
            },
            instance_memory: (self.instance_memory_mb << 20) as usize,
            max_request_bytes,
            body_timeout: Duration::from_secs(self.body_timeout_seconds),
            body_budget: match self.body_budget_mb {
                Some(mb) => (mb << 20) as usize,
                None => (slots + queue_depth).max(1) * max_request_bytes,
            },
            max_connections: self.max_connections as usize,
            header_timeout: Duration::from_secs(self.header_timeout_seconds),
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds),
            drain_grace: Duration::from_secs(self.drain_seconds),
        })
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "no SIGTERM handler; draining on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutdown signal received");
}

/// Large allocations (request bodies) come from their own mappings and go back to the OS when
/// freed. glibc otherwise raises its mmap threshold after the first large free, and later
/// bodies land in per-thread heaps that are not trimmed.
fn return_large_frees_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of the allocator; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn main() -> std::process::ExitCode {
    return_large_frees_to_the_os();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // A failure is one line naming its cause (no backtrace, no "Caused by" list).
    match runtime.block_on(run(Cli::parse())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Serve(args) => serve(args).await,
        Cmd::Compile(args) => {
            init_logs(args.log_format);
            let engine = server::engine(&args.settings()?)?;
            for c in App::load(&args.manifest)?.components {
                component_cache::load(&engine, &c.source, &args.cache)?;
                println!("compiled {} into {}", c.source.display(), args.cache.display());
            }
            Ok(())
        }
        Cmd::Snapshot(args) => {
            let app = App::load(&args.manifest)?;
            let c = match &args.component {
                Some(id) => app
                    .components
                    .iter()
                    .find(|c| &c.id == id)
                    .with_context(|| format!("no component `{id}`"))?,
                None => match app.components.as_slice() {
                    [only] => only,
                    _ => anyhow::bail!(
                        "the manifest has several components: choose one with --component"
                    ),
                },
            };
            let output = args.output.clone().unwrap_or_else(|| c.source.clone());
            let t0 = std::time::Instant::now();
            let s = snapshot::snapshot(c, &args.input, &output).await?;
            println!(
                "snapshot of {} → {} ({:.1} MB, {:.1} s); initial memory: {:.1} MB of data over {:.1} MB",
                args.input.display(),
                output.display(),
                s.bytes as f64 / 1e6,
                t0.elapsed().as_secs_f64(),
                s.image.data_bytes as f64 / 1e6,
                s.image.span_bytes as f64 / 1e6,
            );

            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logs(args.log_format);
    let settings = args.settings()?;
    tracing::info!(?settings, "starting");
    let app = App::load(&args.manifest)?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    // The admin listener first, so that probes answer (not ready) while components compile.
    let admin_listen = &args.admin_listen;
    let admin = tokio::net::TcpListener::bind(admin_listen)
        .await
        .with_context(|| format!("bind {admin_listen}"))?;
    println!("admin on http://{}", admin.local_addr()?);
    tokio::spawn(admin::serve(admin, health.clone(), metrics.clone()));
    let server = Arc::new(Server::new(&app, settings, &args.cache, metrics, health)?);
    let listen = &args.listen;
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("bind {listen}"))?;
    server.warm_up().await?;
    // The bound address on stdout, so that a caller that asked for port 0 learns the port.
    println!("listening on http://{}", listener.local_addr()?);
    if server.serve(listener, terminated()).await {
        tracing::info!("drained; exiting");
        Ok(())
    } else {
        tracing::error!("the grace period ended with requests in flight; exiting");
        std::process::exit(1)
    }
}
