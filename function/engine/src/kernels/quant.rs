//! Symmetric per-row quantisation to integers held in i16 lanes, k padded to a multiple of 8.

use wide::{f32x4, f32x8, i16x8};

/// Weights: int8 range, one scale per output row (as CTranslate2's int8).
pub const WEIGHT_LEVELS: f32 = 127.0;
/// Activations: 14 bits, one scale per row. With int8 weights a lane of `dot_i16x8` sums k/4
/// products below 127 × 8191, so k up to 8 256 cannot overflow i32.
pub const ACTIVATION_LEVELS: f32 = 8191.0;

/// Rows of `k` quantised values (i16 lanes, or i8 for weights), one scale per row, each row
/// padded with zeros to `stride` (a multiple of 8).
#[derive(Debug, Clone, Default)]
pub struct QuantRows<T = i16> {
    pub data: Vec<T>,
    pub scales: Vec<f32>,
    pub rows: usize,
    pub k: usize,
    pub stride: usize,
}

/// The most levels (≤ 14 bits) for one operand of a k-long product whose other operand has
/// `other` levels, such that no i32 lane of `dot_i16x8` can overflow (a lane sums k/4 products).
pub fn activation_levels(k: usize, other: f32) -> f32 {
    let products = (padded(k) / 4).max(1) as f64;
    ((i32::MAX as f64 / products / other as f64).floor() - 1.0).clamp(1.0, ACTIVATION_LEVELS as f64) as f32
}

/// Levels for both operands of a k-long product of two activations (attention).
pub fn balanced_levels(k: usize) -> f32 {
    let products = (padded(k) / 4).max(1) as f64;
    ((i32::MAX as f64 / products).sqrt().floor() - 1.0).clamp(1.0, ACTIVATION_LEVELS as f64) as f32
}

fn max_abs(x: &[f32]) -> f32 {
    let (v, rest) = x.as_chunks::<4>();
    let m = v.iter().fold(f32x4::splat(0.0), |m, c| m.max(f32x4::from(*c).abs()));
    rest.iter().fold(m.to_array().into_iter().fold(0f32, f32::max), |m, v| m.max(v.abs()))
}

/// `out = round(x · inv)`, eight lanes at a time, narrowed to i16 in one instruction (a
/// scalar `round` is a libm call in wasm, and lane-by-lane stores cost as much as the rest).
fn quantise_row(x: &[f32], inv: f32, levels: f32, out: &mut [i16]) {
    let (v, rest) = x.as_chunks::<8>();
    let (o, o_rest) = out.as_chunks_mut::<8>();
    let (inv8, hi, lo) = (f32x8::splat(inv), f32x8::splat(levels), f32x8::splat(-levels));
    for (d, c) in o.iter_mut().zip(v) {
        let q = (f32x8::from(*c) * inv8).max(lo).min(hi).round_int();
        *d = i16x8::from_i32x8_saturate(q).to_array();
    }
    for (d, &v) in o_rest.iter_mut().zip(rest) {
        *d = (v * inv).round().clamp(-levels, levels) as i16;
    }
}

/// Some rows of a [`QuantRows`].
// Derived (so only for Copy T): every view is of i16 or i8.
#[derive(Debug, Clone, Copy)]
pub struct QuantView<'a, T = i16> {
    pub data: &'a [T],
    pub scales: &'a [f32],
    pub rows: usize,
    pub stride: usize,
}

impl<'a, T> QuantView<'a, T> {
    pub fn row(&self, r: usize) -> &'a [T] {
        &self.data[r * self.stride..(r + 1) * self.stride]
    }
}

/// Integers the products read eight at a time as i16 lanes: i16 rows as they are, int8 weight
/// rows widened by the load itself (half the bytes to stream for the same instruction count).
pub trait Lanes: Copy {
    fn load8(c: &[Self; 8]) -> i16x8;
}

impl Lanes for i16 {
    #[inline(always)]
    fn load8(c: &[i16; 8]) -> i16x8 {
        i16x8::from(*c)
    }
}

