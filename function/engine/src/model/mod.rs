//! Whisper on candle, written here rather than taken from candle-transformers because the
//! decoding loop needs what that model lacks: a self-attention KV cache, logits for chosen
//! positions only, and exact (erf) GELU, which the weights were trained with.

mod attention;
mod config;
mod decoder;
mod encoder;
mod int_attention;
mod int_decoder;
mod layer_norm;
mod linear;
mod precision;
mod tensor_file;

pub use config::Config;
pub use decoder::DecoderState;
pub use precision::Precision;

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::error::EngineError;

pub struct Whisper {
    pub config: Config,
    pub precision: Precision,
    encoder: encoder::Encoder,
    decoder: decoder::Decoder,
    device: Device,
}

impl Whisper {
    /// Builds the model from a safetensors file read tensor by tensor (WASI has no mmap, and a
    /// load that held the whole file would need twice the memory), upcasting to f32. With
    /// [`Precision::Int8`] the f32 tensors only exist while each layer is quantised.
    pub fn from_file(
        path: &Path,
        config: Config,
        precision: Precision,
    ) -> Result<Self, EngineError> {
        let device = Device::Cpu;
        let file = tensor_file::TensorFile::open(path)?;
        let vb = VarBuilder::from_backend(Box::new(&file), DType::F32, device.clone());
        let encoder = encoder::Encoder::load(vb.pp("model.encoder"), &config, precision)?;
        let decoder = decoder::Decoder::load(vb.pp("model.decoder"), &file, &config, precision)?;
        Ok(Self { config, precision, encoder, decoder, device })
    }

    /// Encodes one 30 s window of log-mel, `[n_mels][3000]` row-major, to audio features.
    pub fn encode(&self, mel: &[f32]) -> Result<Tensor, EngineError> {
        let frames = mel.len() / self.config.num_mel_bins;
        let x = Tensor::from_slice(mel, (1, self.config.num_mel_bins, frames), &self.device)?;
        Ok(self.encoder.forward(&x)?)
    }

    /// A decoder state for one sequence over the given audio features.
    pub fn start(&self, features: &Tensor) -> Result<DecoderState, EngineError> {
        Ok(self.decoder.start(features)?)
    }

    /// Feeds `tokens` after what the state already holds and returns the logits (f32, one
    /// vocabulary-sized row each) at the positions `rows` (indices into `tokens`).
    pub fn decode(
        &self,
        state: &mut DecoderState,
        tokens: &[u32],
        rows: &[usize],
    ) -> Result<Vec<Vec<f32>>, EngineError> {
        if state.len() + tokens.len() > self.config.max_target_positions {
            return Err(EngineError::ContextFull(self.config.max_target_positions));
        }
        Ok(self.decoder.forward(state, tokens, rows)?)
    }

    /// Parameters, counted from the loaded tensors.
    pub fn parameter_count(&self) -> usize {
        self.encoder.parameter_count() + self.decoder.parameter_count()
    }
}
