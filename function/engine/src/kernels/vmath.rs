//! Dot products, softmax and exact-form GELU four lanes at a time. candle evaluates exp and erf one scalar at
//! a time, which in wasm cost as much as the encoder's attention products.

use wide::{CmpLt, f32x4, f32x8, i32x4, i32x8};

/// The dot product of two slices (the shorter's length), four lanes at a time.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (av, ar) = a[..n].as_chunks::<4>();
    let (bv, br) = b[..n].as_chunks::<4>();
    let s = av
        .iter()
        .zip(bv)
        .fold(f32x4::splat(0.0), |s, (x, y)| s + f32x4::from(*x) * f32x4::from(*y));
    s.reduce_add() + ar.iter().zip(br).map(|(x, y)| x * y).sum::<f32>()
}

/// 1.5 · 2²³: adding it to a float below 2²² in magnitude rounds it to an integer (to nearest,
/// ties to even) held in the low mantissa bits.
const ROUND: f32 = 12_582_912.0;

/// Lanes rounded to the nearest integer, ties to even (as `round_int`), for lanes within ±2²²
/// (clamped, or bounded by construction). wide's `round_int` is `f32x4.nearest` and a
/// saturating truncation, whose NaN and overflow fix-ups Cranelift lowers to about ten
/// instructions per four lanes; this is an add and a subtract.
#[inline(always)]
pub(crate) fn round_bounded(x: f32x4) -> i32x4 {
    bytemuck::cast::<f32x4, i32x4>(x + f32x4::splat(ROUND)) - i32x4::splat(ROUND.to_bits() as i32)
}

/// [`round_bounded`], eight lanes.
#[inline(always)]
pub(crate) fn round_bounded8(x: f32x8) -> i32x8 {
    bytemuck::cast::<f32x8, i32x8>(x + f32x8::splat(ROUND)) - i32x8::splat(ROUND.to_bits() as i32)
}

/// exp(x) for x ≤ 0 — all this module needs: softmax and log-sum-exp after subtracting the
/// maximum, erf's exp(−x²). Relative error ≤ 3e-7, exactly 0 below −87 (and for −∞). wide's
/// `exp` also covers overflow and NaN with blends and a float→int conversion (long in wasm),
/// about twice the instructions.
#[inline(always)]
pub(crate) fn exp_neg(x: f32x4) -> f32x4 {
    // exp(x) = 2ⁿ · e^g with n = round(x·log₂e) and g = x − n·ln 2, |g| ≤ ½ ln 2.
    let y = x * f32x4::splat(std::f32::consts::LOG2_E);
    let underflow = y.cmp_lt(f32x4::splat(-126.0));
    let y = y.fast_max(f32x4::splat(-126.0));
    let t = y + f32x4::splat(ROUND);
    let n = t - f32x4::splat(ROUND);
    // ln 2 in two parts (Cody–Waite): n · LN2_HI is exact, so g keeps its precision for any n.
    let g = x - n * f32x4::splat(0.693_359_4) - n * f32x4::splat(-2.121_944_4e-4);
    // e^g by Taylor to g⁶: the remainder is below 0.35⁷/7! = 1.2e-7.
    let c = |v: f32| f32x4::splat(v);
    let p = c(1.0)
        + g * (c(1.0)
            + g * (c(0.5)
                + g * (c(1.0 / 6.0)
                    + g * (c(1.0 / 24.0) + g * (c(1.0 / 120.0) + g * c(1.0 / 720.0))))));
    // 2ⁿ built in the exponent field: n + 127 shifted into place (n ≥ −126: a normal number).
    let n_int = bytemuck::cast::<f32x4, i32x4>(t) - bytemuck::cast::<f32x4, i32x4>(c(ROUND));
    let two_n = bytemuck::cast::<i32x4, f32x4>((n_int + i32x4::splat(127)) << 23);
    (p * two_n) & !underflow
}

/// Four lanes of `c` from `i`.
#[inline(always)]
fn lanes(c: &[f32; 16], i: usize) -> f32x4 {
    f32x4::from([c[i], c[i + 1], c[i + 2], c[i + 3]])
}

/// The largest `f(v)` over `x`, and `floor` if none is larger; `f4` is `f` four lanes at a
/// time. Sixteen entries per iteration (four running maxima): under the host's epoch checks
/// every loop iteration pays a check and a spill of what it carries. `fast_max`
/// (`f32x4.pmax`, one instruction) with the running maximum first: in wasm a NaN value is
/// passed over, as `max` passes it over at five instructions.
#[inline(always)]
pub(crate) fn max_of(
    x: &[f32],
    floor: f32,
    f4: impl Fn(f32x4) -> f32x4,
    f: impl Fn(f32) -> f32,
) -> f32 {
    let (v, rest) = x.as_chunks::<16>();
    let m = v.iter().fold([f32x4::splat(floor); 4], |m, c| {
        std::array::from_fn(|j| m[j].fast_max(f4(lanes(c, 4 * j))))
    });
    let m = m[0].fast_max(m[1]).fast_max(m[2].fast_max(m[3]));
    let m = m.to_array().into_iter().fold(floor, larger);
    rest.iter().fold(m, |m, &v| larger(m, f(v)))
}

