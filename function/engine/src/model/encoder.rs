use candle_core::{Result, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm, Module, VarBuilder, conv1d, layer_norm};

use super::attention::Attention;
use super::int_attention::{self, Part};
use super::layer_norm::LnParams;
use super::linear::{Narrow, Product, Proj, QLinear, Wide};
use super::{Config, Precision};
use crate::kernels::vmath;

pub struct Mlp<P: Product = Wide> {
    fc1: Proj<P>,
    fc2: Proj<P>,
}

impl<P: Product> Mlp<P> {
    pub fn load(vb: VarBuilder<'_>, d: usize, hidden: usize, precision: Precision) -> Result<Self> {
        Ok(Self {
            fc1: Proj::load(vb.pp("fc1"), d, hidden, true, precision)?,
            fc2: Proj::load(vb.pp("fc2"), hidden, d, true, precision)?,
        })
    }

    /// `rows × d` → `rows × d` when the layers are int8, in blocks of rows: the 4·d-wide hidden
    /// layer never exists for all 1500 at once.
    pub fn forward_rows(&self, x: &[f32], d: usize) -> Option<Vec<f32>> {
        let (Proj::Int8(fc1), Proj::Int8(fc2)) = (&self.fc1, &self.fc2) else { return None };
        let d = d.max(1);
        let mut out = Vec::with_capacity(x.len());
        for block in x.chunks(ROW_BLOCK * d) {
            let rows = block.len() / d;
            let mut h = fc1.forward_rows(block, rows);
            vmath::gelu(&mut h);
            out.extend(fc2.forward_rows(&h, rows));
        }
        Some(out)
    }

    /// The f32 path (int8 layers run through [`Self::forward_rows`]).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2.forward(&self.fc1.forward(x)?.gelu_erf()?)
    }

    pub fn parameter_count(&self) -> usize {
        self.fc1.parameter_count() + self.fc2.parameter_count()
    }
}

/// Rows (time steps) per block where a layer's intermediate is wider than its input.
const ROW_BLOCK: usize = 128;

/// A kernel-3, padding-1 convolution over time.
enum Conv {
    F32(Conv1d),
    /// As a product of int8 weights `[out, in × 3]` with the im2col rows of the input.
    Int8 {
        w: QLinear<Narrow>,
        d_in: usize,
        stride: usize,
    },
}

impl Conv {
    fn load(
        vb: VarBuilder<'_>,
        d_in: usize,
        d_out: usize,
        stride: usize,
        precision: Precision,
    ) -> Result<Self> {
        let c =
            conv1d(d_in, d_out, 3, Conv1dConfig { padding: 1, stride, ..Default::default() }, vb)?;
        Ok(match precision {
            Precision::F32 => Self::F32(c),
            Precision::Int8 => {
                let w = QLinear::new(&c.weight().reshape((d_out, d_in * 3))?, c.bias())?;
                Self::Int8 { w, d_in, stride }
            }
        })
    }

    /// `at(channel, time)` of an input `t_in` long → GELU(conv), time-major `[t_out, d_out]`.
    fn forward_gelu(
        &self,
        t_in: usize,
        at: impl Fn(usize, usize) -> f32,
    ) -> Option<(Vec<f32>, usize)> {
        let Self::Int8 { w, d_in, stride } = self else { return None };
        let t_out = (t_in - 1) / stride + 1;
        let mut y = Vec::new();
        let mut cols = Vec::with_capacity(ROW_BLOCK * d_in * 3);
        // im2col a block of output times at a time, so that the 3·d_in-wide rows stay small.
        for t0 in (0..t_out).step_by(ROW_BLOCK) {
            let t1 = (t0 + ROW_BLOCK).min(t_out);
            cols.clear();
            for t in t0..t1 {
                for c in 0..*d_in {
                    for k in 0..3 {
                        // Input index t·stride + k − 1 (padding 1).
                        let i = (t * stride + k).checked_sub(1).filter(|&i| i < t_in);
                        cols.push(i.map_or(0.0, |i| at(c, i)));
                    }
                }
            }
            let mut block = w.forward_rows(&cols, t1 - t0);
            vmath::gelu(&mut block);
            y.extend(block);
        }
        Some((y, t_out))
    }

    fn parameter_count(&self) -> usize {
        match self {
            Self::F32(c) => c.weight().elem_count() + c.bias().map_or(0, |b| b.elem_count()),
            Self::Int8 { w, .. } => w.parameter_count(),
        }
    }
}

/// An int8 path met a layer loaded in another precision (cannot happen: a model is loaded in one).
pub(super) fn mixed() -> candle_core::Error {
    candle_core::Error::Msg("layers of mixed precisions".into())
}

pub fn ln_count(ln: &LayerNorm) -> usize {
    ln.weight().elem_count() + ln.bias().map_or(0, |b| b.elem_count())
}

struct Block {
    attn_ln: LayerNorm,
    attn: Attention<Narrow>,
    mlp_ln: LayerNorm,
    mlp: Mlp<Narrow>,
}

/// What the int8 forward needs beyond the blocks' own layers.
struct IntParts {
    /// Per block: the attention and MLP layer norms.
    norms: Vec<[LnParams; 2]>,
    post: LnParams,
    positions: Vec<f32>,
}

