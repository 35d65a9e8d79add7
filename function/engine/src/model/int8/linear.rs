//! Integer linear layers and the token embedding.

use std::ops::Range;

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::kernels::dot::{Dot, Lane};
use crate::kernels::gemm::matmul_t;
use crate::kernels::pack::{Int8Panels, Panels, U7Panels};
use crate::kernels::quant::{Quant, QuantRows, WEIGHT_LEVELS, activation_levels};

/// Which integer product a linear layer runs on (see [`crate::kernels::dot`]).
pub trait Product {
    type Act: Quant;
    /// A lane group of the weights (which selects the instruction, see [`Dot`]).
    type B: Dot<Elem: Quant, A: Lane<Elem = Self::Act>>;
    fn weights(w: &[f32], n: usize, k: usize) -> Panels<Self::B>;
    fn quantise(x: &[f32], rows: usize, k: usize) -> QuantRows<Self::Act>;
}

/// 14-bit activations against int8 weights (`dot_i16x8`): the decoder, whose accuracy needs
/// the activations' 14 bits (8-bit activations there cost tiny.en or base one to two words of
/// the dev set, more than the half point allowed).
pub struct Wide;

impl Product for Wide {
    type Act = i16;
    type B = [i8; 8];
    fn weights(w: &[f32], n: usize, k: usize) -> Int8Panels {
        Int8Panels::int8_from_f32(w, n, k)
    }
    fn quantise(x: &[f32], rows: usize, k: usize) -> QuantRows {
        QuantRows::from_f32(x, rows, k, activation_levels(k, WEIGHT_LEVELS))
    }
}

/// int8 activations against 7-bit weights (relaxed dot, twice the rate): the encoder and the
/// convolutions, whose dev-set WER does not move with it.
pub struct Narrow;

impl Product for Narrow {
    type Act = i8;
    type B = [u8; 16];
    fn weights(w: &[f32], n: usize, k: usize) -> U7Panels {
        U7Panels::u7_from_f32(w, n, k)
    }
    fn quantise(x: &[f32], rows: usize, k: usize) -> QuantRows<i8> {
        let mut q = QuantRows::default();
        q.fill_i8(x, rows, k);
        q
    }
}

/// x·Wᵀ + b with integer weights in panels, on product `P`.
pub struct QLinear<P: Product = Wide> {
    w: Panels<P::B>,
    bias: Option<Vec<f32>>,
}

impl<P: Product> QLinear<P> {
    pub fn new(weight: &Tensor, bias: Option<&Tensor>) -> Result<Self> {
        let (n, k) = weight.dims2()?;
        let w = P::weights(&weight.flatten_all()?.to_vec1::<f32>()?, n, k);
        let bias = bias.map(|b| b.to_vec1::<f32>()).transpose()?;
        Ok(Self { w, bias })
    }

    /// `x`: `k` contiguous values per row; returns `rows × n`.
    pub fn forward_rows(&self, x: &[f32], rows: usize) -> Vec<f32> {
        self.forward_quantised(&self.quantise_input(x, rows))
    }

    /// The activations as this layer's kernel takes them (shared by layers with one input).
    pub fn quantise_input(&self, x: &[f32], rows: usize) -> QuantRows<P::Act> {
        P::quantise(x, rows, self.w.k)
    }

    /// Output columns `start..start + n` only (one attention head's projection).
    pub fn forward_quantised_columns(
        &self,
        qx: &QuantRows<P::Act>,
        start: usize,
        n: usize,
    ) -> Vec<f32> {
        let bias = self.bias.as_deref().map(|b| &b[start..start + n]);
        if let Some(w) = self.w.rows_view(start, n) {
            let mut out = vec![0.0; qx.rows * n];
            matmul_t::<P::B>(qx.view(), w, 1.0, bias, &mut out);
            return out;
        }
        // Columns off the weight panels' boundaries (a head width not a multiple of 4; no
        // Whisper has one): all columns, then the wanted ones.
        let all = self.forward_quantised(qx);
        all.chunks(self.w.rows).flat_map(|row| row[start..start + n].iter().copied()).collect()
    }

    pub fn forward_quantised(&self, qx: &QuantRows<P::Act>) -> Vec<f32> {
        let mut out = vec![0.0; qx.rows * self.w.rows];
        matmul_t::<P::B>(qx.view(), self.w.view(), 1.0, self.bias.as_deref(), &mut out);
        out
    }

    pub fn parameter_count(&self) -> usize {
        self.w.rows * self.w.k + self.bias.as_ref().map_or(0, Vec::len)
    }
}

