//! Per-row quantisation to integers, k padded to a multiple of 16: symmetric rows of i16
//! (14-bit activations) or i8, and non-negative rows of u8 (≤ 7 bits: the operand that
//! relaxed-simd's `i32x4.relaxed_dot_i8x16_i7x16_add_s` treats as unsigned on x86).

use wide::{f32x4, f32x8, i8x16, i16x8, i16x16, i32x8};

/// Weights: int8 range, one scale per output row (as CTranslate2's int8).
pub const WEIGHT_LEVELS: f32 = 127.0;
/// Activations: 14 bits, one scale per row. With int8 weights a lane of `dot_i16x8` sums k/4
/// products below 127 × 8191, so k up to 8 256 cannot overflow i32.
pub const ACTIVATION_LEVELS: f32 = 8191.0;
/// Signed int8 operands of the relaxed dot product (activations, attention's Q and V).
pub const I8_LEVELS: f32 = 127.0;
/// Non-negative 7-bit operands: weights and keys as ±63 around a zero point of 64 (in the
/// encoder the dev set stays within its half point of f32 with these), probabilities as
/// 0..=127.
pub const U7_LEVELS: f32 = 63.0;
pub const U7_ZERO: i32 = 64;
pub const U7_MAX: f32 = 127.0;

/// Rows of `k` quantised values, one scale per row, each row padded with zeros to `stride` (a
/// multiple of 16). A value stands for `(q − zero) · scale`.
#[derive(Debug, Clone, Default)]
pub struct QuantRows<T = i16> {
    pub data: Vec<T>,
    pub scales: Vec<f32>,
    /// Per row, the sum of its values (int8 rows only: what a product with an offset operand
    /// subtracts, see [`crate::kernels::gemm::matmul_t`]).
    pub sums: Vec<i32>,
    /// The zero point (u8 rows of weights and keys: [`U7_ZERO`]; 0 otherwise).
    pub zero: i32,
    pub rows: usize,
    pub k: usize,
    pub stride: usize,
}

/// The most levels (≤ 14 bits) for one operand of a k-long product whose other operand has
/// `other` levels, such that no i32 lane of `dot_i16x8` can overflow (a lane sums k/4 products).
pub fn activation_levels(k: usize, other: f32) -> f32 {
    let products = (padded(k) / 4).max(1) as f64;
    ((i32::MAX as f64 / products / other as f64).floor() - 1.0).clamp(1.0, ACTIVATION_LEVELS as f64)
        as f32
}

/// The largest magnitude in `x` (0 for none).
fn max_abs(x: &[f32]) -> f32 {
    super::vmath::max_of(x, 0.0, f32x4::abs, f32::abs)
}

/// An integer type rows are quantised to.
pub trait Quant: Copy + Default {
    /// Sixteen rounded values (already within the levels) plus `zero`, narrowed with one
    /// saturating narrow per eight or sixteen lanes (lane by lane, LLVM extracts and shifts
    /// every byte: that was most of an int8 quantisation's time).
    fn narrow(lo: i32x8, hi: i32x8, zero: i32) -> [Self; 16];
    fn from_i32(v: i32) -> Self;
}

#[inline(always)]
fn narrow_i16(lo: i32x8, hi: i32x8, zero: i32) -> [i16; 16] {
    let z = i32x8::splat(zero);
    let (a, b) = (i16x8::from_i32x8_saturate(lo + z), i16x8::from_i32x8_saturate(hi + z));
    std::array::from_fn(|i| if i < 8 { a.as_array_ref()[i] } else { b.as_array_ref()[i - 8] })
}

#[inline(always)]
fn narrow_i8(lo: i32x8, hi: i32x8, zero: i32) -> i8x16 {
    i8x16::from_i16x16_saturate(i16x16::from(narrow_i16(lo, hi, zero)))
}

impl Quant for i16 {
    #[inline(always)]
    fn narrow(lo: i32x8, hi: i32x8, zero: i32) -> [i16; 16] {
        narrow_i16(lo, hi, zero)
    }
    fn from_i32(v: i32) -> i16 {
        v as i16
    }
}

impl Quant for i8 {
    #[inline(always)]
    fn narrow(lo: i32x8, hi: i32x8, zero: i32) -> [i8; 16] {
        narrow_i8(lo, hi, zero).to_array()
    }
    fn from_i32(v: i32) -> i8 {
        v as i8
    }
}

impl Quant for u8 {
    /// Through i8: u8 rows hold 0..=127 only.
    #[inline(always)]
    fn narrow(lo: i32x8, hi: i32x8, zero: i32) -> [u8; 16] {
        narrow_i8(lo, hi, zero).to_array().map(|v| v as u8)
    }
    fn from_i32(v: i32) -> u8 {
        v as u8
    }
}

