//! The decoder's attention caches in the int8 precision, on plain vectors. Cross-attention keys
//! and values (one window's, shared by every sequence decoded over it) are kept as int8 per
//! head (a quarter of the f32 cache; each query reads them through the same widening-load
//! product as the vocabulary); a sequence's self-attention cache stays f32 (≤ 448 positions,
//! cloned when a beam forks).

use super::linear::QLinear;
use crate::kernels::gemm::matmul_t;
use crate::kernels::pack::Int8Panels;
use crate::kernels::quant::{QuantRows, WEIGHT_LEVELS, activation_levels};
use crate::kernels::vmath::{dot, softmax};

/// One layer's self-attention keys and values of one sequence, `[position][d]`.
#[derive(Clone, Default)]
pub struct SelfCache {
    keys: Vec<f32>,
    values: Vec<f32>,
}

/// One layer's cross-attention keys `[1500][dh]` and values transposed `[dh][1500]`, per head.
pub struct CrossCache {
    cross_keys: Vec<Int8Panels>,
    cross_values_t: Vec<Int8Panels>,
}

/// Cross-attention keys and values of the audio features (`t × d`), quantised per head; each
/// head's projections are computed on their own, so only one head's f32 keys and values exist
/// at a time (0.8 MB instead of 4.6 MB for a window).
pub fn cross_cache(
    k_proj: &QLinear,
    v_proj: &QLinear,
    features: &[f32],
    t: usize,
    heads: usize,
) -> CrossCache {
    let qx = k_proj.quantise_input(features, t);
    let d = features.len() / t.max(1);
    let dh = d / heads.max(1);
    let mut transposed = Vec::with_capacity(t * dh);
    let mut cross_keys = Vec::with_capacity(heads);
    let mut cross_values_t = Vec::with_capacity(heads);
    for h in 0..heads {
        cross_keys.push(Int8Panels::int8_from_f32(
            &k_proj.forward_quantised_columns(&qx, h * dh, dh),
            t,
            dh,
        ));
        let v = v_proj.forward_quantised_columns(&qx, h * dh, dh);
        transposed.clear();
        transposed.extend((0..dh).flat_map(|c| v.iter().skip(c).step_by(dh).copied()));
        cross_values_t.push(Int8Panels::int8_from_f32(&transposed, dh, t));
    }
    CrossCache { cross_keys, cross_values_t }
}

impl SelfCache {
    /// Causal self-attention of `n` new rows (`q`, `k`, `v`: `n × d_model`) after the cached ones.
    pub fn self_attention(
        &mut self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        d_model: usize,
        heads: usize,
    ) -> Vec<f32> {
        self.keys.extend_from_slice(k);
        self.values.extend_from_slice(v);
        let d_model = d_model.max(1);
        let (n, total) = (q.len() / d_model, self.keys.len() / d_model);
        let past = total - n;
        let dh = d_model / heads;
        let scale = 1.0 / (dh as f32).sqrt();
        let mut out = vec![0.0; n * d_model];
        let mut w = Vec::with_capacity(total);
        for i in 0..n {
            let visible = past + i + 1;
            for h in 0..heads {
                let qh = &q[i * d_model + h * dh..i * d_model + (h + 1) * dh];
                w.clear();
                w.extend((0..visible).map(|j| {
                    dot(qh, &self.keys[j * d_model + h * dh..j * d_model + (h + 1) * dh]) * scale
                }));
                softmax(&mut w);
                let o = &mut out[i * d_model + h * dh..i * d_model + (h + 1) * dh];
                for (j, p) in w.iter().enumerate() {
                    let vj = &self.values[j * d_model + h * dh..j * d_model + (h + 1) * dh];
                    o.iter_mut().zip(vj).for_each(|(o, v)| *o += p * v);
                }
            }
        }
        out
    }
}

/// Sees `(head, row, scores)` for every cross-attention row before its softmax.
pub type RowScores<'a> = &'a mut dyn FnMut(usize, usize, &[f32]);

/// Query rows per block of [`CrossCache::cross_attention`]: a block's scores are
/// `ROW_BLOCK × 1500` f32.
const ROW_BLOCK: usize = 64;

impl CrossCache {
    /// Attention of `n` query rows (`n × d`) over the audio, a block of rows per product so that
    /// each head's keys and values are read once per block (a step's beams, a prompt, the word
    /// timing pass). `scores_of(head, row, scores)` sees each row's scaled scores before the
    /// softmax, when given.
    pub fn cross_attention(
        &self,
        q: &[f32],
        heads: usize,
        mut scores_of: Option<RowScores<'_>>,
    ) -> Vec<f32> {
        let dh = self.cross_keys.first().map_or(1, |k| k.k);
        let d = dh * heads;
        let n = q.len() / d.max(1);
        let t = self.cross_keys.first().map_or(0, |k| k.rows);
        let scale = 1.0 / (dh as f32).sqrt();
        let mut out = vec![0.0; n * d];
        let mut scores = vec![0.0; ROW_BLOCK.min(n) * t];
        let mut o = vec![0.0; ROW_BLOCK.min(n) * dh];
        let mut qh = Vec::with_capacity(ROW_BLOCK.min(n) * dh);
        let (mut qq, q_levels) =
            (QuantRows::<i16>::default(), activation_levels(dh, WEIGHT_LEVELS));
        let (mut pq, p_levels) = (QuantRows::<i16>::default(), activation_levels(t, WEIGHT_LEVELS));
        for h in 0..heads {
            for i0 in (0..n).step_by(ROW_BLOCK) {
                let rows = (n - i0).min(ROW_BLOCK);
                qh.clear();
                for i in i0..i0 + rows {
                    qh.extend_from_slice(&q[i * d + h * dh..i * d + (h + 1) * dh]);
                }
                // One scale per row: the same as quantising each row on its own.
                qq.fill(&qh, rows, dh, q_levels);
                let scores = &mut scores[..rows * t];
                matmul_t(qq.view(), self.cross_keys[h].view(), scale, None, scores);
                if let Some(f) = scores_of.as_deref_mut() {
                    for (r, row) in scores.chunks(t.max(1)).enumerate() {
                        f(h, i0 + r, row);
                    }
                }
                pq.fill_softmax(scores, rows, t, p_levels);
                let o = &mut o[..rows * dh];
                matmul_t(pq.view(), self.cross_values_t[h].view(), 1.0, None, o);
                for r in 0..rows {
                    let at = (i0 + r) * d + h * dh;
                    out[at..at + dh].copy_from_slice(&o[r * dh..(r + 1) * dh]);
                }
            }
        }
        out
    }
}
