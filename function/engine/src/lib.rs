//! stt-engine: Whisper speech-to-text on candle, single-threaded in WebAssembly and native.
//!
//! Audio bytes → `audio` (decode, downmix, resample to 16 kHz) → `mel` (log-mel) → `model`
//! (encoder, decoder with KV cache, f32 or int8 on `kernels`) driven by `decoding` and
//! `transcribe` (the reference implementation's rules) → [`Transcript`].
//!
//! The public surface is what the function, the CLI, the benchmarks and the tests use:
//! [`Engine`] (load a model folder, transcribe), its options and results, [`audio::load`] for
//! decoding an upload before the model runs, and [`format`] for the response formats.

pub mod audio;
pub mod chunked;
mod compression;
mod decoding;
mod engine;
mod error;
pub mod format;
mod kernels;
mod mel;
mod model;
mod tokenizer;
mod transcribe;
pub mod vad;

pub use audio::AudioLimits;
pub use chunked::ChunkedTranscription;
pub use decoding::timing::Word;
pub use decoding::{Task, TranscribeOptions};
pub use engine::Engine;
pub use error::EngineError;
pub use model::Precision;
pub use model::seam::contexts_built as audio_contexts_built;
pub use transcribe::{MAX_BEAMS, Segment, Transcript};
pub use vad::{Vad, VadOptions};