/// `out = round(x · inv) + zero` with `round(x · inv)` clamped to [lo, hi], sixteen lanes at a
/// time (a scalar `round` is a libm call in wasm, and lane-by-lane stores cost as much as the
/// rest); returns the sum of the rounded values (without `zero`), which int8 rows keep
/// ([`QuantRows::sums`]): one add per sixteen values here instead of a pass of its own.
fn quantise_row<T: Quant>(
    x: &[f32],
    inv: f32,
    (lo, hi): (f32, f32),
    zero: i32,
    out: &mut [T],
) -> i32 {
    let (v, rest) = x.as_chunks::<16>();
    let (o, o_rest) = out.as_chunks_mut::<16>();
    let (inv8, hi8, lo8) = (f32x8::splat(inv), f32x8::splat(hi), f32x8::splat(lo));
    // Pseudo-min/max, one instruction each in wasm where the NaN-propagating forms take five
    // (a NaN lane, which no finite input makes, narrows to some bounded value), then the round.
    let q = |c: &[f32]| {
        let c: [f32; 8] = std::array::from_fn(|i| c[i]);
        super::vmath::round_bounded8(hi8.fast_min(lo8.fast_max(f32x8::from(c) * inv8)))
    };
    let mut sum = i32x8::splat(0);
    for (d, c) in o.iter_mut().zip(v) {
        let (a, b) = (q(&c[..8]), q(&c[8..]));
        sum += a + b;
        *d = T::narrow(a, b, zero);
    }
    let mut total = sum.reduce_add();
    for (d, &v) in o_rest.iter_mut().zip(rest) {
        let r = (v * inv).round().clamp(lo, hi) as i32;
        total += r;
        *d = T::from_i32(r + zero);
    }
    total
}

/// Some rows of a [`QuantRows`].
// Derived (so only for Copy T): every view is of integers.
#[derive(Debug, Clone, Copy)]
pub struct QuantView<'a, T = i16> {
    pub data: &'a [T],
    pub scales: &'a [f32],
    /// Empty unless the rows are int8 (see [`QuantRows::sums`]).
    pub sums: &'a [i32],
    pub rows: usize,
    pub stride: usize,
}

impl<'a, T> QuantView<'a, T> {
    pub fn row(&self, r: usize) -> &'a [T] {
        &self.data[r * self.stride..(r + 1) * self.stride]
    }

    /// Row `r`'s sum, 0 for rows that keep none.
    pub fn sum(&self, r: usize) -> i32 {
        self.sums.get(r).copied().unwrap_or(0)
    }
}

/// `k` rounded up to whole steps of the relaxed dot product (16 lanes; the i16 products take 8).
pub fn padded(k: usize) -> usize {
    k.div_ceil(16) * 16
}

impl<T: Quant> QuantRows<T> {
    /// Quantises `rows` rows of `k` contiguous values of `x` to ±`levels` around `zero`
    /// (symmetric per row: the row's largest magnitude maps to `levels`).
    pub fn from_f32(x: &[f32], rows: usize, k: usize, levels: f32) -> Self {
        let mut q = Self::default();
        q.fill(x, rows, k, levels);
        q
    }

    /// Same as [`Self::from_f32`], reusing this buffer.
    pub fn fill(&mut self, x: &[f32], rows: usize, k: usize, levels: f32) {
        self.fill_around(x, rows, k, levels, 0);
    }

    /// As [`Self::fill`], every value stored plus `zero` (u8 rows: weights and keys).
    pub fn fill_around(&mut self, x: &[f32], rows: usize, k: usize, levels: f32, zero: i32) {
        self.fill_rows(x, rows, k, levels, zero, false);
    }

    /// [`Self::fill_around`], keeping each row's sum in [`Self::sums`] when `sums`.
    fn fill_rows(&mut self, x: &[f32], rows: usize, k: usize, levels: f32, zero: i32, sums: bool) {
        let stride = self.reset(rows, k, zero);
        for r in 0..rows {
            let row = &x[r * k..(r + 1) * k];
            let max = max_abs(row);
            let scale = if max > 0.0 && max.is_finite() { max / levels } else { 1.0 };
            let sum = quantise_row(
                row,
                1.0 / scale,
                (-levels, levels),
                zero,
                &mut self.data[r * stride..r * stride + k],
            );
            self.scales[r] = scale;
            if sums {
                self.sums.push(sum);
            }
        }
    }

    /// `rows` zeroed rows of `k` (padding included: stored as `zero`, so that it stands for 0)
    /// and zero scales, reusing the buffers; returns the stride.
    fn reset(&mut self, rows: usize, k: usize, zero: i32) -> usize {
        let stride = padded(k);
        self.data.clear();
        self.data.resize(rows * stride, T::from_i32(zero));
        self.scales.clear();
        self.scales.resize(rows, 0.0);
        self.sums.clear();
        self.zero = zero;
        self.rows = rows;
        self.k = k;
        self.stride = stride;
        stride
    }

