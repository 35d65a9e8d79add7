use serde::Deserialize;

/// The Hugging Face Whisper `config.json` fields the model needs (the same names candle reads),
/// plus the generation settings our converter carries over from the CTranslate2 package.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Config {
    pub num_mel_bins: usize,
    pub d_model: usize,
    pub max_source_positions: usize,
    pub max_target_positions: usize,
    pub vocab_size: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    #[serde(default)]
    pub suppress_tokens: Vec<u32>,
    #[serde(default)]
    pub begin_suppress_tokens: Vec<u32>,
}

impl Config {
    /// Multilingual checkpoints have 51865 tokens (99 languages plus tasks); English-only 51864.
    pub fn is_multilingual(&self) -> bool {
        self.vocab_size >= 51865
    }
}
