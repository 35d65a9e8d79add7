//! Layer norm on plain rows (candle's costs a tensor round trip per call).

pub struct LnParams {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

impl LnParams {
    pub fn load(vb: candle_nn::VarBuilder<'_>, d: usize) -> candle_core::Result<Self> {
        Ok(Self { weight: vb.get(d, "weight")?.to_vec1()?, bias: vb.get(d, "bias")?.to_vec1()? })
    }

    pub fn count(&self) -> usize {
        self.weight.len() + self.bias.len()
    }

    /// Layer norm of each `d`-row of `x` (ε = 1e-5, as Whisper's).
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let d = self.weight.len().max(1);
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks(d) {
            let mean = row.iter().sum::<f32>() / d as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            let inv = 1.0 / (var + 1e-5).sqrt();
            out.extend(
                row.iter()
                    .zip(&self.weight)
                    .zip(&self.bias)
                    .map(|((v, w), b)| (v - mean) * inv * w + b),
            );
        }
        out
    }
}