impl Lanes for i8 {
    /// `v128.load8x8_s` in wasm (LLVM does not find it alone); SSE2 unpack + shift natively.
    #[inline(always)]
    fn load8(c: &[i8; 8]) -> i16x8 {
        widen(c)
    }
}

#[cfg(target_arch = "wasm32")]
#[inline(always)]
fn widen(c: &[i8; 8]) -> i16x8 {
    use core::arch::wasm32::{i16x8_load_extend_i8x8, v128};
    // SAFETY: reads exactly the 8 bytes of `c` (no alignment needed); v128 and i16x8 are both
    // 16 plain bytes.
    unsafe { std::mem::transmute::<v128, i16x8>(i16x8_load_extend_i8x8(c.as_ptr())) }
}

/// SSE2: duplicate each byte into a 16-bit lane, then an arithmetic shift sign-extends it.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn widen(c: &[i8; 8]) -> i16x8 {
    use core::arch::x86_64::{__m128i, _mm_loadl_epi64, _mm_srai_epi16, _mm_unpacklo_epi8};
    // SAFETY: SSE2 is part of x86_64; the load reads exactly the 8 bytes of `c` (unaligned
    // allowed); __m128i and i16x8 are both 16 plain bytes.
    unsafe {
        let v = _mm_loadl_epi64(c.as_ptr().cast::<__m128i>());
        std::mem::transmute::<__m128i, i16x8>(_mm_srai_epi16(_mm_unpacklo_epi8(v, v), 8))
    }
}

#[cfg(not(any(target_arch = "wasm32", target_arch = "x86_64")))]
#[inline(always)]
fn widen(c: &[i8; 8]) -> i16x8 {
    i16x8::from(c.map(i16::from))
}

pub fn padded(k: usize) -> usize {
    k.div_ceil(8) * 8
}

impl QuantRows {
    /// Quantises `rows` rows of `k` contiguous values of `x` to ±`levels`.
    pub fn from_f32(x: &[f32], rows: usize, k: usize, levels: f32) -> Self {
        let mut q = Self::default();
        q.fill(x, rows, k, levels);
        q
    }

    /// Same as [`Self::from_f32`], reusing this buffer.
    pub fn fill(&mut self, x: &[f32], rows: usize, k: usize, levels: f32) {
        let stride = self.reset(rows, k);
        for r in 0..rows {
            let row = &x[r * k..(r + 1) * k];
            let max = max_abs(row);
            let scale = if max > 0.0 && max.is_finite() { max / levels } else { 1.0 };
            quantise_row(row, 1.0 / scale, levels, &mut self.data[r * stride..r * stride + k]);
            self.scales[r] = scale;
        }
    }

    /// `rows` zeroed rows of `k` (padding included) and zero scales, reusing the buffers;
    /// returns the stride.
    fn reset(&mut self, rows: usize, k: usize) -> usize {
        let stride = padded(k);
        self.data.clear();
        self.data.resize(rows * stride, 0);
        self.scales.clear();
        self.scales.resize(rows, 0.0);
        self.rows = rows;
        self.k = k;
        self.stride = stride;
        stride
    }

    /// The softmax of each of `rows` rows of `k` values of `x`, quantised to ±`levels`; `x` is
    /// the scratch. Fused: the largest exp(x − max) is 1, so the row's quantisation scale is
    /// known without another pass, and the normalisation goes into the scale instead of a pass
    /// over the row (three passes instead of five).
    pub fn fill_softmax(&mut self, x: &mut [f32], rows: usize, k: usize, levels: f32) {
        let stride = self.reset(rows, k);
        for r in 0..rows {
            let row = &mut x[r * k..(r + 1) * k];
            let total = super::vmath::exp_shifted(row).unwrap_or_else(|| {
                // All masked (not in Whisper): uniform, as `softmax` does.
                row.fill(1.0);
                k as f32
            });
            quantise_row(row, levels, levels, &mut self.data[r * stride..r * stride + k]);
            self.scales[r] = 1.0 / (total * levels);
        }
    }
}

