use candle_core::{Device, IndexOp, Result, Tensor};
use candle_nn::{LayerNorm, Module, VarBuilder, layer_norm};

use super::attention::{Attention, append_time};
use super::encoder::{Mlp, ln_count};
use super::linear::TokenEmbedding;
use super::{Config, Precision};

struct Block {
    self_ln: LayerNorm,
    self_attn: Attention,
    cross_ln: LayerNorm,
    cross_attn: Attention,
    mlp_ln: LayerNorm,
    mlp: Mlp,
}

pub struct Decoder {
    embed: TokenEmbedding,
    positions: Tensor,
    blocks: Vec<Block>,
    ln: LayerNorm,
    device: Device,
}

/// What one sequence has computed so far: self-attention keys/values for every token fed, and
/// the cross-attention keys/values of its audio, computed once per window.
pub struct DecoderState {
    self_kv: Vec<Option<(Tensor, Tensor)>>,
    cross_kv: Vec<(Tensor, Tensor)>,
    len: usize,
}

impl DecoderState {
    /// Tokens fed so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Decoder {
    pub fn load(vb: VarBuilder<'_>, c: &Config, precision: Precision) -> Result<Self> {
        let d = c.d_model;
        let h = c.decoder_attention_heads;
        let blocks = (0..c.decoder_layers)
            .map(|i| {
                let vb = vb.pp(format!("layers.{i}"));
                Ok(Block {
                    self_ln: layer_norm(d, 1e-5, vb.pp("self_attn_layer_norm"))?,
                    self_attn: Attention::load(vb.pp("self_attn"), d, h, precision)?,
                    cross_ln: layer_norm(d, 1e-5, vb.pp("encoder_attn_layer_norm"))?,
                    cross_attn: Attention::load(vb.pp("encoder_attn"), d, h, precision)?,
                    mlp_ln: layer_norm(d, 1e-5, vb.pp("final_layer_norm"))?,
                    mlp: Mlp::load(vb.clone(), d, 4 * d, precision)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embed: TokenEmbedding::new(vb.get((c.vocab_size, d), "embed_tokens.weight")?, precision)?,
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

    pub fn start(&self, features: &Tensor) -> Result<DecoderState> {
        let cross_kv = self.blocks.iter().map(|b| b.cross_attn.key_value(features)).collect::<Result<Vec<_>>>()?;
        Ok(DecoderState { self_kv: vec![None; self.blocks.len()], cross_kv, len: 0 })
    }

    pub fn forward(&self, state: &mut DecoderState, tokens: &[u32], rows: &[usize]) -> Result<Vec<Vec<f32>>> {
        let n = tokens.len();
        let mut x = self
            .embed
            .lookup(tokens, &self.device)?
            .broadcast_add(&self.positions.narrow(0, state.len, n)?)?
            .unsqueeze(0)?;
        // New token i (absolute position len + i) may see cached positions and new ones up to i.
        let mask = if n > 1 {
            let past = state.len;
            let total = past + n;
            let m: Vec<f32> = (0..n)
                .flat_map(|i| (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 }))
                .collect();
            Some(Tensor::from_vec(m, (n, total), &self.device)?)
        } else {
            None
        };
        for (i, b) in self.blocks.iter().enumerate() {
            let h = b.self_ln.forward(&x)?;
            let (k, v) = b.self_attn.key_value(&h)?;
            let (k, v) = match &state.self_kv[i] {
                Some((ck, cv)) => (append_time(ck, &k)?, append_time(cv, &v)?),
                None => (k, v),
            };
            x = (&x + b.self_attn.attend(&h, &k, &v, mask.as_ref())?)?;
            state.self_kv[i] = Some((k, v));
            let (ck, cv) = &state.cross_kv[i];
            x = (&x + b.cross_attn.attend(&b.cross_ln.forward(&x)?, ck, cv, None)?)?;
            x = (&x + b.mlp.forward(&b.mlp_ln.forward(&x)?)?)?;
        }
        state.len += n;
        let x = x.i(0)?;
        let picked: Vec<Tensor> = rows.iter().map(|&r| x.narrow(0, r, 1)).collect::<Result<_>>()?;
        let x = self.ln.forward(&Tensor::cat(&picked, 0)?)?;
        // The output projection is tied to the token embedding.
        self.embed.logits(&x)
    }
}
