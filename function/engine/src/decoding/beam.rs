//! Beam search with the reference's semantics (`BeamSearchDecoder`): each step extends every
//! live beam by its `beam_size + 1` most likely tokens, keeps the `beam_size` best unfinished
//! extensions, and sets finished ones aside until `round(beam_size × patience)` have finished;
//! the finished hypotheses are then ranked with the length penalty. The live beams are fed
//! together (one batched step), and a beam's self-attention cache is cloned only when two
//! survivors share it.

use wide::{CmpLe, f32x4};

use super::ranking::LengthPenalty;
use super::window::{Prefilled, Window, WindowResult};
use crate::error::EngineError;
use crate::model::Backend;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeamOptions {
    pub beam_size: usize,
    pub patience: f32,
    pub length_penalty: LengthPenalty,
}

struct Beam {
    tokens: Vec<u32>,
    sum_logprob: f32,
}

/// The `k` largest entries of `x` as `(value, index)`, largest first (the first of equal
/// values first).
fn top_k(x: &[f32], k: usize) -> Vec<(f32, u32)> {
    let mut top: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
    let offer = |top: &mut Vec<(f32, u32)>, i: usize, v: f32| {
        if top.len() == k && top.last().is_some_and(|&(m, _)| v <= m) {
            return;
        }
        let at = top.partition_point(|&(m, _)| m >= v);
        top.insert(at, (v, i as u32));
        top.truncate(k);
    };
    // Once `k` are held, almost no entry of a vocabulary row beats the smallest of them: sixteen
    // entries are passed over with one comparison each when none does (the same test as
    // `offer`'s, so the same result as one entry at a time).
    let (whole, _) = x.as_chunks::<16>();
    for (c, chunk) in whole.iter().enumerate() {
        if let (true, Some(&(m, _))) = (top.len() == k, top.last())
            && none_above(chunk, m)
        {
            continue;
        }
        for (j, &v) in chunk.iter().enumerate() {
            offer(&mut top, 16 * c + j, v);
        }
    }
    for (i, &v) in x.iter().enumerate().skip(whole.len() * 16) {
        offer(&mut top, i, v);
    }
    top
}

/// Whether every entry of `c` is ≤ `m` (a NaN is not).
fn none_above(c: &[f32; 16], m: f32) -> bool {
    let m = f32x4::splat(m);
    let [a, b, d, e] = bytemuck::cast::<[f32; 16], [f32x4; 4]>(*c).map(|v| v.cmp_le(m));
    ((a & b) & (d & e)).all()
}

pub fn beam_search<B: Backend>(
    w: &Window<'_, B>,
    start: &Prefilled<B::Sequence>,
    o: &BeamOptions,
) -> Result<WindowResult, EngineError> {
    let eot = w.tok.special.eot;
    let size = o.beam_size.max(1);
    let max_candidates = ((size as f32 * o.patience).round() as usize).max(1);
    let mut beams = vec![Beam { tokens: Vec::new(), sum_logprob: 0.0 }];
    let mut seqs = vec![start.seq.clone()];
    let mut logits = vec![start.logits.clone()];
    let mut finished: Vec<Beam> = Vec::new();
    for _ in 0..w.sample_len() {
        // (score, source beam, token) of every extension.
        let mut candidates = Vec::with_capacity(beams.len() * (size + 1));
        for (b, (beam, l)) in beams.iter().zip(&mut logits).enumerate() {
            let lse = w.filters.apply(l, &beam.tokens);
            for (v, t) in top_k(l, size + 1) {
                candidates.push((beam.sum_logprob + v - lse, b, t));
            }
        }
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut kept = Vec::with_capacity(size);
        let mut newly_finished = Vec::new();
        for (score, b, t) in candidates {
            if t == eot {
                newly_finished.push(Beam { tokens: beams[b].tokens.clone(), sum_logprob: score });
            } else {
                kept.push((score, b, t));
                if kept.len() == size {
                    break;
                }
            }
        }
        // Newly finished ones come in score order; only as many as the list still takes.
        for f in newly_finished {
            if finished.len() >= max_candidates {
                break;
            }
            finished.push(f);
        }
        if finished.len() >= max_candidates || kept.is_empty() {
            break;
        }
        // The survivors' caches: moved from their source the first time, cloned after.
        let mut sources: Vec<Option<B::Sequence>> = seqs.into_iter().map(Some).collect();
        let mut uses = vec![0usize; sources.len()];
        kept.iter().for_each(|k| uses[k.1] += 1);
        let mut next_seqs = Vec::with_capacity(kept.len());
        let mut next_beams = Vec::with_capacity(kept.len());
        let mut fed = Vec::with_capacity(kept.len());
        for &(score, b, t) in &kept {
            uses[b] -= 1;
            let seq = match (uses[b] > 0, sources[b].as_ref()) {
                (true, Some(s)) => s.clone(),
                _ => sources[b].take().ok_or_else(|| {
                    EngineError::InvalidOption("beam source used after it was moved".into())
                })?,
            };
            let mut tokens = beams[b].tokens.clone();
            tokens.push(t);
            next_beams.push(Beam { tokens, sum_logprob: score });
            next_seqs.push(seq);
            fed.push(t);
        }
        beams = next_beams;
        seqs = next_seqs;
        if !seqs.iter().all(|s| w.has_room(s)) {
            break;
        }
        let rows: Vec<usize> = (0..fed.len()).collect();
        logits = w.model.decode(w.ctx, &mut seqs, &fed, &rows)?;
    }
    // Not enough finished: the live beams count as finished, best first.
    if finished.len() < size {
        let mut live: Vec<Beam> = beams;
        live.sort_by(|a, b| b.sum_logprob.total_cmp(&a.sum_logprob));
        for b in live {
            if finished.len() >= size {
                break;
            }
            finished.push(b);
        }
    }
    let best = finished
        .into_iter()
        .map(|b| (o.length_penalty.score(b.sum_logprob, b.tokens.len()), b))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, b)| b)
        .ok_or_else(|| EngineError::InvalidOption("beam search finished nothing".into()))?;
    w.finish(best.tokens, best.sum_logprob, start.no_speech_prob, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_the_largest_first() {
        assert_eq!(top_k(&[1.0, 5.0, 3.0, 4.0, 2.0], 3), vec![(5.0, 1), (4.0, 3), (3.0, 2)]);
        assert_eq!(top_k(&[1.0], 3), vec![(1.0, 0)]);
    }

    /// The chunked scan picks what one entry at a time picks: rows of every remainder, ties
    /// (coarse values), masked entries, and a row whose best entries come last.
    #[test]
    fn top_k_equals_a_stable_sort() {
        let mut rng = fastrand::Rng::with_seed(11);
        for n in [0, 5, 16, 17, 33, 1000, 51_864] {
            for k in [1, 3, 6] {
                let mut x: Vec<f32> = (0..n).map(|_| (rng.f32() * 40.0).round() - 20.0).collect();
                x.iter_mut().step_by(7).for_each(|v| *v = f32::NEG_INFINITY);
                if n > 20 {
                    x[n - 2] = 30.0;
                }
                let mut want: Vec<(f32, u32)> =
                    x.iter().enumerate().map(|(i, &v)| (v, i as u32)).collect();
                want.sort_by(|a, b| b.0.total_cmp(&a.0));
                want.truncate(k);
                assert_eq!(top_k(&x, k), want, "n {n} k {k}");
            }
        }
    }
}
