//! stt-host: runs the transcription function's WebAssembly components on wasmtime, one fresh
//! instance per request, with instance slots, a bounded queue, per-instance CPU and memory
//! limits, Prometheus metrics, probes and graceful drain.

pub mod admin;
pub mod authority;
pub mod body;
pub mod component_cache;
pub mod connection;
pub mod cpu;
pub mod event_stream;
pub mod guest_log;
pub mod http_error;
pub mod instance;
pub mod manifest;
pub mod memory_image;
pub mod metrics;
pub mod outbound;
pub mod peer;
pub mod report;
pub mod server;
pub mod settings;
pub mod slots;
pub mod snapshot;
pub mod variables;