/// The largest entry (−∞ for none).
pub fn max(x: &[f32]) -> f32 {
    max_of(x, f32::NEG_INFINITY, |v| v, |v| v)
}

/// The larger of two numbers, `a` when either is NaN: `f32::max` is a libm call (`fmaxf`) in
/// wasm, where `f32.max` propagates NaN.
#[inline(always)]
fn larger(a: f32, b: f32) -> f32 {
    if b > a { b } else { a }
}

/// ln Σ exp(x), −∞ when every entry is −∞ (a fully suppressed row).
pub fn log_sum_exp(x: &[f32]) -> f32 {
    log_sum_exp_at(x, max(x))
}

/// [`log_sum_exp`] of `x` whose largest entry `m` is known: the same value, one pass fewer.
pub fn log_sum_exp_at(x: &[f32], m: f32) -> f32 {
    if !m.is_finite() {
        return m;
    }
    m + sum_exp_shifted(x, m).ln()
}

/// Σ exp(x − m) over `x` (no entry above `m`).
fn sum_exp_shifted(x: &[f32], m: f32) -> f32 {
    let mv = f32x4::splat(m);
    let (v16, rest16) = x.as_chunks::<16>();
    let (v4, rest) = rest16.as_chunks::<4>();
    let mut sum = v16.iter().fold(f32x4::splat(0.0), |s, c| add_in_order(s, exp16(c, mv)));
    sum = v4.iter().fold(sum, |s, c| s + exp_neg(f32x4::from(*c) - mv));
    sum.reduce_add() + rest.iter().map(|&r| (r - m).exp()).sum::<f32>()
}

/// exp(c − m) of sixteen entries. The rows these run over are long (the vocabulary, the
/// audio frames), so their loops take sixteen entries per iteration: under the host's epoch
/// checks every iteration pays a check and a round trip of the running sum through its stack
/// slot.
#[inline(always)]
fn exp16(c: &[f32; 16], mv: f32x4) -> [f32x4; 4] {
    std::array::from_fn(|j| exp_neg(lanes(c, 4 * j) - mv))
}

/// `s` plus four vectors one after another: the same sum as four entries per iteration.
#[inline(always)]
fn add_in_order(s: f32x4, e: [f32x4; 4]) -> f32x4 {
    ((s + e[0]) + e[1]) + e[2] + e[3]
}

/// `exp(x − max x)` in place, and its sum; `None` when the maximum is not finite (every entry
/// masked), leaving `x` as it was. The largest entry becomes 1.
pub fn exp_shifted(x: &mut [f32]) -> Option<f32> {
    let m = max(x);
    if !m.is_finite() {
        return None;
    }
    let mv = f32x4::splat(m);
    let (v16, rest16) = x.as_chunks_mut::<16>();
    let mut sum = f32x4::splat(0.0);
    for c in v16.iter_mut() {
        let e = exp16(c, mv);
        sum = add_in_order(sum, e);
        *c = bytemuck::cast::<[f32x4; 4], [f32; 16]>(e);
    }
    let (v4, rest) = rest16.as_chunks_mut::<4>();
    for c in v4.iter_mut() {
        let e = exp_neg(f32x4::from(*c) - mv);
        sum += e;
        *c = e.into();
    }
    let mut total = sum.reduce_add();
    for r in rest.iter_mut() {
        *r = (*r - m).exp();
        total += *r;
    }
    Some(total)
}

/// Softmax of one row, in place. `-inf` entries (masked) become 0.
pub fn softmax(x: &mut [f32]) {
    let Some(total) = exp_shifted(x) else {
        // An all-masked row cannot happen in Whisper; leave it defined all the same.
        x.fill(1.0 / x.len().max(1) as f32);
        return;
    };
    let inv = 1.0 / total;
    x.iter_mut().for_each(|v| *v *= inv);
}

/// erf for x ≥ 0 (Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7).
fn erf_non_negative(x: f32x4) -> f32x4 {
    // A true division: `recip` is SSE's 12-bit estimate natively.
    let t = f32x4::splat(1.0) / (f32x4::splat(1.0) + f32x4::splat(0.327_591_1) * x);
    let poly = t
        * (f32x4::splat(0.254_829_6)
            + t * (f32x4::splat(-0.284_496_74)
                + t * (f32x4::splat(1.421_413_7)
                    + t * (f32x4::splat(-1.453_152_1) + t * f32x4::splat(1.061_405_4)))));
    f32x4::splat(1.0) - poly * exp_neg(-(x * x))
}

