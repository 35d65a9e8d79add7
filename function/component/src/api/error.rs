//! Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}` with a status.

use serde_json::json;
use stt_engine::EngineError;
use stt_engine::audio::AudioError;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind: stt_contract::errors::error_type(status),
            param: None,
            code: None,
        }
    }

    pub fn param(mut self, p: &'static str) -> Self {
        self.param = Some(p);
        self
    }

    pub fn code(mut self, c: &'static str) -> Self {
        self.code = Some(c);
        self
    }

    /// `{"error": {...}}`.
    pub fn json(&self) -> serde_json::Value {
        json!({ "error": { "message": self.message, "type": self.kind, "param": self.param, "code": self.code } })
    }

    pub fn body(&self) -> Vec<u8> {
        self.json().to_string().into_bytes()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let msg = e.to_string();
        match &e {
            EngineError::Audio(AudioError::TooLong { .. }) => {
                ApiError::new(422, msg).param("file").code("audio_too_long")
            }
            EngineError::Audio(AudioError::EmptyFile) => {
                ApiError::new(400, msg).param("file").code("empty_file")
            }
            EngineError::Audio(_) => ApiError::new(415, msg).param("file").code("invalid_audio"),
            EngineError::UnknownLanguage(_) | EngineError::NeedsMultilingual(_) => {
                ApiError::new(400, msg).param("language").code("unsupported_language")
            }
            EngineError::InvalidOption(_) => ApiError::new(400, msg),
            // The deployment did not mount the detector: not the client's fault.
            EngineError::NoVad => {
                ApiError::new(503, msg).param("vad_filter").code("vad_unavailable")
            }
            _ => ApiError::new(500, msg).code("engine_error"),
        }
    }
}
