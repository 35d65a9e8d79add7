//! stt-host: runs the transcription function's WebAssembly components on wasmtime.

pub mod command;
pub mod component_cache;
pub mod manifest;
pub mod server;
pub mod variables;
