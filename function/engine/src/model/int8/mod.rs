//! The int8 precision on our integer kernels (see [`crate::model::Precision::Int8`]).

mod attention;
mod caches;
mod decoder;
mod encoder;
mod layer_norm;
mod linear;

use candle_nn::VarBuilder;

use super::Config;
use super::seam::{Backend, Head};
use super::tensor_file::TensorFile;
use crate::error::EngineError;

pub use decoder::{Context, Sequence};

pub struct Model {
    config: Config,
    encoder: encoder::Encoder,
    decoder: decoder::Decoder,
}

impl Model {
    pub fn load(
        vb: VarBuilder<'_>,
        file: &TensorFile,
        config: &Config,
    ) -> candle_core::Result<Self> {
        Ok(Self {
            config: config.clone(),
            encoder: encoder::Encoder::load(vb.pp("model.encoder"), config)?,
            decoder: decoder::Decoder::load(vb.pp("model.decoder"), file, config)?,
        })
    }
}

fn past_positions(c: &Config) -> EngineError {
    EngineError::ContextFull(c.max_target_positions)
}

impl Backend for Model {
    type Context = Context;
    type Sequence = Sequence;

    fn config(&self) -> &Config {
        &self.config
    }

    fn build_context(&self, mel: &[f32]) -> Result<Context, EngineError> {
        let (features, t) = self.encoder.forward(mel, self.config.num_mel_bins);
        Ok(self.decoder.context(&features, t))
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
        let x = self
            .decoder
            .forward(ctx, seqs, tokens, None)
            .ok_or_else(|| past_positions(&self.config))?;
        Ok(self.decoder.logits(&x, rows))
    }

    fn cross_attention(
        &self,
        ctx: &Context,
        tokens: &[u32],
        heads: &[Head],
    ) -> Result<Vec<Vec<f32>>, EngineError> {
        let mut out = vec![Vec::new(); heads.len()];
        let mut keep = |layer: usize, head: usize, _row: usize, scores: &[f32]| {
            for (j, h) in heads.iter().enumerate() {
                if h.layer == layer && h.head == head {
                    out[j].extend_from_slice(scores);
                }
            }
        };
        let mut seq = self.decoder.sequence();
        self.decoder
            .forward(ctx, std::slice::from_mut(&mut seq), tokens, Some(&mut keep))
            .ok_or_else(|| past_positions(&self.config))?;
        Ok(out)
    }

    fn parameter_count(&self) -> usize {
        self.encoder.parameter_count() + self.decoder.parameter_count()
    }
}