    /// The softmax of each of `rows` rows of `k` values of `x`, quantised to 0..=`levels`; `x`
    /// is the scratch. Fused: the largest exp(x − max) is 1, so the row's quantisation scale is
    /// known without another pass, and the normalisation goes into the scale instead of a pass
    /// over the row (three passes instead of five).
    pub fn fill_softmax(&mut self, x: &mut [f32], rows: usize, k: usize, levels: f32) {
        let stride = self.reset(rows, k, 0);
        for r in 0..rows {
            let row = &mut x[r * k..(r + 1) * k];
            let total = super::vmath::exp_shifted(row).unwrap_or_else(|| {
                // All masked (not in Whisper): uniform, as `softmax` does.
                row.fill(1.0);
                k as f32
            });
            quantise_row(row, levels, (0.0, levels), 0, &mut self.data[r * stride..r * stride + k]);
            self.scales[r] = 1.0 / (total * levels);
        }
    }
}

impl QuantRows<u8> {
    /// The softmax of each of `rows` rows of `k` values of `x`, quantised to 0..=[`U7_MAX`] as
    /// the exponentials are computed (one pass after the maximum): the encoder's attention
    /// probabilities. (A degree-3 exp, 6e-4, well inside a step of 1/127, was tried: it moved
    /// base's dev-set WER by a word.)
    pub fn fill_softmax_u7(&mut self, x: &[f32], rows: usize, k: usize) {
        let stride = self.reset(rows, k, 0);
        for r in 0..rows {
            let (row, out) = (&x[r * k..(r + 1) * k], &mut self.data[r * stride..r * stride + k]);
            let total = exp_shifted_quantised(row, U7_MAX, out).unwrap_or_else(|| {
                // All masked (not in Whisper): uniform, as `softmax` does.
                out.fill(U7_MAX as u8);
                k as f32
            });
            self.scales[r] = 1.0 / (total * U7_MAX);
        }
    }
}

impl QuantRows<i8> {
    /// Signed int8 rows (±[`I8_LEVELS`]) with their sums, for products with u8 weights or keys.
    pub fn fill_i8(&mut self, x: &[f32], rows: usize, k: usize) {
        self.fill_rows(x, rows, k, I8_LEVELS, 0, true);
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
            sums: self.sums.get(start..start + n).unwrap_or(&[]),
            rows: n,
            stride: self.stride,
        }
    }
}

