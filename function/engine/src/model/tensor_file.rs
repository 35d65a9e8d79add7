//! A safetensors file read one tensor (or a few rows of one) at a time, instead of the whole
//! file at once: a load then never holds the file's bytes beside the model it builds, which
//! keeps peak memory near the model's own size. That matters twice in WebAssembly, where linear
//! memory never shrinks: per-request loads use less of it, and a pre-initialised snapshot stays
//! dense enough for stock wasmtime to map it copy-on-write (`stt-host snapshot` checks).
//! candle reads safetensors only from a buffer or an mmap (WASI has no mmap), hence this.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;

use candle_core::{DType, Device, Shape, Tensor};
use serde::Deserialize;

use crate::error::EngineError;

/// safetensors' own limit on the JSON header.
const MAX_HEADER: u64 = 100_000_000;
/// Bytes per read call (a single WASI host call may move at most 128 MiB).
const READ_CHUNK: usize = 8 << 20;

#[derive(Debug, Deserialize)]
struct HeaderEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    F16,
    BF16,
    F32,
}

impl Stored {
    fn size(self) -> usize {
        match self {
            Self::F16 | Self::BF16 => 2,
            Self::F32 => 4,
        }
    }

    fn to_f32(self, bytes: &[u8], out: &mut Vec<f32>) {
        match self {
            Self::F16 => {
                let (eights, rest) = bytes.as_chunks::<16>();
                out.reserve(bytes.len() / 2);
                let value = |c: &[u8], i: usize| match c.get(2 * i..2 * i + 2) {
                    Some(b) => u16::from_le_bytes([b[0], b[1]]),
                    None => 0,
                };
                for c in eights {
                    out.extend(f16_to_f32_x8(std::array::from_fn(|i| value(c, i))));
                }
                // The last few values through the same conversion, zero-padded to eight.
                let last = f16_to_f32_x8(std::array::from_fn(|i| value(rest, i)));
                out.extend_from_slice(&last[..rest.len() / 2]);
            }
            Self::BF16 => out.extend(
                bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()),
            ),
            Self::F32 => out.extend(
                bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
        }
    }
}

/// The exponent and mantissa of a half-precision infinity, shifted into an f32's place.
const F16_INF: i32 = 0x7c00 << 13;
/// 2¹¹² as f32 bits: the difference of the two formats' exponent biases (127 − 15).
const BIAS_SHIFT: u32 = 0x7780_0000;

/// Eight IEEE half-precision values as f32, equal to `half`'s conversion for every bit pattern:
/// the exponent and mantissa shifted into place and scaled by 2¹¹² (which also normalises
/// subnormals, exactly), infinity and NaN given the all-ones exponent (NaN quietened, as `half`
/// and the F16C instruction do). In wasm `half`'s conversion is one branching call per value,
/// and a scalar loop pays an epoch check per value: together they were a third of a
/// per-request model load.
#[inline(always)]
fn f16_to_f32_x8(h: [u16; 8]) -> [f32; 8] {
    use wide::{CmpGt, f32x8, i32x8};
    let h = i32x8::from(h.map(i32::from));
    let em = (h & i32x8::splat(0x7fff)) << 13;
    let finite = bytemuck::cast::<f32x8, i32x8>(
        bytemuck::cast::<i32x8, f32x8>(em) * f32x8::splat(f32::from_bits(BIAS_SHIFT)),
    );
    let nan = em.cmp_gt(i32x8::splat(F16_INF));
    let special = em | i32x8::splat(0x7f80_0000) | (nan & i32x8::splat(0x0040_0000));
    let bits = em.cmp_gt(i32x8::splat(F16_INF - 1)).blend(special, finite);
    bytemuck::cast::<i32x8, [f32; 8]>(bits | ((h & i32x8::splat(0x8000)) << 16))
}

#[derive(Debug)]
struct Entry {
    stored: Stored,
    shape: Vec<usize>,
    /// Absolute offset of the first byte in the file.
    start: u64,
}

impl Entry {
    fn row_len(&self) -> usize {
        self.shape.iter().skip(1).product()
    }
}

pub struct TensorFile {
    path: String,
    file: Mutex<File>,
    tensors: HashMap<String, Entry>,
}

fn err(path: &str, message: impl Into<String>) -> EngineError {
    EngineError::ModelFiles { path: path.to_string(), message: message.into() }
}

