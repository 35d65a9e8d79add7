//! The engine: a loaded model and tokenizer, and the one call that turns audio into text.

use std::io::Read;
use std::path::Path;

use crate::audio::{self, AudioLimits};
use crate::decoding::TranscribeOptions;
use crate::error::EngineError;
use crate::model::{Config, Precision, Whisper};
use crate::tokenizer::WhisperTokenizer;
use crate::transcribe::{Transcript, transcribe};

pub const MODEL_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

pub struct Engine {
    /// The model folder's name (`tiny.en`, `base`).
    pub name: String,
    pub model: Whisper,
    pub tokenizer: WhisperTokenizer,
}

/// Reads a file in bounded chunks: a single WASI host call may move at most 128 MiB.
fn read_file(path: &Path) -> Result<Vec<u8>, EngineError> {
    let err = |e: std::io::Error| EngineError::ModelFiles { path: path.display().to_string(), message: e.to_string() };
    let mut f = std::fs::File::open(path).map_err(err)?;
    let len = f.metadata().map(|m| m.len() as usize).unwrap_or(0);
    let mut out = Vec::with_capacity(len);
    let mut chunk = vec![0u8; 8 << 20];
    loop {
        let n = f.read(&mut chunk).map_err(err)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    Ok(out)
}

impl Engine {
    /// Loads `model.safetensors`, `config.json` and `tokenizer.json` from a model folder, in the
    /// default precision (int8).
    pub fn load_dir(dir: &Path) -> Result<Self, EngineError> {
        Self::load_dir_with(dir, Precision::default())
    }

    pub fn load_dir_with(dir: &Path, precision: Precision) -> Result<Self, EngineError> {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "whisper".into());
        let config = read_file(&dir.join(CONFIG_FILE))?;
        let tokenizer = read_file(&dir.join(TOKENIZER_FILE))?;
        let weights = read_file(&dir.join(MODEL_FILE))?;
        Self::from_bytes(name, weights, &config, &tokenizer, precision)
    }

    pub fn from_bytes(
        name: String,
        weights: Vec<u8>,
        config: &[u8],
        tokenizer: &[u8],
        precision: Precision,
    ) -> Result<Self, EngineError> {
        let config: Config = serde_json::from_slice(config).map_err(|e| EngineError::Config(e.to_string()))?;
        let tokenizer = WhisperTokenizer::from_bytes(tokenizer)?;
        let model = Whisper::from_safetensors(weights, config, precision)?;
        Ok(Self { name, model, tokenizer })
    }

    /// Transcribes 16 kHz mono samples, freeing them as soon as the mel spectrogram is computed.
    pub fn transcribe_pcm(&self, pcm: Vec<f32>, options: &TranscribeOptions) -> Result<Transcript, EngineError> {
        transcribe(&self.model, &self.tokenizer, pcm, options)
    }

    /// Decodes an uploaded file of any supported format and transcribes it.
    pub fn transcribe_bytes(
        &self,
        bytes: Vec<u8>,
        limits: AudioLimits,
        options: &TranscribeOptions,
    ) -> Result<Transcript, EngineError> {
        let pcm = audio::load(bytes, limits)?;
        self.transcribe_pcm(pcm.samples, options)
    }
}
