use candle_core::{Device, IndexOp, Result, Tensor};
use candle_nn::{LayerNorm, Module, VarBuilder, layer_norm};

use super::attention::{Attention, append_time};
use super::encoder::{Mlp, ln_count, mixed};
use super::int_decoder::{LayerCache, cross_cache};
use super::layer_norm::LnParams;
use super::linear::TokenEmbedding;
use super::tensor_file::TensorFile;
use super::{Config, Precision};

struct Block {
    self_ln: LayerNorm,
    self_attn: Attention,
    cross_ln: LayerNorm,
    cross_attn: Attention,
    mlp_ln: LayerNorm,
    mlp: Mlp,
}

/// What the int8 step needs beyond the blocks' own layers.
struct IntParts {
    /// Per block: self-attention, cross-attention and MLP layer norms.
    norms: Vec<[LnParams; 3]>,
    final_norm: LnParams,
    positions: Vec<f32>,
}

pub struct Decoder {
    int: Option<IntParts>,
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
    /// The int8 step's caches, one per block (empty in f32).
    int: Vec<LayerCache>,
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
    /// `file`: the weights `vb` reads, for the token embedding (read by rows in int8).
    pub fn load(
        vb: VarBuilder<'_>,
        file: &TensorFile,
        c: &Config,
        precision: Precision,
    ) -> Result<Self> {
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
        let positions = vb.get((c.max_target_positions, d), "embed_positions.weight")?;
        let ln = layer_norm(d, 1e-5, vb.pp("layer_norm"))?;
        let int = match precision {
            Precision::F32 => None,
            Precision::Int8 => Some(IntParts {
                norms: blocks
                    .iter()
                    .map(|b| {
                        Ok([
                            LnParams::from_candle(&b.self_ln)?,
                            LnParams::from_candle(&b.cross_ln)?,
                            LnParams::from_candle(&b.mlp_ln)?,
                        ])
                    })
                    .collect::<Result<_>>()?,
                final_norm: LnParams::from_candle(&ln)?,
                positions: positions.flatten_all()?.to_vec1::<f32>()?,
            }),
        };
        Ok(Self {
            int,
            embed: match precision {
                Precision::F32 => TokenEmbedding::new(
                    vb.get((c.vocab_size, d), "embed_tokens.weight")?,
                    precision,
                )?,
                Precision::Int8 => {
                    let name = format!("{}.embed_tokens.weight", vb.prefix());
                    file.expect_shape(&name, &[c.vocab_size, d])?;
                    TokenEmbedding::int8_from_rows(c.vocab_size, d, |rows| {
                        file.rows_f32(&name, rows)
                    })?
                }
            },
            positions,
            blocks,
            ln,
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
        if self.int.is_some() {
            let (_, t, _) = features.dims3()?;
            let f = features.flatten_all()?.to_vec1::<f32>()?;
            let int = self
                .blocks
                .iter()
                .map(|b| {
                    let [_, k, v, _] = b.cross_attn.int8().ok_or_else(mixed)?;
                    Ok(cross_cache(k, v, &f, t, b.cross_attn.heads()))
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(DecoderState { self_kv: vec![], cross_kv: vec![], int, len: 0 });
        }
        let cross_kv = self
            .blocks
            .iter()
            .map(|b| b.cross_attn.key_value(features))
            .collect::<Result<Vec<_>>>()?;
        Ok(DecoderState { self_kv: vec![None; self.blocks.len()], cross_kv, int: vec![], len: 0 })
    }

    fn forward_int(
        &self,
        parts: &IntParts,
        state: &mut DecoderState,
        tokens: &[u32],
        rows: &[usize],
    ) -> Result<Vec<Vec<f32>>> {
        let n = tokens.len();
        let d = parts.final_norm.weight.len();
        let mut x = self.embed.lookup(tokens, &self.device)?.flatten_all()?.to_vec1::<f32>()?;
        let pos = parts.positions.get(state.len * d..(state.len + n) * d).ok_or_else(mixed)?;
        x.iter_mut().zip(pos).for_each(|(x, p)| *x += p);
        for ((b, norms), cache) in self.blocks.iter().zip(&parts.norms).zip(&mut state.int) {
            let [q, k, v, o] = b.self_attn.int8().ok_or_else(mixed)?;
            let h = q.quantise_input(&norms[0].apply(&x), n);
            let a = cache.self_attention(
                &q.forward_quantised(&h),
                &k.forward_quantised(&h),
                &v.forward_quantised(&h),
                d,
                b.self_attn.heads(),
            );
            x.iter_mut().zip(o.forward_rows(&a, n)).for_each(|(x, y)| *x += y);
            let [q, _, _, o] = b.cross_attn.int8().ok_or_else(mixed)?;
            let a = cache
                .cross_attention(&q.forward_rows(&norms[1].apply(&x), n), b.cross_attn.heads());
            x.iter_mut().zip(o.forward_rows(&a, n)).for_each(|(x, y)| *x += y);
            let m = b.mlp.forward_rows(&norms[2].apply(&x), d).ok_or_else(mixed)?;
            x.iter_mut().zip(m).for_each(|(x, y)| *x += y);
        }
        state.len += n;
        let picked: Vec<f32> =
            rows.iter().filter_map(|&r| x.get(r * d..(r + 1) * d)).flatten().copied().collect();
        let h = parts.final_norm.apply(&picked);
        // The output projection is tied to the token embedding.
        self.embed.logits(&Tensor::from_vec(h, (picked.len() / d.max(1), d), &self.device)?)
    }

    pub fn forward(
        &self,
        state: &mut DecoderState,
        tokens: &[u32],
        rows: &[usize],
    ) -> Result<Vec<Vec<f32>>> {
        if let Some(parts) = &self.int {
            return self.forward_int(parts, state, tokens, rows);
        }
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
