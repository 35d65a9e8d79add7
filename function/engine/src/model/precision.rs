use std::fmt;
use std::str::FromStr;

/// How the linear layers, the encoder's attention and the token embedding compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// candle's f32 throughout: the reference.
    F32,
    /// Integer products with i32 accumulation (`kernels`): the encoder and its attention as
    /// int8 activations (one scale per row, on the fly) against 7-bit weights or keys, and 7-bit
    /// probabilities against int8 values (relaxed-simd's dot product); the decoder and the
    /// vocabulary projection as 14-bit activations against int8 weights. Layer norms, softmax
    /// and GELU stay f32.
    #[default]
    Int8,
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::Int8 => "int8",
        })
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "f32" => Ok(Self::F32),
            "int8" => Ok(Self::Int8),
            other => Err(format!("unknown precision `{other}` (f32 or int8)")),
        }
    }
}
