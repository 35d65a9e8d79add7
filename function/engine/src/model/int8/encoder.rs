//! The int8 encoder on plain rows: one buffer per live activation, no tensor round trips, so an
//! instance's private memory stays small.

use candle_core::Result;
use candle_nn::VarBuilder;

use super::attention::{self, Part};
use super::layer_norm::LnParams;
use super::linear::{self, Narrow, Product, QLinear, Wide};
use crate::kernels::vmath;
use crate::model::Config;

/// Rows (time steps) per block where a layer's intermediate is wider than its input.
const ROW_BLOCK: usize = 128;

pub struct Mlp<P: Product = Wide> {
    fc1: QLinear<P>,
    fc2: QLinear<P>,
}

impl<P: Product> Mlp<P> {
    pub fn load(vb: VarBuilder<'_>, d: usize, hidden: usize) -> Result<Self> {
        Ok(Self {
            fc1: linear::load(vb.pp("fc1"), d, hidden, true)?,
            fc2: linear::load(vb.pp("fc2"), hidden, d, true)?,
        })
    }

    /// `rows × d` → `rows × d`, in blocks of rows: the 4·d-wide hidden layer never exists for
    /// all 1500 at once.
    pub fn forward_rows(&self, x: &[f32], d: usize) -> Vec<f32> {
        let d = d.max(1);
        let mut out = Vec::with_capacity(x.len());
        for block in x.chunks(ROW_BLOCK * d) {
            let rows = block.len() / d;
            let mut h = self.fc1.forward_rows(block, rows);
            vmath::gelu(&mut h);
            out.extend(self.fc2.forward_rows(&h, rows));
        }
        out
    }

    pub fn parameter_count(&self) -> usize {
        self.fc1.parameter_count() + self.fc2.parameter_count()
    }
}

/// A kernel-3, padding-1 convolution over time, as a product of int8 weights `[out, in × 3]`
/// with the im2col rows of the input.
struct Conv {
    w: QLinear<Narrow>,
    d_in: usize,
    stride: usize,
}

impl Conv {
    fn load(vb: VarBuilder<'_>, d_in: usize, d_out: usize, stride: usize) -> Result<Self> {
        let weight = vb.get((d_out, d_in, 3), "weight")?.reshape((d_out, d_in * 3))?;
        let w = QLinear::new(&weight, Some(&vb.get(d_out, "bias")?))?;
        Ok(Self { w, d_in, stride })
    }

    /// `at(channel, time)` of an input `t_in` long → GELU(conv), time-major `[t_out, d_out]`.
    fn forward_gelu(&self, t_in: usize, at: impl Fn(usize, usize) -> f32) -> (Vec<f32>, usize) {
        let (d_in, stride) = (self.d_in, self.stride);
        let t_out = (t_in.max(1) - 1) / stride + 1;
        let mut y = Vec::new();
        let mut cols = Vec::with_capacity(ROW_BLOCK * d_in * 3);
        // im2col a block of output times at a time, so that the 3·d_in-wide rows stay small.
        for t0 in (0..t_out).step_by(ROW_BLOCK) {
            let t1 = (t0 + ROW_BLOCK).min(t_out);
            cols.clear();
            for t in t0..t1 {
                for c in 0..d_in {
                    for k in 0..3 {
                        // Input index t·stride + k − 1 (padding 1).
                        let i = (t * stride + k).checked_sub(1).filter(|&i| i < t_in);
                        cols.push(i.map_or(0.0, |i| at(c, i)));
                    }
                }
            }
            let mut block = self.w.forward_rows(&cols, t1 - t0);
            vmath::gelu(&mut block);
            y.extend(block);
        }
        (y, t_out)
    }
}

struct Block {
    attn_ln: LnParams,
    q: QLinear<Narrow>,
    k: QLinear<Narrow>,
    v: QLinear<Narrow>,
    out: QLinear<Narrow>,
    heads: usize,
    mlp_ln: LnParams,
    mlp: Mlp<Narrow>,
}

pub struct Encoder {
    conv1: Conv,
    conv2: Conv,
    positions: Vec<f32>,
    blocks: Vec<Block>,
    post: LnParams,
}

impl Encoder {
    pub fn load(vb: VarBuilder<'_>, c: &Config) -> Result<Self> {
        let d = c.d_model;
        let blocks = (0..c.encoder_layers)
            .map(|i| {
                let vb = vb.pp(format!("layers.{i}"));
                let a = vb.pp("self_attn");
                Ok(Block {
                    attn_ln: LnParams::load(vb.pp("self_attn_layer_norm"), d)?,
                    q: linear::load(a.pp("q_proj"), d, d, true)?,
                    k: linear::load(a.pp("k_proj"), d, d, false)?,
                    v: linear::load(a.pp("v_proj"), d, d, true)?,
                    out: linear::load(a.pp("out_proj"), d, d, true)?,
                    heads: c.encoder_attention_heads,
                    mlp_ln: LnParams::load(vb.pp("final_layer_norm"), d)?,
                    mlp: Mlp::load(vb.clone(), d, 4 * d)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            conv1: Conv::load(vb.pp("conv1"), c.num_mel_bins, d, 1)?,
            conv2: Conv::load(vb.pp("conv2"), d, d, 2)?,
            positions: vb
                .get((c.max_source_positions, d), "embed_positions.weight")?
                .flatten_all()?
                .to_vec1::<f32>()?,
            blocks,
            post: LnParams::load(vb.pp("layer_norm"), d)?,
        })
    }

    /// A window's log-mel `[n_mels][t_in]` → its features, time-major `t × d`; returns `t`.
    pub fn forward(&self, mel: &[f32], n_mels: usize) -> (Vec<f32>, usize) {
        let t_in = mel.len() / n_mels.max(1);
        // The mel is channel-major; conv1's output is time-major.
        let (h, t1) = self.conv1.forward_gelu(t_in, |c, i| mel[c * t_in + i]);
        let d = h.len() / t1.max(1);
        let (mut x, t) = self.conv2.forward_gelu(t1, |c, i| h[i * d + c]);
        drop(h);
        x.iter_mut().zip(&self.positions).for_each(|(x, p)| *x += p);
        for b in &self.blocks {
            let qx = b.q.quantise_input(&b.attn_ln.apply(&x), t);
            let dh = d / b.heads.max(1);
            let a = attention::self_attention_by_head(t, d, b.heads, |part, h| {
                let proj = match part {
                    Part::Query => &b.q,
                    Part::Key => &b.k,
                    Part::Value => &b.v,
                };
                proj.forward_quantised_columns(&qx, h * dh, dh)
            });
            drop(qx);
            x.iter_mut().zip(b.out.forward_rows(&a, t)).for_each(|(x, y)| *x += y);
            drop(a);
            let y = b.mlp.forward_rows(&b.mlp_ln.apply(&x), d);
            x.iter_mut().zip(y).for_each(|(x, y)| *x += y);
        }
        (self.post.apply(&x), t)
    }

    pub fn parameter_count(&self) -> usize {
        self.conv1.w.parameter_count()
            + self.conv2.w.parameter_count()
            + self.positions.len()
            + self.post.count()
            + self
                .blocks
                .iter()
                .map(|b| {
                    b.attn_ln.count()
                        + [&b.q, &b.k, &b.v, &b.out]
                            .iter()
                            .map(|l| l.parameter_count())
                            .sum::<usize>()
                        + b.mlp_ln.count()
                        + b.mlp.parameter_count()
                })
                .sum::<usize>()
    }
}
