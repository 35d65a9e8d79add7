//! The decoder step in the int8 precision on plain vectors: one token costs ~30 small products,
//! and through candle each of its ~150 tensor operations costs more in wasm than the arithmetic.
//! Cross-attention keys and values are kept as int8 per head (a quarter of the f32 cache; each
//! query reads them through the same widening-load product as the vocabulary); the
//! self-attention cache stays f32 (≤ 448 positions).

use wide::f32x4;

use super::linear::QLinear;
use crate::kernels::gemm::matmul_t;
use crate::kernels::pack::Int8Panels;
use crate::kernels::quant::{QuantRows, WEIGHT_LEVELS, activation_levels};
use crate::kernels::vmath::softmax;

fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (av, ar) = a.as_chunks::<4>();
    let (bv, br) = b.as_chunks::<4>();
    let s = av
        .iter()
        .zip(bv)
        .fold(f32x4::splat(0.0), |s, (x, y)| s + f32x4::from(*x) * f32x4::from(*y));
    s.reduce_add() + ar.iter().zip(br).map(|(x, y)| x * y).sum::<f32>()
}

/// One layer's caches for one sequence.
pub struct LayerCache {
    /// Self-attention keys and values so far, `[position][d]`.
    keys: Vec<f32>,
    values: Vec<f32>,
    /// Cross-attention, per head: keys `[1500][dh]` and values transposed `[dh][1500]`.
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
) -> LayerCache {
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
    LayerCache { keys: Vec::new(), values: Vec::new(), cross_keys, cross_values_t }
}

impl LayerCache {
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

    /// Attention of `n` query rows (`n × d`) over the audio.
    pub fn cross_attention(&self, q: &[f32], heads: usize) -> Vec<f32> {
        let dh = self.cross_keys.first().map_or(1, |k| k.k);
        let d = dh * heads;
        let n = q.len() / d.max(1);
        let t = self.cross_keys.first().map_or(0, |k| k.rows);
        let scale = 1.0 / (dh as f32).sqrt();
        let mut out = vec![0.0; n * d];
        let mut scores = vec![0.0; t];
        let mut o = vec![0.0; dh];
        let (mut qq, q_levels) =
            (QuantRows::<i16>::default(), activation_levels(dh, WEIGHT_LEVELS));
        let (mut pq, p_levels) = (QuantRows::<i16>::default(), activation_levels(t, WEIGHT_LEVELS));
        for h in 0..heads {
            for i in 0..n {
                qq.fill(&q[i * d + h * dh..i * d + (h + 1) * dh], 1, dh, q_levels);
                matmul_t(qq.view(), self.cross_keys[h].view(), scale, None, &mut scores);
                pq.fill_softmax(&mut scores, 1, t, p_levels);
                matmul_t(pq.view(), self.cross_values_t[h].view(), 1.0, None, &mut o);
                out[i * d + h * dh..i * d + (h + 1) * dh].copy_from_slice(&o);
            }
        }
        out
    }
}
