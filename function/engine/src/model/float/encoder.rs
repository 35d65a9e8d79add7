use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm, Linear, VarBuilder, conv1d, layer_norm, linear};

use super::attention::{Attention, linear_count};
use crate::model::Config;

pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    pub fn load(vb: VarBuilder<'_>, d: usize, hidden: usize) -> Result<Self> {
        Ok(Self { fc1: linear(d, hidden, vb.pp("fc1"))?, fc2: linear(hidden, d, vb.pp("fc2"))? })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2.forward(&self.fc1.forward(x)?.gelu_erf()?)
    }

    pub fn parameter_count(&self) -> usize {
        linear_count(&self.fc1) + linear_count(&self.fc2)
    }
}

pub fn ln_count(ln: &LayerNorm) -> usize {
    ln.weight().elem_count() + ln.bias().map_or(0, |b| b.elem_count())
}

fn conv_count(c: &Conv1d) -> usize {
    c.weight().elem_count() + c.bias().map_or(0, |b| b.elem_count())
}

struct Block {
    attn_ln: LayerNorm,
    attn: Attention,
    mlp_ln: LayerNorm,
    mlp: Mlp,
}

pub struct Encoder {
    conv1: Conv1d,
    conv2: Conv1d,
    positions: Tensor,
    blocks: Vec<Block>,
    ln_post: LayerNorm,
}

impl Encoder {
    pub fn load(vb: VarBuilder<'_>, c: &Config) -> Result<Self> {
        let d = c.d_model;
        let blocks = (0..c.encoder_layers)
            .map(|i| {
                let vb = vb.pp(format!("layers.{i}"));
                Ok(Block {
                    attn_ln: layer_norm(d, 1e-5, vb.pp("self_attn_layer_norm"))?,
                    attn: Attention::load(vb.pp("self_attn"), d, c.encoder_attention_heads)?,
                    mlp_ln: layer_norm(d, 1e-5, vb.pp("final_layer_norm"))?,
                    mlp: Mlp::load(vb.clone(), d, 4 * d)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let conv = |name: &str, d_in: usize, stride: usize| {
            let cfg = Conv1dConfig { padding: 1, stride, ..Default::default() };
            conv1d(d_in, d, 3, cfg, vb.pp(name))
        };
        Ok(Self {
            conv1: conv("conv1", c.num_mel_bins, 1)?,
            conv2: conv("conv2", d, 2)?,
            positions: vb.get((c.max_source_positions, d), "embed_positions.weight")?,
            blocks,
            ln_post: layer_norm(d, 1e-5, vb.pp("layer_norm"))?,
        })
    }

    /// `[1, n_mels, 3000]` → `[1, 1500, d]`.
    pub fn forward(&self, mel: &Tensor) -> Result<Tensor> {
        let x = self.conv1.forward(mel)?.gelu_erf()?;
        let x = self.conv2.forward(&x)?.gelu_erf()?.transpose(1, 2)?;
        let t = x.dim(1)?;
        let mut x = x.broadcast_add(&self.positions.narrow(0, 0, t)?)?;
        for b in &self.blocks {
            x = (&x + b.attn.forward(&b.attn_ln.forward(&x)?)?)?;
            x = (&x + b.mlp.forward(&b.mlp_ln.forward(&x)?)?)?;
        }
        self.ln_post.forward(&x)
    }

    pub fn parameter_count(&self) -> usize {
        conv_count(&self.conv1)
            + conv_count(&self.conv2)
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
