//! stt-engine: Whisper speech-to-text on candle, single-threaded in WebAssembly and native.
//!
//! Audio bytes → [`audio`] (decode, downmix, resample to 16 kHz) → [`mel`] (log-mel) →
//! [`model`] (encoder, decoder with KV cache) driven by [`decoding`] and [`transcribe`]
//! (the reference implementation's rules) → [`Transcript`].

pub mod audio;
pub mod compression;
pub mod decoding;
pub mod engine;
pub mod error;
pub mod format;
pub mod kernels;
pub mod mel;
pub mod model;
pub mod tokenizer;
pub mod transcribe;

pub use audio::AudioLimits;
pub use decoding::{Task, TranscribeOptions};
pub use engine::Engine;
pub use error::EngineError;
pub use model::Precision;
pub use transcribe::{Segment, Transcript};
