//! Whisper's decoding, after the reference implementation (openai/whisper `decoding.py`,
//! `timing.py` and `transcribe.py`): logit filters, the strategies over one window's audio
//! context (greedy and best-of sampling in `sampling`, beam search in `beam`), temperature
//! fallback, language detection, and word timing.

mod beam;
mod fallback;
mod language;
mod logit_filters;
mod options;
mod ranking;
mod sampling;
pub mod timing;
mod window;

pub use fallback::decode_with_fallback;
pub use language::detect_language;
pub use logit_filters::LogitFilters;
pub use options::{Task, TranscribeOptions};
pub use window::{Window, WindowPrompt, WindowResult, sot_sequence};

/// Seconds per timestamp token.
pub const TIME_PRECISION: f64 = 0.02;
