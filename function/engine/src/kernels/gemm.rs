//! C = A·Bᵀ over integer rows: both operands k-contiguous ([`QuantRows`]), so one kernel serves
//! x·Wᵀ (linear layers), Q·Kᵀ and P·(Vᵀ)ᵀ.

use wide::{f32x4, i16x8, i32x4};

use super::quant::QuantView;

/// Rows of B per block: a block (≤ 64 × 1536 × 2 B) stays in L2 while all of A streams by.
const B_BLOCK: usize = 64;

/// R rows of A against C rows of B: R × C i32x4 accumulators, one `dot_i16x8` per pair and step.
#[inline(always)]
fn tile<const R: usize, const C: usize>(a: [&[[i16; 8]]; R], b: [&[[i16; 8]]; C]) -> [[i32x4; C]; R] {
    let steps = a[0].len();
    let a = a.map(|x| &x[..steps]);
    let b = b.map(|x| &x[..steps]);
    let mut acc = [[i32x4::default(); C]; R];
    for t in 0..steps {
        let bv: [i16x8; C] = std::array::from_fn(|c| i16x8::from(b[c][t]));
        for r in 0..R {
            let av = i16x8::from(a[r][t]);
            for c in 0..C {
                acc[r][c] += av.dot(bv[c]);
            }
        }
    }
    acc
}

/// The lane sums of four accumulators at once (`[Σv₀, Σv₁, Σv₂, Σv₃]`): two rounds of
/// interleave-and-add instead of four separate horizontal sums, which for short products
/// (Q·Kᵀ, k = 64) cost as much as the products.
#[cfg(target_arch = "wasm32")]
#[inline(always)]
pub(crate) fn sum4(v: [i32x4; 4]) -> [i32; 4] {
    use core::arch::wasm32::{i32x4_add, i32x4_shuffle, i64x2_shuffle, v128};
    // SAFETY: i32x4 and v128 are both 16 plain bytes.
    let [a, b, c, d] = v.map(|x| unsafe { std::mem::transmute::<i32x4, v128>(x) });
    let ab = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a, b), i32x4_shuffle::<2, 6, 3, 7>(a, b));
    let cd = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(c, d), i32x4_shuffle::<2, 6, 3, 7>(c, d));
    let s = i32x4_add(i64x2_shuffle::<0, 2>(ab, cd), i64x2_shuffle::<1, 3>(ab, cd));
    // SAFETY: as above.
    unsafe { std::mem::transmute::<v128, [i32; 4]>(s) }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn sum4(v: [i32x4; 4]) -> [i32; 4] {
    use core::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_unpackhi_epi32, _mm_unpackhi_epi64, _mm_unpacklo_epi32, _mm_unpacklo_epi64,
    };
    // SAFETY: SSE2 is part of x86_64; i32x4 and __m128i are both 16 plain bytes.
    unsafe {
        let [a, b, c, d] = v.map(|x| std::mem::transmute::<i32x4, __m128i>(x));
        let ab = _mm_add_epi32(_mm_unpacklo_epi32(a, b), _mm_unpackhi_epi32(a, b));
        let cd = _mm_add_epi32(_mm_unpacklo_epi32(c, d), _mm_unpackhi_epi32(c, d));
        std::mem::transmute::<__m128i, [i32; 4]>(_mm_add_epi32(_mm_unpacklo_epi64(ab, cd), _mm_unpackhi_epi64(ab, cd)))
    }
}

#[cfg(not(any(target_arch = "wasm32", target_arch = "x86_64")))]
#[inline(always)]
pub(crate) fn sum4(v: [i32x4; 4]) -> [i32; 4] {
    v.map(|x| x.reduce_add())
}

fn lanes<'a>(q: &QuantView<'a>, r: usize) -> &'a [[i16; 8]] {
    q.row(r).as_chunks::<8>().0
}

