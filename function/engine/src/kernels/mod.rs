//! Hand-written kernels for what dominates Whisper on one core in WebAssembly: integer matrix
//! products (relaxed-simd's int8 dot product and `i32x4.dot_i16x8_s`, see [`dot`]), and
//! vectorised exp / erf for softmax and GELU. candle's f32 GEMM is already near what f32x4 can
//! do in wasm; these use the instruction with several times its multiply-accumulate rate.
//!
//! They are shaped for wasmtime as served (Spin and `stt-host` compile with epoch checks):
//! Cranelift checks the epoch at every loop head and keeps loop-carried vectors in stack slots
//! across it, so the products take two steps per loop iteration and read B through one
//! pointer ([`pack`]).

pub mod dot;
pub mod gemm;
pub mod pack;
pub mod quant;
pub mod vmath;
