//! The encoder's self-attention in integers, one head and a block of queries at a time: scores
//! Q·Kᵀ and the product P·V run on the relaxed int8 products (Q int8 against keys in 7 bits
//! around 64; probabilities in 7 bits against int8 values), softmax in f32 between them. Only a block
//! of scores ever exists (64 × 1500 f32, not 6 heads × 1500 × 1500), which is most of what an
//! instance's private memory would otherwise be.

use crate::kernels::gemm::matmul_t;
use crate::kernels::pack::{Panels, U7Panels};
use crate::kernels::quant::{QuantRows, U7_LEVELS, U7_ZERO};

/// Queries per block.
const BLOCK: usize = 64;

/// Which projection of a head [`self_attention_by_head`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Query,
    Key,
    Value,
}

/// Self-attention over `t` positions where `head(part, h)` gives head `h`'s queries, keys or
/// values as `t × d/heads`: the encoder computes them head by head from its int8 projections,
/// so that only one head's Q, K and V exist at a time.
pub fn self_attention_by_head(
    t: usize,
    d: usize,
    heads: usize,
    mut head: impl FnMut(Part, usize) -> Vec<f32>,
) -> Vec<f32> {
    let dh = d / heads;
    let scale = 1.0 / (dh as f32).sqrt();
    let mut out = vec![0.0; t * d];
    let mut transposed = Vec::with_capacity(t * dh);
    let (mut qq, mut vq) = (QuantRows::<i8>::default(), QuantRows::<i8>::default());
    let (mut kq, mut pq) = (QuantRows::<u8>::default(), QuantRows::<u8>::default());
    let (mut kp, mut vp) = (U7Panels::default(), Panels::<[i8; 16]>::default());
    let mut scores = vec![0.0; BLOCK * t];
    let mut o = vec![0.0; BLOCK * dh];
    for h in 0..heads {
        qq.fill_i8(&head(Part::Query, h), t, dh);
        kq.fill_around(&head(Part::Key, h), t, dh, U7_LEVELS, U7_ZERO);
        kp.fill_from(&kq);
        // Vᵀ: one row per channel over time, so that P·V is again a product of k-contiguous rows.
        let v = head(Part::Value, h);
        transposed.clear();
        transposed.extend((0..dh).flat_map(|c| v.iter().skip(c).step_by(dh).copied()));
        drop(v);
        vq.fill_i8(&transposed, dh, t);
        vp.fill_from(&vq);
        for i0 in (0..t).step_by(BLOCK) {
            let rows = (t - i0).min(BLOCK);
            let block = &mut scores[..rows * t];
            matmul_t(qq.rows_view(i0, rows), kp.view(), scale, None, block);
            pq.fill_softmax_u7(block, rows, t);
            matmul_t(pq.view(), vp.view(), 1.0, None, &mut o[..rows * dh]);
            for r in 0..rows {
                let at = (i0 + r) * d + h * dh;
                out[at..at + dh].copy_from_slice(&o[r * dh..(r + 1) * dh]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `q`, `k`, `v`: `t × d` row-major (heads side by side); returns `t × d`.
    fn self_attention(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        t: usize,
        d: usize,
        heads: usize,
    ) -> Vec<f32> {
        let dh = d / heads;
        self_attention_by_head(t, d, heads, |part, h| {
            let src = match part {
                Part::Query => q,
                Part::Key => k,
                Part::Value => v,
            };
            (0..t).flat_map(|s| src[s * d + h * dh..s * d + (h + 1) * dh].iter().copied()).collect()
        })
    }

    fn reference(q: &[f32], k: &[f32], v: &[f32], t: usize, d: usize, heads: usize) -> Vec<f32> {
        let dh = d / heads;
        let mut out = vec![0.0; t * d];
        for h in 0..heads {
            for i in 0..t {
                let mut w: Vec<f32> = (0..t)
                    .map(|j| {
                        (0..dh).map(|c| q[i * d + h * dh + c] * k[j * d + h * dh + c]).sum::<f32>()
                            / (dh as f32).sqrt()
                    })
                    .collect();
                let m = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                w.iter_mut().for_each(|x| *x = (*x - m).exp());
                let s: f32 = w.iter().sum();
                for c in 0..dh {
                    out[i * d + h * dh + c] =
                        (0..t).map(|j| w[j] / s * v[j * d + h * dh + c]).sum();
                }
            }
        }
        out
    }

    #[test]
    fn matches_f32_attention() {
        let (t, d, heads) = (150, 64, 2);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut r =
            |n: usize, a: f32| (0..n).map(|_| (rng.f32() * 2.0 - 1.0) * a).collect::<Vec<f32>>();
        let (q, k, v) = (r(t * d, 2.0), r(t * d, 2.0), r(t * d, 1.0));
        let got = self_attention(&q, &k, &v, t, d, heads);
        let want = reference(&q, &k, &v, t, d, heads);
        let errs: Vec<f32> = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).collect();
        let (max, mean) = (
            errs.iter().fold(0f32, |m, &e| m.max(e)),
            errs.iter().sum::<f32>() / errs.len() as f32,
        );
        // Probabilities in 7 bits (a step is 1/127 of the row's largest) against values in 8:
        // outputs within a few hundredths, on average within a few thousandths.
        assert!(max < 0.03 && mean < 5e-3, "max error {max}, mean {mean}");
    }
}
