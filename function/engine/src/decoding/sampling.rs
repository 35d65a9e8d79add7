//! One hypothesis at a time: greedy at temperature 0, sampled above it; best-of keeps the most
//! likely of several samples.

use super::ranking::LengthPenalty;
use super::window::{Prefilled, Window, WindowResult};
use crate::error::EngineError;
use crate::model::Backend;

pub fn argmax(x: &[f32]) -> u32 {
    // The first entry equal to the largest: the same as a scan keeping the first of equal
    // maxima, but the maximum takes sixteen entries per loop iteration (it runs over the
    // vocabulary for every token).
    let m = crate::kernels::vmath::max(x);
    let (whole, _) = x.as_chunks::<16>();
    let start = whole.iter().position(|c| c.contains(&m)).map_or(whole.len() * 16, |c| 16 * c);
    x[start..].iter().position(|&v| v == m).map_or(0, |i| start + i) as u32
}

fn sample(logits: &[f32], temperature: f32, rng: &mut fastrand::Rng) -> u32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f32> = logits.iter().map(|&l| ((l - max) / temperature).exp()).collect();
    let total: f32 = weights.iter().sum();
    let mut r = rng.f32() * total;
    for (i, &w) in weights.iter().enumerate() {
        if r < w {
            return i as u32;
        }
        r -= w;
    }
    argmax(logits)
}

/// One hypothesis from the window's prompt: the most likely token at each step at temperature
/// 0, a sampled one above.
pub fn decode_one<B: Backend>(
    w: &Window<'_, B>,
    start: &Prefilled<B::Sequence>,
    temperature: f32,
    rng: &mut fastrand::Rng,
) -> Result<WindowResult, EngineError> {
    let eot = w.tok.special.eot;
    let mut seq = start.seq.clone();
    let mut logits = start.logits.clone();
    let mut sampled: Vec<u32> = Vec::new();
    let mut sum_logprob = 0f32;
    for _ in 0..w.sample_len() {
        let lse = w.filters.apply(&mut logits, &sampled);
        let next =
            if temperature == 0.0 { argmax(&logits) } else { sample(&logits, temperature, rng) };
        sum_logprob += logits[next as usize] - lse;
        if next == eot {
            break;
        }
        sampled.push(next);
        if !w.has_room(&seq) {
            break;
        }
        logits = w.model.decode(w.ctx, std::slice::from_mut(&mut seq), &[next], &[0])?.remove(0);
    }
    w.finish(sampled, sum_logprob, start.no_speech_prob, temperature)
}

/// The best of `n` samples at `temperature`, ranked as the reference ranks them.
pub fn best_of<B: Backend>(
    w: &Window<'_, B>,
    start: &Prefilled<B::Sequence>,
    temperature: f32,
    n: usize,
    penalty: LengthPenalty,
    rng: &mut fastrand::Rng,
) -> Result<WindowResult, EngineError> {
    let mut best: Option<(f32, WindowResult)> = None;
    for _ in 0..n.max(1) {
        let r = decode_one(w, start, temperature, rng)?;
        let score = penalty.score(r.sum_logprob, r.tokens.len());
        if best.as_ref().is_none_or(|(b, _)| score > *b) {
            best = Some((score, r));
        }
    }
    best.map(|(_, r)| r).ok_or_else(|| EngineError::InvalidOption("no candidate".into()))
}

#[cfg(test)]
mod tests {
    use super::argmax;

    /// The first of equal maxima, in the sixteen-wide part or the tail; 0 when every entry is
    /// masked.
    #[test]
    fn argmax_takes_the_first_of_equal_maxima() {
        let mut x = vec![0.5f32; 51_865];
        assert_eq!(argmax(&x), 0);
        x[40_000] = 2.0;
        x[40_017] = 2.0;
        assert_eq!(argmax(&x), 40_000);
        x[51_864] = 3.0;
        assert_eq!(argmax(&x), 51_864);
        assert_eq!(argmax(&[f32::NEG_INFINITY; 20]), 0);
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
    }
}
