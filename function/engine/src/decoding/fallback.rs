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

/// The result of a window: the first attempt that needs no fallback, else [`likeliest`] of
/// them all.
pub fn decode_with_fallback<B: Backend>(
    w: &Window<'_, B>,
    start: &Prefilled<B::Sequence>,
    o: &TranscribeOptions,
    rng: &mut fastrand::Rng,
) -> Result<WindowResult, EngineError> {
    let penalty = LengthPenalty(o.length_penalty);
    let mut failed = Vec::with_capacity(o.temperatures.len());
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
        if !needs_fallback(&r, o) {
            return Ok(r);
        }
        failed.push(r);
    }
    likeliest(failed, o.compression_ratio_threshold)
        .ok_or_else(|| EngineError::InvalidOption("no temperature to decode with".into()))
}

/// faster-whisper's choice when every temperature failed (`generate_with_fallback`): the
/// attempt with the highest average log-probability among those under the compression-ratio
/// threshold (among all when none is), the first of equals, stamped with the last temperature
/// tried, which decides whether the next window's prompt is reset. openai-whisper keeps the
/// last attempt instead, a sample at temperature 1.0: on speech the model is unsure of (a
/// translation, a hard accent) that is noise where a cooler attempt was usable.
fn likeliest(attempts: Vec<WindowResult>, threshold: Option<f32>) -> Option<WindowResult> {
    let last = attempts.last()?.temperature;
    let under = |r: &WindowResult| !threshold.is_some_and(|t| r.compression_ratio > t);
    let pool: Vec<WindowResult> = if attempts.iter().any(under) {
        attempts.into_iter().filter(under).collect()
    } else {
        attempts
    };
    let mut best =
        pool.into_iter().reduce(|b, r| if r.avg_logprob > b.avg_logprob { r } else { b })?;
    best.temperature = last;
    Some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(temperature: f32, avg_logprob: f32, compression_ratio: f32) -> WindowResult {
        WindowResult {
            tokens: vec![(temperature * 10.0) as u32],
            sum_logprob: avg_logprob,
            avg_logprob,
            no_speech_prob: 0.0,
            compression_ratio,
            temperature,
        }
    }

    #[test]
    fn the_likeliest_attempt_under_the_compression_threshold_is_kept() {
        let kept = |a: Vec<WindowResult>| likeliest(a, Some(2.4)).expect("an attempt");
        // The likeliest overall is too repetitive: the likeliest under the threshold wins, with
        // the last temperature.
        let r =
            kept(vec![attempt(0.0, -1.5, 1.0), attempt(0.2, -1.2, 3.0), attempt(0.4, -1.4, 1.0)]);
        assert_eq!((r.tokens, r.avg_logprob, r.temperature), (vec![4], -1.4, 0.4));
        // None under it: the likeliest of all.
        let r = kept(vec![attempt(0.0, -1.5, 2.5), attempt(0.2, -1.2, 3.0)]);
        assert_eq!(r.tokens, vec![2]);
        // The first of equals.
        let r =
            kept(vec![attempt(0.0, -1.3, 1.0), attempt(0.2, -1.3, 1.0), attempt(1.0, -3.0, 1.0)]);
        assert_eq!((r.tokens, r.temperature), (vec![0], 1.0));
        // No threshold: every attempt counts.
        let r = likeliest(vec![attempt(0.0, -1.5, 9.0), attempt(0.2, -1.6, 1.0)], None);
        assert_eq!(r.map(|r| r.tokens), Some(vec![0]));
        assert!(likeliest(Vec::new(), Some(2.4)).is_none());
    }
}
