//! stt-component: the transcription function's Spin component. [`api`] is the OpenAI-compatible API over the
//! engine; on wasm32 it is exported as a Spin HTTP component.

pub mod api;
pub mod models;

#[cfg(target_arch = "wasm32")]
mod preload;
#[cfg(target_arch = "wasm32")]
mod self_requests;
#[cfg(target_arch = "wasm32")]
mod spin;
#[cfg(target_arch = "wasm32")]
mod variables;
