use thiserror::Error;

use crate::audio::AudioError;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error("model folder {path}: {message}")]
    ModelFiles { path: String, message: String },
    #[error("model config.json: {0}")]
    Config(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("model computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("the decoder context of {0} tokens is full")]
    ContextFull(usize),
    #[error("unknown language `{0}`")]
    UnknownLanguage(String),
    #[error("{0} needs a multilingual model; this one is English-only")]
    NeedsMultilingual(&'static str),
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error("voice activity detection was asked for, but no VAD model is loaded")]
    NoVad,
}

impl EngineError {
    /// Whether the request (its audio or its options) is at fault, rather than the engine.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Self::Audio(_)
                | Self::UnknownLanguage(_)
                | Self::NeedsMultilingual(_)
                | Self::InvalidOption(_)
        )
    }
}