pub struct Encoder {
    int: Option<IntParts>,
    conv1: Conv,
    conv2: Conv,
    positions: Tensor,
    blocks: Vec<Block>,
    ln_post: LayerNorm,
}

impl Encoder {
    pub fn load(vb: VarBuilder<'_>, c: &Config, precision: Precision) -> Result<Self> {
        let d = c.d_model;
        let blocks = (0..c.encoder_layers)
            .map(|i| {
                let vb = vb.pp(format!("layers.{i}"));
                Ok(Block {
                    attn_ln: layer_norm(d, 1e-5, vb.pp("self_attn_layer_norm"))?,
                    attn: Attention::load(
                        vb.pp("self_attn"),
                        d,
                        c.encoder_attention_heads,
                        precision,
                    )?,
                    mlp_ln: layer_norm(d, 1e-5, vb.pp("final_layer_norm"))?,
                    mlp: Mlp::load(vb.clone(), d, 4 * d, precision)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let positions = vb.get((c.max_source_positions, d), "embed_positions.weight")?;
        let ln_post = layer_norm(d, 1e-5, vb.pp("layer_norm"))?;
        let int = match precision {
            Precision::F32 => None,
            Precision::Int8 => Some(IntParts {
                norms: blocks
                    .iter()
                    .map(|b| {
                        Ok([LnParams::from_candle(&b.attn_ln)?, LnParams::from_candle(&b.mlp_ln)?])
                    })
                    .collect::<Result<_>>()?,
                post: LnParams::from_candle(&ln_post)?,
                positions: positions.flatten_all()?.to_vec1::<f32>()?,
            }),
        };
        Ok(Self {
            int,
            conv1: Conv::load(vb.pp("conv1"), c.num_mel_bins, d, 1, precision)?,
            conv2: Conv::load(vb.pp("conv2"), d, d, 2, precision)?,
            positions,
            blocks,
            ln_post,
        })
    }

    /// `[1, n_mels, 3000]` → `[1, 1500, d]`.
    pub fn forward(&self, mel: &Tensor) -> Result<Tensor> {
        if let Some(parts) = &self.int {
            return self.forward_int(parts, mel);
        }
        let (Conv::F32(c1), Conv::F32(c2)) = (&self.conv1, &self.conv2) else {
            return Err(mixed());
        };
        let x = c2.forward(&c1.forward(mel)?.gelu_erf()?)?.gelu_erf()?.transpose(1, 2)?;
        let t = x.dim(1)?;
        let mut x = x.broadcast_add(&self.positions.narrow(0, 0, t)?)?;
        for b in &self.blocks {
            x = (&x + b.attn.forward(&b.attn_ln.forward(&x)?)?)?;
            x = (&x + b.mlp.forward(&b.mlp_ln.forward(&x)?)?)?;
        }
        self.ln_post.forward(&x)
    }

    /// The int8 forward on plain rows: one buffer per live activation, no tensor round trips,
    /// so an instance's private memory stays small.
    fn forward_int(&self, parts: &IntParts, mel: &Tensor) -> Result<Tensor> {
        let (_, _, t_in) = mel.dims3()?;
        let m = mel.flatten_all()?.to_vec1::<f32>()?;
        // The mel is channel-major; conv1's output is time-major.
        let (h, t1) = self.conv1.forward_gelu(t_in, |c, i| m[c * t_in + i]).ok_or_else(mixed)?;
        drop(m);
        let d = h.len() / t1.max(1);
        let (mut x, t) = self.conv2.forward_gelu(t1, |c, i| h[i * d + c]).ok_or_else(mixed)?;
        drop(h);
        let pos = parts.positions.get(..x.len()).ok_or_else(mixed)?;
        x.iter_mut().zip(pos).for_each(|(x, p)| *x += p);
        for (b, [attn_ln, mlp_ln]) in self.blocks.iter().zip(&parts.norms) {
            let [q, k, v, o] = b.attn.int8().ok_or_else(mixed)?;
            let qx = q.quantise_input(&attn_ln.apply(&x), t);
            let dh = d / b.attn.heads().max(1);
            let a = int_attention::self_attention_by_head(t, d, b.attn.heads(), |part, h| {
                let proj = match part {
                    Part::Query => q,
                    Part::Key => k,
                    Part::Value => v,
                };
                proj.forward_quantised_columns(&qx, h * dh, dh)
            });
            drop(qx);
            x.iter_mut().zip(o.forward_rows(&a, t)).for_each(|(x, y)| *x += y);
            drop(a);
            let y = b.mlp.forward_rows(&mlp_ln.apply(&x), d).ok_or_else(mixed)?;
            x.iter_mut().zip(y).for_each(|(x, y)| *x += y);
        }
        Tensor::from_vec(parts.post.apply(&x), (1, t, d), mel.device())
    }

    pub fn parameter_count(&self) -> usize {
        self.conv1.parameter_count()
            + self.conv2.parameter_count()
            + self.positions.elem_count()
            + ln_count(&self.ln_post)
            + self
                .blocks
                .iter()
                .map(|b| {
                    ln_count(&b.attn_ln)
                        + b.attn.parameter_count()
                        + ln_count(&b.mlp_ln)
                        + b.mlp.parameter_count()
                })
                .sum::<usize>()
    }
}
