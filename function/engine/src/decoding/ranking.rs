//! How finished hypotheses are compared: the reference's `MaximumLikelihoodRanker`.

/// Summed log-probability divided by the length (`None`, the reference's default) or by the
/// Google NMT penalty `((5 + length) / 6)^α`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LengthPenalty(pub Option<f32>);

impl LengthPenalty {
    /// `length`: sampled tokens, end of text excluded.
    pub fn score(self, sum_logprob: f32, length: usize) -> f32 {
        let length = length as f32;
        let penalty = match self.0 {
            None => length,
            Some(alpha) => ((5.0 + length) / 6.0).powf(alpha),
        };
        sum_logprob / penalty.max(f32::MIN_POSITIVE)
    }
}