/// `round(exp(x − max x) · levels)` into `out` (`levels` ≤ 127: the largest entry becomes
/// `levels`) and Σ exp(x − max x), in one pass after the maximum: the encoder's attention
/// probabilities, quantised as they are computed instead of written out and read back.
/// `None` when the maximum is not finite (every entry masked), `out` untouched.
pub fn exp_shifted_quantised<T: Quant>(x: &[f32], levels: f32, out: &mut [T]) -> Option<f32> {
    let m = super::vmath::max(x);
    if !m.is_finite() {
        return None;
    }
    let (mv, lv) = (f32x4::splat(m), f32x4::splat(levels));
    let (v, rest) = x.as_chunks::<16>();
    let (o, o_rest) = out.as_chunks_mut::<16>();
    let mut sum = f32x4::splat(0.0);
    for (d, c) in o.iter_mut().zip(v) {
        let e: [f32x4; 4] = std::array::from_fn(|i| {
            super::vmath::exp_neg(
                f32x4::from([c[4 * i], c[4 * i + 1], c[4 * i + 2], c[4 * i + 3]]) - mv,
            )
        });
        sum += (e[0] + e[1]) + (e[2] + e[3]);
        let q = e.map(|e| super::vmath::round_bounded(e * lv).to_array());
        let half = |a: [i32; 4], b: [i32; 4]| {
            wide::i32x8::new(std::array::from_fn(|i| if i < 4 { a[i] } else { b[i - 4] }))
        };
        *d = T::narrow(half(q[0], q[1]), half(q[2], q[3]), 0);
    }
    let mut total = sum.reduce_add();
    for (d, &r) in o_rest.iter_mut().zip(rest) {
        let e = (r - m).exp();
        *d = T::from_i32((e * levels).round() as i32);
        total += e;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// int8 rows keep the sums of their stored values (the quantisation's own running sum), and
    /// the largest magnitude is found wherever it sits (the sixteen-wide scan and its tail).
    #[test]
    fn int8_rows_keep_their_sums_and_use_the_full_range() {
        for k in [5, 16, 37, 384] {
            let x: Vec<f32> =
                (0..4 * k).map(|i| ((i * 7919 % 257) as f32 - 128.0) * 0.01).collect();
            let mut q = QuantRows::<i8>::default();
            q.fill_i8(&x, 4, k);
            assert_eq!(q.sums.len(), 4);
            for r in 0..4 {
                let row = q.row(r);
                assert_eq!(q.sums[r], row.iter().map(|&v| i32::from(v)).sum::<i32>(), "k {k}");
                assert_eq!(row.iter().map(|v| v.unsigned_abs()).max(), Some(127), "k {k} row {r}");
            }
        }
        let mut q = QuantRows::<i16>::default();
        q.fill(&[0.0; 40], 2, 20, ACTIVATION_LEVELS);
        assert!(q.sums.is_empty(), "only int8 rows keep sums");
    }

    #[test]
    fn rows_round_trip_within_half_a_step() {
        let x: Vec<f32> = (0..3 * 10).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.13).collect();
        let q = QuantRows::<i16>::from_f32(&x, 3, 10, WEIGHT_LEVELS);
        assert_eq!(q.stride, 16);
        for r in 0..3 {
            let row = q.row(r);
            assert!(row[10..].iter().all(|&v| v == 0), "padding is zero");
            for c in 0..10 {
                let back = row[c] as f32 * q.scales[r];
                assert!((back - x[r * 10 + c]).abs() <= q.scales[r] * 0.5 + 1e-6);
            }
            assert_eq!(
                row[..10].iter().map(|v| v.abs()).max(),
                Some(127),
                "the largest value uses the full range"
            );
        }
    }

    #[test]
    fn levels_keep_every_lane_inside_i32() {
        for k in [64, 384, 1500, 1536, 5120] {
            let lane = (padded(k) / 4) as f64;
            assert!(
                lane * activation_levels(k, WEIGHT_LEVELS) as f64 * 127.0 < i32::MAX as f64,
                "{k}"
            );
        }
        assert_eq!(activation_levels(384, WEIGHT_LEVELS), ACTIVATION_LEVELS);
    }

    #[test]
    fn fused_softmax_matches_softmax_then_quantise() {
        let (rows, k) = (3, 1500);
        let x: Vec<f32> =
            (0..rows * k).map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 12.0).collect();
        let mut want = x.clone();
        want.chunks_mut(k).for_each(crate::kernels::vmath::softmax);
        let want = QuantRows::<i16>::from_f32(&want, rows, k, 4000.0);
        let mut got = QuantRows::<i16>::default();
        got.fill_softmax(&mut x.clone(), rows, k, 4000.0);
        for r in 0..rows {
            assert!((got.scales[r] / want.scales[r] - 1.0).abs() < 1e-5, "row {r} scale");
            let off = got.row(r).iter().zip(want.row(r)).map(|(a, b)| (a - b).abs()).max();
            assert!(off <= Some(1), "row {r}: {off:?}");
            let p: f32 = got.row(r).iter().map(|&q| q as f32 * got.scales[r]).sum();
            assert!((p - 1.0).abs() < 1e-3, "row {r} sums to {p}");
        }
    }

    /// The one-pass 7-bit softmax is the exact softmax within rounding (half a step, plus the
    /// sum's float error), and its rows sum to 1.
    #[test]
    fn seven_bit_softmax_is_within_a_step_of_the_exact_one() {
        let (rows, k) = (3, 1500);
        let x: Vec<f32> =
            (0..rows * k).map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 12.0).collect();
        let mut want = x.clone();
        want.chunks_mut(k).for_each(crate::kernels::vmath::softmax);
        let mut got = QuantRows::<u8>::default();
        got.fill_softmax_u7(&x, rows, k);
        for r in 0..rows {
            let p: Vec<f32> =
                got.row(r)[..k].iter().map(|&q| f32::from(q) * got.scales[r]).collect();
            let step = want[r * k..(r + 1) * k].iter().fold(0f32, |m, &v| m.max(v)) / U7_MAX;
            for (c, (a, b)) in p.iter().zip(&want[r * k..(r + 1) * k]).enumerate() {
                assert!((a - b).abs() <= 0.6 * step, "[{r},{c}] {a} vs {b}");
            }
            assert!((p.iter().sum::<f32>() - 1.0).abs() < 0.02, "row {r}");
            assert_eq!(got.row(r).iter().max(), Some(&127));
        }
    }

    #[test]
    fn a_zero_row_stays_zero() {
        let q = QuantRows::<i16>::from_f32(&[0.0; 8], 1, 8, ACTIVATION_LEVELS);
        assert!(q.row(0).iter().all(|&v| v == 0));
        assert_eq!(q.scales[0], 1.0);
    }
}
