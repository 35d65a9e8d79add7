//! Temperature fallback: decode greedily, and when the result looks like a repetition loop
//! (compression ratio) or a guess (average log-probability), sample at rising temperatures.

use candle_core::Tensor;

use super::logit_filters::LogitFilters;
use super::options::TranscribeOptions;
use super::window::{WindowOptions, WindowResult, decode_window};
use crate::error::EngineError;
use crate::model::Whisper;
use crate::tokenizer::WhisperTokenizer;

fn needs_fallback(r: &WindowResult, o: &TranscribeOptions) -> bool {
    let too_repetitive = o.compression_ratio_threshold.is_some_and(|t| r.compression_ratio > t);
    let too_unlikely = o.logprob_threshold.is_some_and(|t| r.avg_logprob < t);
    // Silence: an unlikely transcript of a window that is probably not speech is not retried.
    let silent = o.no_speech_threshold.is_some_and(|t| r.no_speech_prob > t) && too_unlikely;
    (too_repetitive || too_unlikely) && !silent
}

#[allow(clippy::too_many_arguments)]
pub fn decode_with_fallback(
    model: &Whisper,
    tok: &WhisperTokenizer,
    filters: &LogitFilters,
    features: &Tensor,
    o: &TranscribeOptions,
    language_token: Option<u32>,
    prompt: &[u32],
    rng: &mut fastrand::Rng,
) -> Result<WindowResult, EngineError> {
    let mut last: Option<WindowResult> = None;
    for &temperature in &o.temperatures {
        let wo = WindowOptions {
            task: o.task,
            language_token,
            temperature,
            prompt,
            without_timestamps: o.without_timestamps,
        };
        let candidates = if temperature > 0.0 { o.best_of.max(1) } else { 1 };
        let mut best: Option<WindowResult> = None;
        for _ in 0..candidates {
            let r = decode_window(model, tok, filters, features, &wo, rng)?;
            // The reference ranks samples by summed log-probability over length.
            let score = |r: &WindowResult| r.sum_logprob / r.tokens.len().max(1) as f32;
            if best.as_ref().is_none_or(|b| score(&r) > score(b)) {
                best = Some(r);
            }
        }
        let Some(r) = best else { continue };
        let retry = needs_fallback(&r, o);
        last = Some(r);
        if !retry {
            break;
        }
    }
    last.ok_or_else(|| EngineError::InvalidOption("no temperature to decode with".into()))
}
