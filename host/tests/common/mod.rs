//! The host's tests on the kit (`stt-testkit`): this file only binds the `stt-host` binary
//! cargo built for them and names the requests several tests repeat.
#![allow(dead_code, unused_imports)] // each test crate uses a different part of these helpers

use std::path::PathBuf;

pub use stt_testkit::http::{agent, openai_error, post_audio};
use stt_testkit::manifest::{self, Component};
pub use stt_testkit::paths::{data_dir, models_dir, workspace};
pub use stt_testkit::server::{HostKind, Launch, Server};

/// The `stt-host` of this build.
pub const STT_HOST: &str = env!("CARGO_BIN_EXE_stt-host");

/// `stt-host serve` on `manifest` with extra flags and environment.
pub fn start_host(manifest: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    assert!(
        stt_testkit::paths::snapshot_wasm().is_file(),
        "build/stt_function.wasm is missing: run `make component`"
    );
    Launch::stt_host(STT_HOST, manifest)
        .args(args.iter().copied())
        .envs(env)
        .start()
        .expect("stt-host serve")
}

/// The project's spin.toml under `kind`, with extra environment (`SPIN_VARIABLE_*`).
pub fn start_on(kind: HostKind, env: &[(&str, &str)]) -> Server {
    assert!(
        stt_testkit::paths::snapshot_wasm().is_file(),
        "build/stt_function.wasm is missing: run `make component`"
    );
    Launch::on(kind, STT_HOST, workspace().join("spin.toml"))
        .envs(env)
        .start()
        .expect("start the host")
}

/// The project's spin.toml under `stt-host`.
pub fn start() -> Server {
    start_on(HostKind::SttHost, &[])
}

/// A manifest serving the function on `/...` and the misbehaving test component on `/hog/...`.
pub fn manifest_with_hog() -> PathBuf {
    let hog = stt_testkit::paths::wasm_from_env("STT_HOG_WASM");
    manifest::write(
        "hog",
        &[
            Component::function(&stt_testkit::paths::snapshot_wasm(), &models_dir()),
            Component::new("hog", "/hog/...", &hog),
        ],
    )
}

/// A multipart body with `model=whisper-1`, `response_format` and `file` (named jfk.flac).
pub fn multipart(file: &[u8], format: &str) -> (String, Vec<u8>) {
    stt_testkit::http::multipart(
        &[("model", "whisper-1"), ("response_format", format)],
        Some(("jfk.flac", file)),
    )
}

/// POSTs jfk.flac to /transcribe; the status and body.
pub fn transcribe_jfk(agent: &ureq::Agent, host: &Server) -> (u16, String) {
    post_audio(agent, &host.base, &data_dir().join("jfk.flac"), "audio/flac")
}

/// After whatever came before, a good request still succeeds.
pub fn assert_still_serves(agent: &ureq::Agent, host: &Server) {
    let (status, body) =
        post_audio(agent, &host.base, &data_dir().join("dev/ps_goforward.wav"), "audio/wav");
    assert_eq!(status, 200, "{body}");
    assert!(body.to_lowercase().contains("go forward"), "{body}");
}

/// A 66 s file (jfk.flac six times: three windows, and over `chunk_above_seconds`).
pub fn long_jfk() -> Vec<u8> {
    let jfk = data_dir().join("jfk.flac");
    let long = stt_testkit::media::encode(
        "jfk_x6.flac",
        &["-stream_loop", "5", "-i", &jfk.display().to_string()],
        &[],
    );
    std::fs::read(&long).expect("66 s clip")
}