impl<T> QuantRows<T> {
    pub fn row(&self, r: usize) -> &[T] {
        &self.data[r * self.stride..(r + 1) * self.stride]
    }

    pub fn view(&self) -> QuantView<'_, T> {
        self.rows_view(0, self.rows)
    }

    /// Rows `start..start + n`.
    pub fn rows_view(&self, start: usize, n: usize) -> QuantView<'_, T> {
        QuantView {
            data: &self.data[start * self.stride..(start + n) * self.stride],
            scales: &self.scales[start..start + n],
            rows: n,
            stride: self.stride,
        }
    }
}

impl QuantRows<i8> {
    /// Narrows int8-range rows (levels ≤ 127) held in i16.
    pub fn from_i16(q: &QuantRows) -> Self {
        debug_assert!(q.data.iter().all(|&v| (-127..=127).contains(&v)));
        Self {
            data: q.data.iter().map(|&v| v as i8).collect(),
            scales: q.scales.clone(),
            rows: q.rows,
            k: q.k,
            stride: q.stride,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_within_half_a_step() {
        let x: Vec<f32> = (0..3 * 10).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.13).collect();
        let q = QuantRows::from_f32(&x, 3, 10, WEIGHT_LEVELS);
        assert_eq!(q.stride, 16);
        for r in 0..3 {
            let row = q.row(r);
            assert!(row[10..].iter().all(|&v| v == 0), "padding is zero");
            for c in 0..10 {
                let back = row[c] as f32 * q.scales[r];
                assert!((back - x[r * 10 + c]).abs() <= q.scales[r] * 0.5 + 1e-6);
            }
            assert_eq!(row[..10].iter().map(|v| v.abs()).max(), Some(127), "the largest value uses the full range");
        }
    }

    #[test]
    fn levels_keep_every_lane_inside_i32() {
        for k in [64, 384, 1500, 1536, 5120] {
            let lane = (padded(k) / 4) as f64;
            assert!(lane * activation_levels(k, WEIGHT_LEVELS) as f64 * 127.0 < i32::MAX as f64, "{k}");
            assert!(lane * (balanced_levels(k) as f64).powi(2) < i32::MAX as f64, "{k}");
        }
        assert_eq!(activation_levels(384, WEIGHT_LEVELS), ACTIVATION_LEVELS);
        assert_eq!(balanced_levels(64), ACTIVATION_LEVELS);
        assert!(balanced_levels(1500) > 2000.0);
    }

    #[test]
    fn fused_softmax_matches_softmax_then_quantise() {
        let (rows, k) = (3, 1500);
        let x: Vec<f32> = (0..rows * k).map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 12.0).collect();
        let mut want = x.clone();
        want.chunks_mut(k).for_each(crate::kernels::vmath::softmax);
        let want = QuantRows::from_f32(&want, rows, k, 4000.0);
        let mut got = QuantRows::default();
        got.fill_softmax(&mut x.clone(), rows, k, 4000.0);
        for r in 0..rows {
            assert!((got.scales[r] / want.scales[r] - 1.0).abs() < 1e-5, "row {r} scale");
            let off = got.row(r).iter().zip(want.row(r)).map(|(a, b)| (a - b).abs()).max();
            assert!(off <= Some(1), "row {r}: {off:?}");
            let p: f32 = got.row(r).iter().map(|&q| q as f32 * got.scales[r]).sum();
            assert!((p - 1.0).abs() < 1e-3, "row {r} sums to {p}");
        }
    }

    #[test]
    fn a_zero_row_stays_zero() {
        let q = QuantRows::from_f32(&[0.0; 8], 1, 8, ACTIVATION_LEVELS);
        assert!(q.row(0).iter().all(|&v| v == 0));
        assert_eq!(q.scales[0], 1.0);
    }
}