/// A linear layer of the weights at `vb`, quantised for product `P`.
pub fn load<P: Product>(
    vb: VarBuilder<'_>,
    d_in: usize,
    d_out: usize,
    bias: bool,
) -> Result<QLinear<P>> {
    let l = if bias {
        candle_nn::linear(d_in, d_out, vb)?
    } else {
        candle_nn::linear_no_bias(d_in, d_out, vb)?
    };
    QLinear::new(l.weight(), l.bias())
}

/// The decoder's token embedding, also its output projection (tied weights): one int8 table
/// serves both, rows dequantised for lookup. On the 14-bit product: the relaxed one (a 7-bit
/// table) was faster but left tiny.en's dev set at the edge of its half point.
pub struct TokenEmbedding(pub Int8Panels);

impl TokenEmbedding {
    /// The int8 table quantised from `read(rows)` a chunk of rows at a time: the f32 table (four
    /// bytes a weight, the model's largest tensor) never exists whole. Equal to [`Self::new`].
    pub fn from_rows(
        rows: usize,
        k: usize,
        mut read: impl FnMut(Range<usize>) -> Result<Vec<f32>>,
    ) -> Result<Self> {
        let panels = Panels::from_row_chunks(rows, 1024, |r: Range<usize>| -> Result<_> {
            let x = read(r.clone())?;
            Ok(QuantRows::<i8>::from_f32(&x, r.len(), k, WEIGHT_LEVELS))
        })?;
        Ok(Self(panels))
    }

    #[cfg(test)]
    pub fn new(weight: &[f32], n: usize, k: usize) -> Self {
        Self(Wide::weights(weight, n, k))
    }

    pub fn elem_count(&self) -> usize {
        self.0.rows * self.0.k
    }

    /// Ids → `ids.len() × d` rows.
    pub fn lookup(&self, ids: &[u32]) -> Vec<f32> {
        let q = &self.0;
        let mut out = Vec::with_capacity(ids.len() * q.k);
        for &id in ids {
            let r = (id as usize).min(q.rows.saturating_sub(1));
            let s = q.scales[r];
            out.extend(q.row_values(r).map(|v| (i32::from(v) - q.zero) as f32 * s));
        }
        out
    }

    /// `rows × d` hidden states → one vocabulary-sized row of logits each, in one product (the
    /// table is read once for all rows: the beams of a step share it).
    pub fn logits(&self, x: &[f32], rows: usize) -> Vec<Vec<f32>> {
        let q = &self.0;
        let qx = Wide::quantise(x, rows, q.k);
        let mut out = vec![0.0; rows * q.rows];
        matmul_t(qx.view(), q.view(), 1.0, None, &mut out);
        out.chunks(q.rows.max(1)).map(<[f32]>::to_vec).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// A head's columns through the weight panels, and off their boundaries (the fallback),
    /// equal the same columns of the whole product.
    #[test]
    fn columns_equal_the_whole_products_columns() -> Result<()> {
        columns_of::<Wide>()?;
        columns_of::<Narrow>()
    }

    #[test]
    fn the_embedding_quantised_by_row_chunks_equals_the_whole_tables() -> Result<()> {
        // More rows than one chunk, and not a whole number of panels.
        let (rows, k) = (2 * 1024 + 7, 24);
        let w: Vec<f32> = (0..rows * k)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / (1.0 + (i / k % 7) as f32))
            .collect();
        let TokenEmbedding(a) = TokenEmbedding::new(&w, rows, k);
        let TokenEmbedding(b) =
            TokenEmbedding::from_rows(rows, k, |r| Ok(w[r.start * k..r.end * k].to_vec()))?;
        assert_eq!((a.rows, a.k, a.steps, a.zero), (b.rows, b.k, b.steps, b.zero));
        assert_eq!(a.scales, b.scales);
        assert!(a.data == b.data);
        Ok(())
    }

    fn columns_of<P: Product>() -> Result<()> {
        let (n, k, rows) = (10, 24, 3);
        let w: Vec<f32> = (0..n * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
        let b: Vec<f32> = (0..n).map(|j| j as f32 * 0.1).collect();
        let layer = QLinear::<P>::new(
            &Tensor::from_vec(w, (n, k), &Device::Cpu)?,
            Some(&Tensor::new(b, &Device::Cpu)?),
        )?;
        let x: Vec<f32> = (0..rows * k).map(|i| ((i * 13 % 29) as f32 - 14.0) / 14.0).collect();
        let qx = layer.quantise_input(&x, rows);
        let all = layer.forward_quantised(&qx);
        for (start, width) in [(4, 4), (8, 2), (2, 5), (0, 10)] {
            let got = layer.forward_quantised_columns(&qx, start, width);
            let want: Vec<f32> =
                all.chunks(n).flat_map(|r| r[start..start + width].iter().copied()).collect();
            assert_eq!(got, want, "columns {start}..{}", start + width);
        }
        Ok(())
    }
}
