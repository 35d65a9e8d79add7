//! Temperature fallback: decode at temperature 0 (greedy, or beam search), and when the result
//! looks like a repetition loop (compression ratio) or a guess (average log-probability),
//! sample at rising temperatures. Every attempt starts from the window's one prefilled prompt.

use super::beam::{BeamOptions, beam_search};
use super::options::TranscribeOptions;
use super::ranking::LengthPenalty;
use super::sampling::{best_of, decode_one};
use super::window::{Prefilled, Window, WindowResult};
use crate::error::EngineError;
use crate::model::Backend;

fn needs_fallback(r: &WindowResult, o: &TranscribeOptions) -> bool {
    let too_repetitive = o.compression_ratio_threshold.is_some_and(|t| r.compression_ratio > t);
    let too_unlikely = o.logprob_threshold.is_some_and(|t| r.avg_logprob < t);
    // Silence: an unlikely transcript of a window that is probably not speech is not retried.
    let silent = o.no_speech_threshold.is_some_and(|t| r.no_speech_prob > t) && too_unlikely;
    (too_repetitive || too_unlikely) && !silent
}

pub fn decode_with_fallback<B: Backend>(
    w: &Window<'_, B>,
    start: &Prefilled<B::Sequence>,
    o: &TranscribeOptions,
    rng: &mut fastrand::Rng,
) -> Result<WindowResult, EngineError> {
    let penalty = LengthPenalty(o.length_penalty);
    let mut last: Option<WindowResult> = None;
    for &temperature in &o.temperatures {
        let r = if temperature > 0.0 {
            best_of(w, start, temperature, o.best_of, penalty, rng)?
        } else if o.beam_size > 1 {
            let beam = BeamOptions {
                beam_size: o.beam_size,
                patience: o.patience,
                length_penalty: penalty,
            };
            beam_search(w, start, &beam)?
        } else {
            decode_one(w, start, 0.0, rng)?
        };
        let retry = needs_fallback(&r, o);
        last = Some(r);
        if !retry {
            break;
        }
    }
    last.ok_or_else(|| EngineError::InvalidOption("no temperature to decode with".into()))
}
