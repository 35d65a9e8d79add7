use candle_core::{D, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder, linear, linear_no_bias};

pub struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
}

/// Splits `[1, T, d]` into `[1, heads, T, d/heads]`.
fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    x.reshape((b, t, heads, d / heads))?.transpose(1, 2)?.contiguous()
}

pub fn linear_count(l: &Linear) -> usize {
    l.weight().elem_count() + l.bias().map_or(0, |b| b.elem_count())
}

impl Attention {
    pub fn load(vb: VarBuilder<'_>, d: usize, heads: usize) -> Result<Self> {
        Ok(Self {
            q: linear(d, d, vb.pp("q_proj"))?,
            k: linear_no_bias(d, d, vb.pp("k_proj"))?,
            v: linear(d, d, vb.pp("v_proj"))?,
            out: linear(d, d, vb.pp("out_proj"))?,
            heads,
        })
    }

    pub fn parameter_count(&self) -> usize {
        [&self.q, &self.k, &self.v, &self.out].into_iter().map(linear_count).sum()
    }

    /// Keys and values of `x`, split into heads: what the caches hold.
    pub fn key_value(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            split_heads(&self.k.forward(x)?, self.heads)?,
            split_heads(&self.v.forward(x)?, self.heads)?,
        ))
    }

    /// Scaled scores `q·kᵀ/√d_head` of `x`'s queries, `[1, heads, T_q, T_k]`.
    pub fn scores(&self, x: &Tensor, k: &Tensor) -> Result<Tensor> {
        let d = x.dim(D::Minus1)?;
        let q = split_heads(&self.q.forward(x)?, self.heads)?;
        q.matmul(&k.t()?)? * (1.0 / ((d / self.heads) as f64).sqrt())
    }

    /// The attention output for scores from [`Self::scores`], with an optional additive mask
    /// `[T_q, T_k]`.
    pub fn attend_scores(
        &self,
        scores: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let w = match mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores.clone(),
        };
        let o = candle_nn::ops::softmax_last_dim(&w)?.matmul(v)?;
        let (b, h, t, dh) = o.dims4()?;
        self.out.forward(&o.transpose(1, 2)?.reshape((b, t, h * dh))?)
    }

    pub fn attend(
        &self,
        x: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        self.attend_scores(&self.scores(x, k)?, v, mask)
    }

    /// Plain self-attention, no cache (the encoder).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (k, v) = self.key_value(x)?;
        self.attend(x, &k, &v, None)
    }
}

/// Concatenates along the time axis of `[1, h, T, dh]`.
pub fn append_time(cache: &Tensor, new: &Tensor) -> Result<Tensor> {
    Tensor::cat(&[cache, new], D::Minus2)
}
