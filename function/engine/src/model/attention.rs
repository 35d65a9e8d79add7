use candle_core::{D, Result, Tensor};
use candle_nn::VarBuilder;

use super::linear::{Product, Proj, QLinear, Wide};
use super::precision::Precision;

/// Projections on product `P`: `Narrow` in the encoder, `Wide` in the decoder.
pub struct Attention<P: Product = Wide> {
    q: Proj<P>,
    k: Proj<P>,
    v: Proj<P>,
    out: Proj<P>,
    heads: usize,
}

/// Splits `[1, T, d]` into `[1, heads, T, d/heads]`.
fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    x.reshape((b, t, heads, d / heads))?.transpose(1, 2)?.contiguous()
}

impl<P: Product> Attention<P> {
    pub fn load(vb: VarBuilder<'_>, d: usize, heads: usize, precision: Precision) -> Result<Self> {
        Ok(Self {
            q: Proj::load(vb.pp("q_proj"), d, d, true, precision)?,
            k: Proj::load(vb.pp("k_proj"), d, d, false, precision)?,
            v: Proj::load(vb.pp("v_proj"), d, d, true, precision)?,
            out: Proj::load(vb.pp("out_proj"), d, d, true, precision)?,
            heads,
        })
    }

    /// q, k, v and out projections, when they are int8.
    pub fn int8(&self) -> Option<[&QLinear<P>; 4]> {
        match (&self.q, &self.k, &self.v, &self.out) {
            (Proj::Int8(q), Proj::Int8(k), Proj::Int8(v), Proj::Int8(o)) => Some([q, k, v, o]),
            _ => None,
        }
    }

    pub fn heads(&self) -> usize {
        self.heads
    }

    pub fn parameter_count(&self) -> usize {
        [&self.q, &self.k, &self.v, &self.out].iter().map(|l| l.parameter_count()).sum()
    }

    /// Keys and values of `x`, split into heads: what the caches hold.
    pub fn key_value(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            split_heads(&self.k.forward(x)?, self.heads)?,
            split_heads(&self.v.forward(x)?, self.heads)?,
        ))
    }

    /// Attention of `x`'s queries over the given keys and values, with an optional additive mask
    /// `[T_q, T_k]`.
    pub fn attend(
        &self,
        x: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let q = split_heads(&self.q.forward(x)?, self.heads)?;
        let scale = 1.0 / ((d / self.heads) as f64).sqrt();
        let mut w = (q.matmul(&k.t()?)? * scale)?;
        if let Some(m) = mask {
            w = w.broadcast_add(m)?;
        }
        let w = candle_nn::ops::softmax_last_dim(&w)?;
        let o = w.matmul(v)?.transpose(1, 2)?.reshape((b, t, d))?;
        self.out.forward(&o)
    }

    /// Plain self-attention, no cache (the encoder in f32; the int8 encoder uses
    /// [`super::int_attention`]).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (k, v) = self.key_value(x)?;
        self.attend(x, &k, &v, None)
    }
}

/// Concatenates along the time axis of `[1, h, T, dh]`.
pub fn append_time(cache: &Tensor, new: &Tensor) -> Result<Tensor> {
    Tensor::cat(&[cache, new], D::Minus2)
}
