//! Hand-written kernels for what dominates Whisper on one core in WebAssembly: integer matrix
//! products (`i32x4.dot_i16x8_s`, SSE2 `pmaddwd` natively, through the `wide` crate), and
//! vectorised exp / erf for softmax and GELU. candle's f32 GEMM is already near what f32x4 can
//! do in wasm; these use the instruction with several times its multiply-accumulate rate.

pub mod gemm;
pub mod gemv;
pub mod quant;
pub mod vmath;
