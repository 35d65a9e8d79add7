//! The engine: a loaded model and tokenizer, and the one call that turns audio into text.

use std::path::Path;

use crate::audio::{self, AudioLimits};
use crate::decoding::TranscribeOptions;
use crate::error::EngineError;
use crate::model::{Config, Precision, Whisper};
use crate::tokenizer::WhisperTokenizer;
use crate::transcribe::{Segment, Transcript, transcribe};

pub const MODEL_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

pub struct Engine {
    /// The model folder's name (`tiny.en`, `base`).
    pub name: String,
    pub model: Whisper,
    pub tokenizer: WhisperTokenizer,
}

/// Reads a small file (config, tokenizer) whole.
fn read_file(path: &Path) -> Result<Vec<u8>, EngineError> {
    std::fs::read(path).map_err(|e| EngineError::ModelFiles {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn read_config(dir: &Path) -> Result<Config, EngineError> {
    let config = read_file(&dir.join(CONFIG_FILE))?;
    serde_json::from_slice(&config).map_err(|e| EngineError::Config(e.to_string()))
}

impl Engine {
    /// Loads `model.safetensors`, `config.json` and `tokenizer.json` from a model folder, in the
    /// default precision (int8).
    pub fn load_dir(dir: &Path) -> Result<Self, EngineError> {
        Self::load_dir_with(dir, Precision::default())
    }

    /// Whether the model in `dir` is multilingual, from its `config.json` alone (no weights read).
    pub fn dir_is_multilingual(dir: &Path) -> Result<bool, EngineError> {
        Ok(read_config(dir)?.is_multilingual())
    }

    /// The weights are read tensor by tensor, never whole (see `model::tensor_file`).
    pub fn load_dir_with(dir: &Path, precision: Precision) -> Result<Self, EngineError> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "whisper".into());
        let config = read_config(dir)?;
        let tokenizer = WhisperTokenizer::from_bytes(&read_file(&dir.join(TOKENIZER_FILE))?)?;
        let model = Whisper::from_file(&dir.join(MODEL_FILE), config, precision)?;
        Ok(Self { name, model, tokenizer })
    }

    /// The languages the model transcribes (codes such as `en`, `de`): every language token of
    /// a multilingual model, only English for an English-only one.
    pub fn languages(&self) -> Vec<&str> {
        if !self.model.config.is_multilingual() {
            return vec!["en"];
        }
        self.tokenizer.special.languages.iter().map(|(c, _)| c.as_str()).collect()
    }

    /// Transcribes 16 kHz mono samples, freeing them as soon as the mel spectrogram is computed.
    pub fn transcribe_pcm(
        &self,
        pcm: Vec<f32>,
        options: &TranscribeOptions,
    ) -> Result<Transcript, EngineError> {
        transcribe(&self.model, &self.tokenizer, pcm, options, &mut |_| {})
    }

    /// Whether this model can run `options` (beam size, task, language): the errors
    /// [`Self::transcribe_pcm`] would give before any work.
    pub fn validate(&self, options: &TranscribeOptions) -> Result<(), EngineError> {
        crate::transcribe::validate(&self.model.config, &self.tokenizer, options).map(|_| ())
    }

    /// As [`Self::transcribe_pcm`], telling `on_segment` each segment as soon as it is decoded
    /// (in order; the transcript's segments are the same).
    pub fn transcribe_pcm_streaming(
        &self,
        pcm: Vec<f32>,
        options: &TranscribeOptions,
        on_segment: &mut dyn FnMut(&Segment),
    ) -> Result<Transcript, EngineError> {
        transcribe(&self.model, &self.tokenizer, pcm, options, on_segment)
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
