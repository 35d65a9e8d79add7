//! Whisper's decoding, after the reference implementation (openai/whisper `decoding.py` and
//! `transcribe.py`): logit filters, one 30 s window at one temperature, temperature fallback,
//! language detection.

mod fallback;
mod language;
mod logit_filters;
mod options;
mod window;

pub use fallback::decode_with_fallback;
pub use language::detect_language;
pub use logit_filters::LogitFilters;
pub use options::{Task, TranscribeOptions};
pub use window::WindowResult;

/// Seconds per timestamp token.
pub const TIME_PRECISION: f64 = 0.02;
