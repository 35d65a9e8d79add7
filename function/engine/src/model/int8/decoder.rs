//! The int8 decoder step on plain vectors: one token costs ~30 small products, and through
//! candle each of its ~150 tensor operations costs more in wasm than the arithmetic. The rows of
//! several sequences (a step's beams) go through each projection together, so the weights are
//! read once per step, not once per beam.

use candle_core::Result;
use candle_nn::VarBuilder;

use super::caches::{CrossCache, SelfCache, cross_cache};
use super::encoder::Mlp;
use super::layer_norm::LnParams;
use super::linear::{self, QLinear, TokenEmbedding};
use crate::model::Config;
use crate::model::tensor_file::TensorFile;

struct Block {
    self_ln: LnParams,
    /// Self-attention q, k, v and out projections.
    self_attn: [QLinear; 4],
    cross_ln: LnParams,
    cross_attn: [QLinear; 4],
    mlp_ln: LnParams,
    mlp: Mlp,
}

fn attention(vb: VarBuilder<'_>, d: usize) -> Result<[QLinear; 4]> {
    Ok([
        linear::load(vb.pp("q_proj"), d, d, true)?,
        linear::load(vb.pp("k_proj"), d, d, false)?,
        linear::load(vb.pp("v_proj"), d, d, true)?,
        linear::load(vb.pp("out_proj"), d, d, true)?,
    ])
}

pub struct Decoder {
    embed: TokenEmbedding,
    positions: Vec<f32>,
    blocks: Vec<Block>,
    final_norm: LnParams,
    d: usize,
    heads: usize,
}

/// One window's cross-attention keys and values, per block.
pub struct Context {
    layers: Vec<CrossCache>,
}

/// One sequence's self-attention caches, per block.
#[derive(Clone)]
pub struct Sequence {
    layers: Vec<SelfCache>,
    len: usize,
}

impl crate::model::SequenceState for Sequence {
    fn len(&self) -> usize {
        self.len
    }
}

/// Sees `(layer, head, row, scores)` for every cross-attention row before its softmax.
pub type ScoresOf<'a> = &'a mut dyn FnMut(usize, usize, usize, &[f32]);

impl Decoder {
    /// `file`: the weights `vb` reads, for the token embedding (read by rows).
    pub fn load(vb: VarBuilder<'_>, file: &TensorFile, c: &Config) -> Result<Self> {
        let d = c.d_model;
        let blocks = (0..c.decoder_layers)
            .map(|i| {
                let vb = vb.pp(format!("layers.{i}"));
                Ok(Block {
                    self_ln: LnParams::load(vb.pp("self_attn_layer_norm"), d)?,
                    self_attn: attention(vb.pp("self_attn"), d)?,
                    cross_ln: LnParams::load(vb.pp("encoder_attn_layer_norm"), d)?,
                    cross_attn: attention(vb.pp("encoder_attn"), d)?,
                    mlp_ln: LnParams::load(vb.pp("final_layer_norm"), d)?,
                    mlp: Mlp::load(vb.clone(), d, 4 * d)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let name = format!("{}.embed_tokens.weight", vb.prefix());
        file.expect_shape(&name, &[c.vocab_size, d])?;
        Ok(Self {
            embed: TokenEmbedding::from_rows(c.vocab_size, d, |rows| file.rows_f32(&name, rows))?,
            positions: vb
                .get((c.max_target_positions, d), "embed_positions.weight")?
                .flatten_all()?
                .to_vec1::<f32>()?,
            blocks,
            final_norm: LnParams::load(vb.pp("layer_norm"), d)?,
            d,
            heads: c.decoder_attention_heads,
        })
    }

    pub fn parameter_count(&self) -> usize {
        self.embed.elem_count()
            + self.positions.len()
            + self.final_norm.count()
            + self
                .blocks
                .iter()
                .map(|b| {
                    b.self_ln.count()
                        + b.cross_ln.count()
                        + b.mlp_ln.count()
                        + b.self_attn
                            .iter()
                            .chain(&b.cross_attn)
                            .map(QLinear::parameter_count)
                            .sum::<usize>()
                        + b.mlp.parameter_count()
                })
                .sum::<usize>()
    }

    /// The cross-attention keys and values of a window's features (`t × d`).
    pub fn context(&self, features: &[f32], t: usize) -> Context {
        let layers = self
            .blocks
            .iter()
            .map(|b| cross_cache(&b.cross_attn[1], &b.cross_attn[2], features, t, self.heads))
            .collect();
        Context { layers }
    }

    pub fn sequence(&self) -> Sequence {
        Sequence { layers: vec![SelfCache::default(); self.blocks.len()], len: 0 }
    }

    /// Feeds `tokens`, split evenly among `seqs`; returns every row's final hidden state
    /// (before the last layer norm), `tokens × d`. `None` when a position is past the table.
    pub fn forward(
        &self,
        ctx: &Context,
        seqs: &mut [Sequence],
        tokens: &[u32],
        mut scores_of: Option<ScoresOf<'_>>,
    ) -> Option<Vec<f32>> {
        let (n, d, heads) = (tokens.len(), self.d, self.heads);
        let per = n / seqs.len().max(1);
        let mut x = self.embed.lookup(tokens);
        for (s, seq) in seqs.iter().enumerate() {
            let at = s * per * d;
            let pos = self.positions.get(seq.len * d..(seq.len + per) * d)?;
            x.get_mut(at..at + per * d)?.iter_mut().zip(pos).for_each(|(x, p)| *x += p);
        }
        for (li, (b, cross)) in self.blocks.iter().zip(&ctx.layers).enumerate() {
            let [q, k, v, o] = &b.self_attn;
            let h = q.quantise_input(&b.self_ln.apply(&x), n);
            let (qs, ks, vs) =
                (q.forward_quantised(&h), k.forward_quantised(&h), v.forward_quantised(&h));
            let mut a = Vec::with_capacity(n * d);
            for (s, seq) in seqs.iter_mut().enumerate() {
                let r = s * per * d..(s + 1) * per * d;
                let cache = seq.layers.get_mut(li)?;
                a.extend(cache.self_attention(&qs[r.clone()], &ks[r.clone()], &vs[r], d, heads));
            }
            x.iter_mut().zip(o.forward_rows(&a, n)).for_each(|(x, y)| *x += y);
            let [q, _, _, o] = &b.cross_attn;
            let qs = q.forward_rows(&b.cross_ln.apply(&x), n);
            let a = match scores_of.as_deref_mut() {
                Some(f) => {
                    cross.cross_attention(&qs, heads, Some(&mut |h, i, s: &[f32]| f(li, h, i, s)))
                }
                None => cross.cross_attention(&qs, heads, None),
            };
            x.iter_mut().zip(o.forward_rows(&a, n)).for_each(|(x, y)| *x += y);
            let m = b.mlp.forward_rows(&b.mlp_ln.apply(&x), d);
            x.iter_mut().zip(m).for_each(|(x, y)| *x += y);
        }
        seqs.iter_mut().for_each(|s| s.len += per);
        Some(x)
    }

    /// Logits of the hidden rows `rows` of `x` (`tokens × d`).
    pub fn logits(&self, x: &[f32], rows: &[usize]) -> Vec<Vec<f32>> {
        let d = self.d;
        let picked: Vec<f32> =
            rows.iter().filter_map(|&r| x.get(r * d..(r + 1) * d)).flatten().copied().collect();
        // The output projection is tied to the token embedding.
        self.embed.logits(&self.final_norm.apply(&picked), picked.len() / d.max(1))
    }
}