impl TensorFile {
    /// Opens the file and reads its header (names, types, shapes, where each tensor lies).
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        let name = path.display().to_string();
        let io = |e: std::io::Error| err(&name, e.to_string());
        let mut file = File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let mut n = [0u8; 8];
        file.read_exact(&mut n).map_err(io)?;
        let header_len = u64::from_le_bytes(n);
        if header_len > MAX_HEADER || 8 + header_len > file_len {
            return Err(err(&name, format!("header of {header_len} bytes does not fit the file")));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(io)?;
        let raw: HashMap<String, serde_json::Value> =
            serde_json::from_slice(&header).map_err(|e| err(&name, format!("header: {e}")))?;
        let data_start = 8 + header_len;
        let mut tensors = HashMap::with_capacity(raw.len());
        for (key, value) in raw {
            if key == "__metadata__" {
                continue;
            }
            let h: HeaderEntry =
                serde_json::from_value(value).map_err(|e| err(&name, format!("`{key}`: {e}")))?;
            let stored = match h.dtype.as_str() {
                "F16" => Stored::F16,
                "BF16" => Stored::BF16,
                "F32" => Stored::F32,
                other => {
                    return Err(err(
                        &name,
                        format!("`{key}` is {other}; only F16, BF16 and F32 are read"),
                    ));
                }
            };
            let elems = h.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d as u64));
            let [from, to] = h.data_offsets;
            let fits = elems.and_then(|e| e.checked_mul(stored.size() as u64))
                == to.checked_sub(from)
                && data_start.checked_add(to).is_some_and(|end| end <= file_len);
            if !fits {
                return Err(err(
                    &name,
                    format!("`{key}`: offsets {from}..{to} do not match its shape or the file"),
                ));
            }
            tensors.insert(key, Entry { stored, shape: h.shape, start: data_start + from });
        }
        Ok(Self { path: name, file: Mutex::new(file), tensors })
    }

    fn entry(&self, name: &str) -> candle_core::Result<&Entry> {
        self.tensors
            .get(name)
            .ok_or_else(|| candle_core::Error::CannotFindTensor { path: name.to_string() }.bt())
    }

    /// `count` elements of `e` from element `first`, as f32.
    fn read_f32(&self, e: &Entry, first: usize, count: usize) -> candle_core::Result<Vec<f32>> {
        let size = e.stored.size();
        let mut out = Vec::with_capacity(count);
        let mut chunk = vec![0u8; READ_CHUNK.min(count * size)];
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let io = |e: std::io::Error| candle_core::Error::Msg(format!("{}: {e}", self.path));
        file.seek(SeekFrom::Start(e.start + (first * size) as u64)).map_err(io)?;
        let mut left = count * size;
        while left > 0 {
            let n = left.min(chunk.len());
            file.read_exact(&mut chunk[..n]).map_err(io)?;
            e.stored.to_f32(&chunk[..n], &mut out);
            left -= n;
        }
        Ok(out)
    }

    /// Rows `rows` of a tensor (its first dimension), as f32.
    pub fn rows_f32(&self, name: &str, rows: Range<usize>) -> candle_core::Result<Vec<f32>> {
        let e = self.entry(name)?;
        let (n, len) = (e.shape.first().copied().unwrap_or(1), e.row_len());
        if rows.start > rows.end || rows.end > n {
            candle_core::bail!("{name}: rows {rows:?} of {n}");
        }
        self.read_f32(e, rows.start * len, rows.len() * len)
    }

    /// Whether the tensor `name` has the shape `expected` (checked before anything is read).
    pub fn expect_shape(&self, name: &str, expected: &[usize]) -> candle_core::Result<()> {
        let e = self.entry(name)?;
        if e.shape != expected {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: expected.into(),
                got: e.shape.as_slice().into(),
            }
            .bt());
        }
        Ok(())
    }
}

impl candle_nn::var_builder::SimpleBackend for &TensorFile {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        self.expect_shape(name, s.dims())?;
        self.get_unchecked(name, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let e = self.entry(name)?;
        let count = e.shape.iter().product();
        let t = Tensor::from_vec(self.read_f32(e, 0, count)?, e.shape.as_slice(), dev)?;
        if dtype == DType::F32 { Ok(t) } else { t.to_dtype(dtype) }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_converts_as_the_half_crate_does_for_every_bit_pattern() {
        let want = |h: u16| half::f16::from_bits(h).to_f32().to_bits();
        for h0 in (0..=u16::MAX).step_by(8) {
            let got = f16_to_f32_x8(std::array::from_fn(|i| h0 + i as u16));
            for (i, g) in got.iter().enumerate() {
                assert_eq!(g.to_bits(), want(h0 + i as u16), "{:#06x}", h0 + i as u16);
            }
        }
        // Through the reader's path: eight at a time, then the last seven padded.
        let bytes: Vec<u8> = (0..u16::MAX).rev().flat_map(u16::to_le_bytes).collect();
        let mut out = Vec::new();
        Stored::F16.to_f32(&bytes, &mut out);
        assert_eq!(out.len(), usize::from(u16::MAX));
        assert!(out.iter().zip((0..u16::MAX).rev()).all(|(g, h)| g.to_bits() == want(h)));
    }
}
