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
    /// `[layer, head]` of the decoder's cross-attention heads that follow the speech in time
    /// (word timing); CTranslate2's converter carries them from the original checkpoint.
    #[serde(default)]
    pub alignment_heads: Vec<[usize; 2]>,
}

impl Config {
    /// The alignment heads; without them, every head of the decoder's second half, as the
    /// reference does for a checkpoint it has no list for.
    pub fn alignment_heads(&self) -> Vec<super::Head> {
        if self.alignment_heads.is_empty() {
            let (layers, heads) = (self.decoder_layers, self.decoder_attention_heads);
            return (layers / 2..layers)
                .flat_map(|layer| (0..heads).map(move |head| super::Head { layer, head }))
                .collect();
        }
        self.alignment_heads.iter().map(|&[layer, head]| super::Head { layer, head }).collect()
    }

    /// Multilingual checkpoints have 51865 tokens (99 languages plus tasks); English-only 51864.
    pub fn is_multilingual(&self) -> bool {
        self.vocab_size >= 51865
    }
}