/// GELU with erf (what Whisper was trained with), in place.
pub fn gelu(x: &mut [f32]) {
    let (v, rest) = x.as_chunks_mut::<4>();
    let half = f32x4::splat(0.5);
    let inv_sqrt2 = f32x4::splat(std::f32::consts::FRAC_1_SQRT_2);
    for c in v.iter_mut() {
        let x = f32x4::from(*c);
        let e = erf_non_negative(x.abs() * inv_sqrt2).copysign(x);
        *c = (half * x * (f32x4::splat(1.0) + e)).into();
    }
    for r in rest.iter_mut() {
        let mut lane = [*r, 0.0, 0.0, 0.0];
        gelu(&mut lane);
        *r = lane[0];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bounded round is `round_int` (nearest, ties to even) wherever it is used: ties,
    /// signs, the quantisers' extremes and values between.
    #[test]
    fn the_bounded_round_equals_round_int() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut x = vec![0.5f32, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, -127.0, 127.0, 0.0, -0.0];
        x.extend([8191.5, -8191.5, 32767.0, -32767.0, 4_194_303.0, -4_194_303.0]);
        x.extend((0..4000).map(|_| (rng.f32() - 0.5) * 2.0 * 40_000.0));
        x.extend((0..4000).map(|_| (rng.f32() - 0.5) * 300.0));
        for c in x.chunks_exact(8) {
            let v: [f32; 8] = std::array::from_fn(|i| c[i]);
            let want = f32x8::from(v).round_int().to_array();
            assert_eq!(round_bounded8(f32x8::from(v)).to_array(), want, "{v:?}");
            let low: [f32; 4] = std::array::from_fn(|i| v[i]);
            assert_eq!(round_bounded(f32x4::from(low)).to_array(), want[..4], "{low:?}");
        }
    }

    #[test]
    fn gelu_matches_the_erf_form() {
        // Reference values of x·Φ(x) (computed in f64).
        let cases = [
            (-4.0f32, -1.266_849_7e-4f32),
            (-1.0, -0.158_655_25),
            (-0.1, -0.046_017_22),
            (0.0, 0.0),
            (0.5, 0.345_731_23),
            (1.0, 0.841_344_7),
            (3.0, 2.995_950_3),
        ];
        let mut x: Vec<f32> = cases.iter().map(|c| c.0).collect();
        gelu(&mut x);
        for ((input, want), got) in cases.iter().zip(&x) {
            assert!((got - want).abs() < 2e-6, "gelu({input}) = {got}, want {want}");
        }
    }

    /// The sixteen-wide maximum agrees with a plain scalar one, whatever the length's
    /// remainder.
    #[test]
    fn max_matches_a_scalar_scan() {
        for n in [0, 1, 3, 4, 15, 16, 17, 35, 384, 51_864] {
            let x: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1013) as f32 - 500.0) * 0.01).collect();
            assert_eq!(max(&x), x.iter().copied().fold(f32::NEG_INFINITY, f32::max), "n {n}");
        }
    }

    #[test]
    fn log_sum_exp_matches_f64() {
        let x: Vec<f32> = (0..51_865).map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 0.03).collect();
        let want = {
            let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            m + x.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln()
        };
        assert!((log_sum_exp(&x) as f64 - want).abs() < 1e-4, "{} vs {want}", log_sum_exp(&x));
        assert_eq!(log_sum_exp(&[f32::NEG_INFINITY; 5]), f32::NEG_INFINITY);
        let mut with_masked = vec![f32::NEG_INFINITY; 7];
        with_masked[3] = 2.0;
        assert!((log_sum_exp(&with_masked) - 2.0).abs() < 1e-6);
    }

    #[test]
    fn exp_of_non_positive_values_is_within_3e_7() {
        for i in 0..=87_000 {
            let x = -(i as f32) * 0.001;
            let got = exp_neg(f32x4::splat(x)).to_array()[0] as f64;
            let want = (x as f64).exp();
            assert!((got - want).abs() <= 3e-7 * want + 1e-37, "exp({x}) = {got}, want {want}");
        }
        assert_eq!(
            exp_neg(f32x4::from([f32::NEG_INFINITY, -90.0, -0.0, 0.0])).to_array(),
            [0.0, 0.0, 1.0, 1.0]
        );
    }

    #[test]
    fn softmax_sums_to_one_and_masks() {
        let mut x = vec![1.0, 2.0, f32::NEG_INFINITY, 3.0, 0.5, -1.0, 2.5];
        softmax(&mut x);
        assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(x[2], 0.0);
        let e: Vec<f64> = [1.0f64, 2.0, 3.0, 0.5, -1.0, 2.5].iter().map(|v| v.exp()).collect();
        let s: f64 = e.iter().sum();
        assert!((x[3] as f64 - e[2] / s).abs() < 1e-6, "{x:?}");
    }
}
