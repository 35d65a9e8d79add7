use candle_core::Tensor;

use crate::error::EngineError;
use crate::model::Whisper;
use crate::tokenizer::WhisperTokenizer;

/// The most likely spoken language of a window, with its probability among the languages.
pub fn detect_language(
    model: &Whisper,
    tok: &WhisperTokenizer,
    features: &Tensor,
) -> Result<(String, f32), EngineError> {
    let mut state = model.start(features)?;
    let logits = model.decode(&mut state, &[tok.special.sot], &[0])?.remove(0);
    let langs = &tok.special.languages;
    let values: Vec<f32> = langs
        .iter()
        .map(|&(_, id)| logits.get(id as usize).copied().unwrap_or(f32::NEG_INFINITY))
        .collect();
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let total: f32 = values.iter().map(|v| (v - max).exp()).sum();
    let (i, _) = values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) });
    let code = langs
        .get(i)
        .map(|(c, _)| c.clone())
        .ok_or_else(|| EngineError::Tokenizer("no language tokens".into()))?;
    Ok((code, 1.0 / total))
}
