//! `stt-host serve` for a benchmark, through the kit's launcher: on 127.0.0.1 ports chosen by
//! the OS, its log quiet, optionally confined to some CPUs (taskset).

use std::path::Path;

pub use stt_testkit::http::{metric, scrape};
use stt_testkit::server::Launch;
pub use stt_testkit::server::Server as HostProc;

/// Starts the host on `manifest` with `args`; `cpus` = "0-1" confines it with taskset.
pub fn start(
    binary: &Path,
    manifest: &Path,
    args: &[String],
    cpus: Option<&str>,
    env: &[(&str, &str)],
) -> anyhow::Result<HostProc> {
    let mut launch = Launch::stt_host(binary, manifest)
        .args(args.iter().cloned())
        .env("STT_LOG", "warn")
        .envs(env);
    if let Some(list) = cpus {
        launch = launch.cpus(list);
    }
    Ok(launch.start()?)
}
