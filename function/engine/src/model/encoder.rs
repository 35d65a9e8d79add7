use candle_core::{Result, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm, Linear, Module, VarBuilder, conv1d, layer_norm, linear};

use super::Config;
use super::attention::Attention;

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
        [&self.fc1, &self.fc2].iter().map(|l| l.weight().elem_count() + l.bias().map_or(0, |b| b.elem_count())).sum()
    }
}

pub fn ln_count(ln: &LayerNorm) -> usize {
    ln.weight().elem_count() + ln.bias().map_or(0, |b| b.elem_count())
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
        let cfg1 = Conv1dConfig { padding: 1, ..Default::default() };
        let cfg2 = Conv1dConfig { padding: 1, stride: 2, ..Default::default() };
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
        Ok(Self {
            conv1: conv1d(c.num_mel_bins, d, 3, cfg1, vb.pp("conv1"))?,
            conv2: conv1d(d, d, 3, cfg2, vb.pp("conv2"))?,
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
        let conv = |c: &Conv1d| c.weight().elem_count() + c.bias().map_or(0, |b| b.elem_count());
        conv(&self.conv1)
            + conv(&self.conv2)
            + self.positions.elem_count()
            + ln_count(&self.ln_post)
            + self
                .blocks
                .iter()
                .map(|b| {
                    ln_count(&b.attn_ln) + b.attn.parameter_count() + ln_count(&b.mlp_ln) + b.mlp.parameter_count()
                })
                .sum::<usize>()
    }
}
