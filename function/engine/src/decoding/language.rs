use super::sampling::argmax;
use crate::error::EngineError;
use crate::model::Backend;
use crate::tokenizer::WhisperTokenizer;

/// The most likely spoken language of a window, with its probability among the languages.
pub fn detect_language<B: Backend>(
    model: &B,
    ctx: &B::Context,
    tok: &WhisperTokenizer,
) -> Result<(String, f32), EngineError> {
    let mut seq = model.sequence();
    let logits = model
        .decode(ctx, std::slice::from_mut(&mut seq), &[tok.special.sot], &[0])?
        .pop()
        .unwrap_or_default();
    let langs = &tok.special.languages;
    let values: Vec<f32> = langs
        .iter()
        .map(|&(_, id)| logits.get(id as usize).copied().unwrap_or(f32::NEG_INFINITY))
        .collect();
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let total: f32 = values.iter().map(|v| (v - max).exp()).sum();
    let code = langs
        .get(argmax(&values) as usize)
        .map(|(c, _)| c.clone())
        .ok_or_else(|| EngineError::Tokenizer("no language tokens".into()))?;
    Ok((code, 1.0 / total))
}
