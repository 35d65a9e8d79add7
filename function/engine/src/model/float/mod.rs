//! The reference precision: candle's f32 throughout.

mod attention;
mod decoder;
mod encoder;

use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;

use super::Config;
use super::seam::{Backend, Head};
use crate::error::EngineError;

pub use decoder::{Context, Sequence};

pub struct Model {
    config: Config,
    encoder: encoder::Encoder,
    decoder: decoder::Decoder,
    device: Device,
}

impl Model {
    pub fn load(vb: VarBuilder<'_>, config: &Config) -> candle_core::Result<Self> {
        Ok(Self {
            config: config.clone(),
            encoder: encoder::Encoder::load(vb.pp("model.encoder"), config)?,
            decoder: decoder::Decoder::load(vb.pp("model.decoder"), config)?,
            device: vb.device().clone(),
        })
    }
}

impl Backend for Model {
    type Context = Context;
    type Sequence = Sequence;

    fn config(&self) -> &Config {
        &self.config
    }

    fn build_context(&self, mel: &[f32]) -> Result<Context, EngineError> {
        let frames = mel.len() / self.config.num_mel_bins;
        let x = Tensor::from_slice(mel, (1, self.config.num_mel_bins, frames), &self.device)?;
        Ok(self.decoder.context(&self.encoder.forward(&x)?)?)
    }

    fn sequence(&self) -> Sequence {
        self.decoder.sequence()
    }

    fn forward(
        &self,
        ctx: &Context,
        seqs: &mut [Sequence],
        tokens: &[u32],
        rows: &[usize],
    ) -> Result<Vec<Vec<f32>>, EngineError> {
        let per = (tokens.len() / seqs.len().max(1)).max(1);
        let mut hidden = Vec::with_capacity(seqs.len());
        for (seq, toks) in seqs.iter_mut().zip(tokens.chunks(per)) {
            hidden.push(self.decoder.forward(ctx, seq, toks, None)?);
        }
        let picked = rows
            .iter()
            .map(|&r| hidden[r / per].narrow(0, r % per, 1))
            .collect::<candle_core::Result<Vec<_>>>()?;
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.decoder.logits(&Tensor::cat(&picked, 0)?)?)
    }

    fn cross_attention(
        &self,
        ctx: &Context,
        tokens: &[u32],
        heads: &[Head],
    ) -> Result<Vec<Vec<f32>>, EngineError> {
        let mut capture = decoder::Capture { heads, scores: vec![Vec::new(); heads.len()] };
        let mut seq = self.decoder.sequence();
        self.decoder.forward(ctx, &mut seq, tokens, Some(&mut capture))?;
        Ok(capture.scores)
    }

    fn parameter_count(&self) -> usize {
        self.encoder.parameter_count() + self.decoder.parameter_count()
    }
}
