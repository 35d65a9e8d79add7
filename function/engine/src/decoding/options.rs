use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    #[default]
    Transcribe,
    /// Speech in any language to English text (multilingual models only).
    Translate,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Transcribe => "transcribe",
            Task::Translate => "translate",
        }
    }
}

/// The reference implementation's `transcribe()` options, with its defaults.
#[derive(Debug, Clone)]
pub struct TranscribeOptions {
    pub task: Task,
    /// ISO code (`en`, `de`, …); `None` detects it on multilingual models.
    pub language: Option<String>,
    pub initial_prompt: Option<String>,
    /// Tried in order until a result passes the thresholds.
    pub temperatures: Vec<f32>,
    /// Candidates sampled at each non-zero temperature; the most likely is kept.
    pub best_of: usize,
    /// Beams at temperature 0; 1 decodes greedily.
    pub beam_size: usize,
    /// Beam search goes on until `round(beam_size × patience)` hypotheses have finished.
    pub patience: f32,
    /// `None` ranks hypotheses by summed log-probability over length; `Some(α)` divides by
    /// `((5 + length) / 6)^α` instead.
    pub length_penalty: Option<f32>,
    /// Word-level start and end times in each segment (cross-attention alignment).
    pub word_timestamps: bool,
    pub compression_ratio_threshold: Option<f32>,
    pub logprob_threshold: Option<f32>,
    pub no_speech_threshold: Option<f32>,
    pub condition_on_previous_text: bool,
    pub without_timestamps: bool,
    /// Latest start allowed for the first timestamp of a window, in seconds.
    pub max_initial_timestamp: f32,
    /// Decode again from a window's final timestamp when the model ended the window early with
    /// over a second of audio left (not in the reference; see `transcribe.rs`).
    pub recover_trailing_speech: bool,
    /// Seed of the sampler, so that a fallback decode is reproducible.
    pub seed: u64,
    /// Transcribe only the speech voice activity detection finds (faster-whisper's
    /// `vad_filter` with these `vad_parameters`); needs an engine with a VAD attached.
    pub vad: Option<crate::vad::VadOptions>,
}

impl Default for TranscribeOptions {
    fn default() -> Self {
        Self {
            task: Task::Transcribe,
            language: None,
            initial_prompt: None,
            temperatures: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            best_of: 5,
            beam_size: 1,
            patience: 1.0,
            length_penalty: None,
            word_timestamps: false,
            compression_ratio_threshold: Some(2.4),
            logprob_threshold: Some(-1.0),
            no_speech_threshold: Some(0.6),
            condition_on_previous_text: true,
            without_timestamps: false,
            max_initial_timestamp: 1.0,
            recover_trailing_speech: true,
            seed: 0,
            vad: None,
        }
    }
}

impl TranscribeOptions {
    /// Temperatures starting at `t`, stepping by 0.2 up to 1.0, as OpenAI's API does with
    /// its `temperature` field (0 means the full fallback ladder).
    pub fn with_temperature(mut self, t: f32) -> Self {
        let t = t.clamp(0.0, 1.0);
        self.temperatures =
            (0..).map(|i| t + 0.2 * i as f32).take_while(|&x| x <= 1.0 + 1e-6).collect();
        self
    }
}
