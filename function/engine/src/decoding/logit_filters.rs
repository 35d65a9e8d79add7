//! The reference's logit filters: SuppressBlank, SuppressTokens and ApplyTimestampRules.

use crate::tokenizer::SpecialTokens;

pub struct LogitFilters {
    /// Suppressed at every step (non-speech symbols and special tokens).
    suppress: Vec<u32>,
    /// Suppressed at the first sampled step only (a blank, end of text).
    begin_suppress: Vec<u32>,
    timestamps: Option<TimestampRules>,
}

struct TimestampRules {
    eot: u32,
    no_timestamps: u32,
    timestamp_begin: u32,
    max_initial_timestamp_index: Option<u32>,
}

impl LogitFilters {
    pub fn new(
        special: &SpecialTokens,
        suppress: &[u32],
        begin_suppress: &[u32],
        timestamps: bool,
        max_initial_timestamp: f32,
    ) -> Self {
        let mut suppress = suppress.to_vec();
        // The reference always adds the task and sequence-control tokens.
        suppress.extend([
            special.transcribe,
            special.translate,
            special.sot,
            special.sot_prev,
            special.sot_lm,
            special.no_speech,
        ]);
        suppress.sort_unstable();
        suppress.dedup();
        let timestamps = timestamps.then(|| TimestampRules {
            eot: special.eot,
            no_timestamps: special.no_timestamps,
            timestamp_begin: special.timestamp_begin,
            max_initial_timestamp_index: (max_initial_timestamp > 0.0)
                .then(|| (max_initial_timestamp / 0.02).round() as u32),
        });
        Self { suppress, begin_suppress: begin_suppress.to_vec(), timestamps }
    }

    /// Masks `logits` (one vocabulary row) given the tokens sampled so far in this window, and
    /// returns the masked row's [`log_sum_exp`] (the normaliser of its log-probabilities).
    pub fn apply(&self, logits: &mut [f32], sampled: &[u32]) -> f32 {
        let n = logits.len();
        let mut kill = |t: u32| {
            if (t as usize) < n {
                logits[t as usize] = f32::NEG_INFINITY;
            }
        };
        if sampled.is_empty() {
            self.begin_suppress.iter().for_each(|&t| kill(t));
        }
        self.suppress.iter().for_each(|&t| kill(t));
        match &self.timestamps {
            Some(r) => r.apply(logits, sampled),
            None => log_sum_exp(logits),
        }
    }
}

impl TimestampRules {
    /// The rules, and the masked row's log-sum-exp: the last rule needs the row's, which is
    /// the answer unless that rule masks the text.
    fn apply(&self, logits: &mut [f32], sampled: &[u32]) -> f32 {
        let tb = self.timestamp_begin as usize;
        let n = logits.len();
        if tb >= n {
            return log_sum_exp(logits);
        }
        logits[self.no_timestamps as usize] = f32::NEG_INFINITY;

        // Timestamps come in pairs, except directly before the end.
        let is_ts = |t: u32| t >= self.timestamp_begin;
        let last_ts = sampled.last().is_some_and(|&t| is_ts(t));
        let penultimate_ts = sampled.len() < 2 || is_ts(sampled[sampled.len() - 2]);
        if last_ts {
            if penultimate_ts {
                logits[tb..].fill(f32::NEG_INFINITY);
            } else {
                logits[..self.eot as usize].fill(f32::NEG_INFINITY);
            }
        }

        // Timestamps never decrease, and a segment has non-zero length.
        if let Some(&last) = sampled.iter().rev().find(|&&t| is_ts(t)) {
            let floor = if last_ts && !penultimate_ts { last } else { last + 1 };
            let floor = (floor as usize).min(n);
            logits[tb..floor].fill(f32::NEG_INFINITY);
        }

        if sampled.is_empty() {
            // A window starts with a timestamp, and not a late one.
            logits[..tb].fill(f32::NEG_INFINITY);
            if let Some(max) = self.max_initial_timestamp_index {
                let last_allowed = (tb + max as usize + 1).min(n);
                logits[last_allowed..].fill(f32::NEG_INFINITY);
            }
        }

        // When the timestamps together are likelier than any single text token, take a timestamp.
        // The row's maximum is the larger of its two parts': one pass fewer over the row.
        let (text_max, ts_max) = (max(&logits[..tb]), max(&logits[tb..]));
        let lse = log_sum_exp_at(logits, if ts_max > text_max { ts_max } else { text_max });
        let ts_lse = log_sum_exp_at(&logits[tb..], ts_max) - lse;
        if ts_lse > text_max - lse {
            logits[..tb].fill(f32::NEG_INFINITY);
            return log_sum_exp(logits);
        }
        lse
    }
}

