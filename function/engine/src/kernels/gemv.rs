//! One activation row times many int8 weight rows stored as i8: the vocabulary projection,
//! which reads 51 864 × d weights per token and is bound by memory, so bytes count twice as
//! much as in [`super::gemm`].

use wide::{i16x8, i32x4};

use super::quant::{QuantRows, padded};

/// Rows of int8 values (one scale each), padded to a multiple of 8.
pub type QuantRowsI8 = QuantRows<i8>;

/// Eight i8 → i16x8 in one widening load (`v128.load8x8_s`); LLVM does not find it alone.
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

/// `out[j] = Σₖ x[k]·w[j,k] · x_scale · w.scale[j]`. `x` is one quantised row of stride
/// `w.stride`.
pub fn matvec_i8(x: &[i16], x_scale: f32, w: &QuantRowsI8, out: &mut [f32]) {
    debug_assert_eq!(x.len(), w.stride);
    debug_assert_eq!(padded(w.k), w.stride);
    let xv: Vec<i16x8> = x.as_chunks::<8>().0.iter().map(|c| i16x8::from(*c)).collect();
    let mut j = 0;
    while j + 4 <= w.rows {
        let rows: [&[[i8; 8]]; 4] = std::array::from_fn(|c| &w.row(j + c).as_chunks::<8>().0[..xv.len()]);
        let mut acc = [i32x4::default(); 4];
        for (t, xt) in xv.iter().enumerate() {
            for c in 0..4 {
                acc[c] += xt.dot(widen(&rows[c][t]));
            }
        }
        let sums = super::gemm::sum4(acc);
        for c in 0..4 {
            out[j + c] = sums[c] as f32 * x_scale * w.scales[j + c];
        }
        j += 4;
    }
    for (j, o) in out.iter_mut().enumerate().take(w.rows).skip(j) {
        let row = &w.row(j).as_chunks::<8>().0[..xv.len()];
        let acc = xv.iter().zip(row).fold(i32x4::default(), |a, (xt, r)| a + xt.dot(widen(r)));
        *o = acc.reduce_add() as f32 * x_scale * w.scales[j];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::gemm::matmul_t;
    use crate::kernels::quant::{ACTIVATION_LEVELS, WEIGHT_LEVELS};

    #[test]
    fn matches_the_i16_kernel() {
        let (n, k) = (11, 389);
        let mut rng = fastrand::Rng::with_seed(3);
        let x: Vec<f32> = (0..k).map(|_| rng.f32() - 0.5).collect();
        let w: Vec<f32> = (0..n * k).map(|_| rng.f32() - 0.5).collect();
        let qx = QuantRows::from_f32(&x, 1, k, ACTIVATION_LEVELS);
        let qw = QuantRows::from_f32(&w, n, k, WEIGHT_LEVELS);
        let mut want = vec![0.0; n];
        matmul_t(qx.view(), qw.view(), 1.0, None, &mut want);
        let mut got = vec![0.0; n];
        matvec_i8(qx.row(0), qx.scales[0], &QuantRowsI8::from_i16(&qw), &mut got);
        // Same integer sums; the scales may be applied in another order.
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{got:?} vs {want:?}");
        }
    }
}
