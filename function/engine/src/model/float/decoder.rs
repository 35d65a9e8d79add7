use candle_core::{Device, IndexOp, Module, Result, Tensor};
use candle_nn::{LayerNorm, VarBuilder, layer_norm};

use super::attention::{Attention, append_time};
use super::encoder::{Mlp, ln_count};
use crate::model::{Config, Head};

struct Block {
    self_ln: LayerNorm,
    self_attn: Attention,
    cross_ln: LayerNorm,
    cross_attn: Attention,
    mlp_ln: LayerNorm,
    mlp: Mlp,
}

pub struct Decoder {
    /// The token embedding, also the output projection (tied weights).
    embed: Tensor,
    positions: Tensor,
    blocks: Vec<Block>,
    ln: LayerNorm,
    device: Device,
}

/// One window's cross-attention keys and values, per block, `[1, heads, 1500, d_head]`.
pub struct Context {
    pub(super) cross_kv: Vec<(Tensor, Tensor)>,
}

/// One sequence's self-attention keys and values, per block (tensors are shared on clone and
/// replaced, never written, as the sequence grows).
#[derive(Clone)]
pub struct Sequence {
    self_kv: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl crate::model::SequenceState for Sequence {
    fn len(&self) -> usize {
        self.len
    }
}

/// Where a forward pass puts the cross-attention scores it is asked for.
pub struct Capture<'a> {
    pub heads: &'a [Head],
    /// One `tokens × frames` matrix per head, in `heads`' order.
    pub scores: Vec<Vec<f32>>,
}

impl Decoder {
    pub fn load(vb: VarBuilder<'_>, c: &Config) -> Result<Self> {
        let d = c.d_model;
        let h = c.decoder_attention_heads;
        let blocks = (0..c.decoder_layers)
            .map(|i| {
                let vb = vb.pp(format!("layers.{i}"));
                Ok(Block {
                    self_ln: layer_norm(d, 1e-5, vb.pp("self_attn_layer_norm"))?,
                    self_attn: Attention::load(vb.pp("self_attn"), d, h)?,
                    cross_ln: layer_norm(d, 1e-5, vb.pp("encoder_attn_layer_norm"))?,
                    cross_attn: Attention::load(vb.pp("encoder_attn"), d, h)?,
                    mlp_ln: layer_norm(d, 1e-5, vb.pp("final_layer_norm"))?,
                    mlp: Mlp::load(vb.clone(), d, 4 * d)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embed: vb.get((c.vocab_size, d), "embed_tokens.weight")?,
            positions: vb.get((c.max_target_positions, d), "embed_positions.weight")?,
            blocks,
            ln: layer_norm(d, 1e-5, vb.pp("layer_norm"))?,
            device: vb.device().clone(),
        })
    }

    pub fn parameter_count(&self) -> usize {
        self.embed.elem_count()
            + self.positions.elem_count()
            + ln_count(&self.ln)
            + self
                .blocks
                .iter()
                .map(|b| {
                    ln_count(&b.self_ln)
                        + b.self_attn.parameter_count()
                        + ln_count(&b.cross_ln)
                        + b.cross_attn.parameter_count()
                        + ln_count(&b.mlp_ln)
                        + b.mlp.parameter_count()
                })
                .sum::<usize>()
    }

    pub fn context(&self, features: &Tensor) -> Result<Context> {
        let cross_kv = self
            .blocks
            .iter()
            .map(|b| b.cross_attn.key_value(features))
            .collect::<Result<Vec<_>>>()?;
        Ok(Context { cross_kv })
    }

    pub fn sequence(&self) -> Sequence {
        Sequence { self_kv: vec![None; self.blocks.len()], len: 0 }
    }

    /// Feeds `tokens` to one sequence; returns their final hidden states `[n, d]` (before the
    /// last layer norm).
    pub fn forward(
        &self,
        ctx: &Context,
        seq: &mut Sequence,
        tokens: &[u32],
        mut capture: Option<&mut Capture<'_>>,
    ) -> Result<Tensor> {
        let n = tokens.len();
        let mut x = self
            .embed
            .index_select(&Tensor::new(tokens, &self.device)?, 0)?
            .broadcast_add(&self.positions.narrow(0, seq.len, n)?)?
            .unsqueeze(0)?;
        // New token i (absolute position len + i) may see cached positions and new ones up to i.
        let mask = if n > 1 {
            let past = seq.len;
            let total = past + n;
            let m: Vec<f32> = (0..n)
                .flat_map(|i| {
                    (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 })
                })
                .collect();
            Some(Tensor::from_vec(m, (n, total), &self.device)?)
        } else {
            None
        };
        for (i, b) in self.blocks.iter().enumerate() {
            let h = b.self_ln.forward(&x)?;
            let (k, v) = b.self_attn.key_value(&h)?;
            let (k, v) = match &seq.self_kv[i] {
                Some((ck, cv)) => (append_time(ck, &k)?, append_time(cv, &v)?),
                None => (k, v),
            };
            x = (&x + b.self_attn.attend(&h, &k, &v, mask.as_ref())?)?;
            seq.self_kv[i] = Some((k, v));
            let (ck, cv) = &ctx.cross_kv[i];
            let h = b.cross_ln.forward(&x)?;
            let scores = b.cross_attn.scores(&h, ck)?;
            if let Some(c) = capture.as_deref_mut() {
                for (j, head) in c.heads.iter().enumerate() {
                    if head.layer == i {
                        c.scores[j] = scores.i((0, head.head))?.flatten_all()?.to_vec1::<f32>()?;
                    }
                }
            }
            x = (&x + b.cross_attn.attend_scores(&scores, cv, None)?)?;
            x = (&x + b.mlp.forward(&b.mlp_ln.forward(&x)?)?)?;
        }
        seq.len += n;
        x.i(0)
    }

    /// Logits of hidden rows `[rows, d]`.
    pub fn logits(&self, x: &Tensor) -> Result<Vec<Vec<f32>>> {
        self.ln.forward(x)?.matmul(&self.embed.t()?)?.to_vec2::<f32>()
    }
}
