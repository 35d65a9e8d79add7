//! Whisper, written here rather than taken from candle-transformers because decoding needs
//! what that model lacks: a window's cross-attention computed once and shared, cloneable
//! per-sequence self-attention caches, logits for chosen positions only, cross-attention scores
//! for word timing, and exact (erf) GELU, which the weights were trained with.
//!
//! [`seam::Backend`] is the interface; `float/` (candle f32, the reference) and `int8/` (our
//! integer kernels) implement it side by side. [`Whisper`] holds one of them; code that decodes
//! is generic over the backend and is entered once through [`Whisper::with_backend`].

mod config;
mod float;
mod int8;
mod precision;
pub mod seam;
pub(crate) mod tensor_file;

pub use config::Config;
pub use precision::Precision;
pub use seam::{Backend, Head, SequenceState};

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::error::EngineError;

pub struct Whisper {
    pub config: Config,
    pub precision: Precision,
    net: Net,
}

enum Net {
    Float(Box<float::Model>),
    Int8(Box<int8::Model>),
}

/// Code generic over the backend, run on whichever a [`Whisper`] holds.
pub trait WithBackend {
    type Output;
    fn run<B: Backend>(self, backend: &B) -> Self::Output;
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
        let vb = VarBuilder::from_backend(Box::new(&file), DType::F32, device);
        let net = match precision {
            Precision::F32 => Net::Float(Box::new(float::Model::load(vb, &config)?)),
            Precision::Int8 => Net::Int8(Box::new(int8::Model::load(vb, &file, &config)?)),
        };
        Ok(Self { config, precision, net })
    }

    pub fn with_backend<W: WithBackend>(&self, w: W) -> W::Output {
        match &self.net {
            Net::Float(m) => w.run(m.as_ref()),
            Net::Int8(m) => w.run(m.as_ref()),
        }
    }

    /// Parameters, counted from the loaded tensors.
    pub fn parameter_count(&self) -> usize {
        match &self.net {
            Net::Float(m) => m.parameter_count(),
            Net::Int8(m) => m.parameter_count(),
        }
    }
}
