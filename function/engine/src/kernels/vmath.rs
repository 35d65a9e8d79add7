//! Softmax and exact-form GELU four lanes at a time. candle evaluates exp and erf one scalar at
//! a time, which in wasm cost as much as the encoder's attention products.

use wide::f32x4;

fn max(x: &[f32]) -> f32 {
    let (v, rest) = x.as_chunks::<4>();
    let m = v.iter().fold(f32x4::splat(f32::NEG_INFINITY), |m, c| m.max(f32x4::from(*c)));
    let m = m.to_array().into_iter().fold(f32::NEG_INFINITY, f32::max);
    rest.iter().copied().fold(m, f32::max)
}

/// ln Σ exp(x), −∞ when every entry is −∞ (a fully suppressed row).
pub fn log_sum_exp(x: &[f32]) -> f32 {
    let m = max(x);
    if !m.is_finite() {
        return m;
    }
    let mv = f32x4::splat(m);
    let (v, rest) = x.as_chunks::<4>();
    let sum = v.iter().fold(f32x4::splat(0.0), |s, c| s + (f32x4::from(*c) - mv).exp());
    m + (sum.reduce_add() + rest.iter().map(|&r| (r - m).exp()).sum::<f32>()).ln()
}

/// Softmax of one row, in place. `-inf` entries (masked) become 0.
pub fn softmax(x: &mut [f32]) {
    let m = max(x);
    if !m.is_finite() {
        // An all-masked row cannot happen in Whisper; leave it defined all the same.
        x.fill(1.0 / x.len().max(1) as f32);
        return;
    }
    let mv = f32x4::splat(m);
    let (v, rest) = x.as_chunks_mut::<4>();
    let mut sum = f32x4::splat(0.0);
    for c in v.iter_mut() {
        let e = (f32x4::from(*c) - mv).exp();
        sum += e;
        *c = e.into();
    }
    let mut total = sum.reduce_add();
    for r in rest.iter_mut() {
        *r = (*r - m).exp();
        total += *r;
    }
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
                + t * (f32x4::splat(1.421_413_7) + t * (f32x4::splat(-1.453_152_1) + t * f32x4::splat(1.061_405_4)))));
    f32x4::splat(1.0) - poly * (-(x * x)).exp()
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
