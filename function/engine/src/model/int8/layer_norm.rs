//! Layer norm on plain rows (candle's costs a tensor round trip per call).

use wide::f32x4;

pub struct LnParams {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl LnParams {
    pub fn load(vb: candle_nn::VarBuilder<'_>, d: usize) -> candle_core::Result<Self> {
        Ok(Self { weight: vb.get(d, "weight")?.to_vec1()?, bias: vb.get(d, "bias")?.to_vec1()? })
    }

    pub fn count(&self) -> usize {
        self.weight.len() + self.bias.len()
    }

    /// Layer norm of each `d`-row of `x` (ε = 1e-5, as Whisper's).
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let d = self.weight.len().max(1);
        let mut out = vec![0.0; x.len()];
        for (row, o) in x.chunks(d).zip(out.chunks_mut(d)) {
            let mean = sum_in_order(row, |v| v) / d as f32;
            let var = sum_in_order(row, |v| (v - mean) * (v - mean)) / d as f32;
            let inv = 1.0 / (var + 1e-5).sqrt();
            // Lane by lane the same operations as one value at a time, so the same results.
            let (m, inv4) = (f32x4::splat(mean), f32x4::splat(inv));
            let (o4, o_rest) = o.as_chunks_mut::<4>();
            let (v4, v_rest) = row.as_chunks::<4>();
            let (w4, w_rest) = self.weight.as_chunks::<4>();
            let (b4, b_rest) = self.bias.as_chunks::<4>();
            for (((o, v), w), b) in o4.iter_mut().zip(v4).zip(w4).zip(b4) {
                let y = (f32x4::from(*v) - m) * inv4 * f32x4::from(*w) + f32x4::from(*b);
                *o = y.to_array();
            }
            for (((o, v), w), b) in o_rest.iter_mut().zip(v_rest).zip(w_rest).zip(b_rest) {
                *o = (v - mean) * inv * w + b;
            }
        }
        out
    }
}

/// Σ f(x) in order, as `iter().map(f).sum()` rounds it, eight values per loop iteration: under
/// the host's epoch checks every iteration also pays a check and a round trip of the running
/// sum through its stack slot, which at one add per iteration cost more than the add. (Four
/// running sums would be faster still, but round differently, and Whisper on noise sits on
/// decision edges that a last-bit change moves.)
fn sum_in_order(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let (v, rest) = x.as_chunks::<8>();
    let mut s = -0.0;
    for c in v {
        for &x in c {
            s += f(x);
        }
    }
    for &x in rest {
        s += f(x);
    }
    s
}
