use std::fmt;
use std::str::FromStr;

/// How the linear layers, the encoder's attention and the token embedding compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// candle's f32 throughout: the reference.
    F32,
    /// int8 weights (one scale per output row), activations quantised per row to 14 bits on the
    /// fly, i32 accumulation; attention scores and probabilities in ≤ 14-bit integers. Layer
    /// norms, softmax, GELU and the convolutions stay f32.
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