/// `out[i·n + j] = Σₖ a[i,k]·b[j,k] · a.scale[i] · b.scale[j] · alpha (+ bias[j])`, with
/// `n = b.rows`. `a` and `b` must have the same row stride; `out` holds `a.rows × b.rows`.
/// Tiles of 2 rows of A × 4 rows of B keep 8 accumulators in registers (x86 has 16, wasm's
/// lowering included).
pub fn matmul_t(a: QuantView<'_>, b: QuantView<'_>, alpha: f32, bias: Option<&[f32]>, out: &mut [f32]) {
    let (m, n) = (a.rows, b.rows);
    debug_assert_eq!(a.stride, b.stride);
    debug_assert!(out.len() >= m * n);
    let put = |out: &mut [f32], i: usize, j: usize, acc: i32| {
        let v = acc as f32 * a.scales[i] * b.scales[j] * alpha;
        out[i * n + j] = v + bias.map_or(0.0, |b| b[j]);
    };
    // Four outputs of a row at once: their sums, scales and bias in one vector, one store. Done
    // one scalar at a time, this epilogue cost as much as the products when k is short.
    let put4 = |out: &mut [f32], i: usize, j: usize, acc: [i32x4; 4]| {
        let lanes4 = |s: &[f32]| <[f32; 4]>::try_from(&s[j..j + 4]).map_or(f32x4::splat(0.0), f32x4::from);
        let v = f32x4::from_i32x4(i32x4::from(sum4(acc))) * lanes4(b.scales) * f32x4::splat(a.scales[i] * alpha)
            + bias.map_or(f32x4::splat(0.0), lanes4);
        out[i * n + j..i * n + j + 4].copy_from_slice(&v.to_array());
    };
    for j0 in (0..n).step_by(B_BLOCK) {
        let j1 = (j0 + B_BLOCK).min(n);
        let mut i = 0;
        while i + 2 <= m {
            let ar = [lanes(&a, i), lanes(&a, i + 1)];
            let mut j = j0;
            while j + 4 <= j1 {
                let acc = tile(ar, [lanes(&b, j), lanes(&b, j + 1), lanes(&b, j + 2), lanes(&b, j + 3)]);
                for (r, row) in acc.into_iter().enumerate() {
                    put4(out, i + r, j, row);
                }
                j += 4;
            }
            for j in j..j1 {
                let acc = tile(ar, [lanes(&b, j)]);
                for (r, row) in acc.iter().enumerate() {
                    put(out, i + r, j, row[0].reduce_add());
                }
            }
            i += 2;
        }
        // A leftover row (the only one for a decoder token): 1 × 4 tiles.
        for i in i..m {
            let ar = [lanes(&a, i)];
            let mut j = j0;
            while j + 4 <= j1 {
                let [row] = tile(ar, [lanes(&b, j), lanes(&b, j + 1), lanes(&b, j + 2), lanes(&b, j + 3)]);
                put4(out, i, j, row);
                j += 4;
            }
            for j in j..j1 {
                put(out, i, j, tile(ar, [lanes(&b, j)])[0][0].reduce_add());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::quant::{ACTIVATION_LEVELS, QuantRows, WEIGHT_LEVELS};

    fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n).map(|_| rng.f32() * 2.0 - 1.0).collect()
    }

    /// Every tile shape and leftover path against an f32 reference, within quantisation error.
    #[test]
    fn integer_product_matches_f32_within_quantisation_error() {
        for (m, n, k) in [(1, 7, 13), (5, 9, 384), (8, 130, 64), (3, 4, 1536)] {
            let a = pseudo_random(m * k, 1);
            let b = pseudo_random(n * k, 2);
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.5).collect();
            let qa = QuantRows::from_f32(&a, m, k, ACTIVATION_LEVELS);
            let qb = QuantRows::from_f32(&b, n, k, WEIGHT_LEVELS);
            let mut out = vec![0.0; m * n];
            matmul_t(qa.view(), qb.view(), 0.5, Some(&bias), &mut out);
            for i in 0..m {
                for j in 0..n {
                    let exact: f32 = (0..k).map(|t| a[i * k + t] * b[j * k + t]).sum::<f32>() * 0.5 + bias[j];
                    // int8 weights: each product is off by at most half a weight step.
                    let tol = 0.5 * (k as f32).sqrt() * qb.scales[j] + 1e-3;
                    let got = out[i * n + j];
                    assert!((got - exact).abs() <= tol, "({m},{n},{k}) [{i},{j}] {got} vs {exact}");
                }
            }
        }
    }

    #[test]
    fn largest_values_do_not_overflow() {
        let k = 1536;
        let qa = QuantRows::from_f32(&vec![1.0; k], 1, k, ACTIVATION_LEVELS);
        let qb = QuantRows::from_f32(&vec![-1.0; 2 * k], 2, k, WEIGHT_LEVELS);
        let mut out = vec![0.0; 2];
        matmul_t(qa.view(), qb.view(), 1.0, None, &mut out);
        assert!(out.iter().all(|&v| (v + k as f32).abs() < 1e-2), "{out:?}");
    }
}