/// Sixteen entries per loop iteration: it runs over the whole vocabulary for every token.
pub use crate::kernels::vmath::log_sum_exp;
use crate::kernels::vmath::{log_sum_exp_at, max};

#[cfg(test)]
mod tests {
    use super::*;

    fn special() -> SpecialTokens {
        SpecialTokens {
            eot: 10,
            sot: 11,
            translate: 12,
            transcribe: 13,
            sot_lm: 14,
            sot_prev: 15,
            no_speech: 16,
            no_timestamps: 17,
            timestamp_begin: 18,
            languages: vec![],
        }
    }

    fn allowed(l: &[f32]) -> Vec<usize> {
        l.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, _)| i).collect()
    }

    #[test]
    fn first_step_must_be_an_early_timestamp() {
        let f = LogitFilters::new(&special(), &[], &[10], true, 0.04);
        let mut l = vec![0.0; 30];
        f.apply(&mut l, &[]);
        assert_eq!(allowed(&l), vec![18, 19, 20]);
    }

    #[test]
    fn timestamp_after_text_then_pair_closes() {
        let f = LogitFilters::new(&special(), &[], &[], true, 1.0);
        // <|0.00|> text <|0.04|>: next may be a timestamp ≥ 0.04 or end of text, no text.
        let mut l = vec![0.0; 30];
        f.apply(&mut l, &[18, 3, 20]);
        assert!(allowed(&l).iter().all(|&t| t == 10 || t >= 20), "{:?}", allowed(&l));
        // <|0.00|> text <|0.04|><|0.04|>: next must be text.
        let mut l = vec![0.0; 30];
        f.apply(&mut l, &[18, 3, 20, 20]);
        assert!(allowed(&l).iter().all(|&t| t < 18) && !allowed(&l).is_empty());
    }

    /// What `apply` returns is the masked row's log-sum-exp, to the bit, whether or not the
    /// timestamp-mass rule masks the text, and without timestamps.
    #[test]
    fn the_returned_normaliser_is_the_masked_rows() {
        let mut rng = fastrand::Rng::with_seed(5);
        let mut text_masked = 0;
        for timestamps in [true, false] {
            let f = LogitFilters::new(&special(), &[2], &[], timestamps, 1.0);
            for (round, sampled) in
                [&[18u32, 3][..], &[18, 3, 4], &[18, 3, 20, 20]].iter().enumerate()
            {
                for ts_weight in [-5.0f32, 5.0] {
                    let mut l: Vec<f32> = (0..90)
                        .map(|t| rng.f32() * 4.0 + if t >= 18 { ts_weight } else { 0.0 })
                        .collect();
                    l[round] = 0.0;
                    let lse = f.apply(&mut l, sampled);
                    assert_eq!(lse.to_bits(), log_sum_exp(&l).to_bits(), "{sampled:?} {ts_weight}");
                    text_masked += usize::from(l[..18].iter().all(|v| v.is_infinite()));
                }
            }
        }
        // Both branches ran: the rule masked the text in some rows and not in others.
        assert!((1..12).contains(&text_masked), "{text_masked}");
    }

    #[test]
    fn timestamps_do_not_go_back() {
        let f = LogitFilters::new(&special(), &[], &[], true, 1.0);
        let mut l = vec![0.0; 30];
        l[3] = 50.0; // text dominates, so the timestamp mass rule does not fire
        f.apply(&mut l, &[18, 3, 22, 22, 4]);
        let ts: Vec<usize> = allowed(&l).into_iter().filter(|&t| t >= 18).collect();
        assert_eq!(ts.first(), Some(&23));
    }
}
