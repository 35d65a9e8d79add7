//! stt-testkit: what the tests and benchmarks share, written once. Never a dependency of a
//! production crate.
//!
//! - [`paths`]: the workspace, the real data (`../shared/data`) and the models.
//! - [`server`]: `stt-host serve` or `spin up` as a real process on 127.0.0.1, and stopping it.
//! - [`manifest`]: a `spin.toml` for a test or benchmark.
//! - [`http`]: a client that returns error statuses, multipart bodies, OpenAI's error shape,
//!   Prometheus text.
//! - [`raw`]: HTTP/1.1 over a plain socket, for faults a client library hides.
//! - [`media`]: audio made from the shared data with ffmpeg (WebM, long high-rate files).
//! - [`wasi_command`]: the `stt` command component run under wasmtime with captured output.
//! - [`stats`]: the percentile of a sample, by nearest rank.
//! - [`wer`]: word error rate after an English normalisation, character error rate, and the
//!   long-form clip.

pub mod http;
pub mod manifest;
pub mod media;
pub mod paths;
pub mod raw;
pub mod server;
pub mod stats;
pub mod wasi_command;
pub mod wer;
