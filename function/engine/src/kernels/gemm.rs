//! C = A·Bᵀ over integer rows: both operands k-contiguous, A as rows ([`QuantView`]), B in
//! panels of four rows ([`PanelView`]), so one kernel serves x·Wᵀ (linear layers), Q·Kᵀ and
//! P·(Vᵀ)ᵀ, on whichever instruction the operands' lane types select ([`Dot`]).

use wide::{f32x4, i32x4};

use super::dot::{Dot, Lane};
use super::pack::{PANEL, PanelView};
use super::quant::QuantView;

/// Panels of B per block: a block (≤ 16 × 4 × 1536 × 2 B) stays in L2 while all of A streams by.
const PANEL_BLOCK: usize = 16;

/// Steps (lane groups) per loop iteration. Under the host's CPU budget (wasmtime epoch
/// interruption) Cranelift checks the epoch at every loop head, and because that check may
/// call out it keeps the accumulators in stack slots across it: a load and a store per
/// accumulator per iteration, which with one step per iteration doubled the product's time.
/// Two steps halve that; more run out of registers: Cranelift keeps an iteration's loads in
/// place and computes the pure arithmetic where it is used (the accumulators at the loop's
/// end), so every step's operands of an iteration are live at once — with three rows of A, two
/// steps load 14 vectors.
const UNROLL: usize = 2;
/// Steps per iteration for a single row of A (a decoder token's products, which stream the
/// decoder's weights and the vocabulary table for every token): three steps load 15 vectors
/// (3 of A, 12 of B), within the 16 registers, for one round trip of the 4 accumulators
/// through their stack slots per 12 products instead of per 8 (measured in the compiled code:
/// no other spills; 6.4 instructions per product instead of 7.0).
const UNROLL_ONE_ROW: usize = 3;

/// R rows of A against one panel of B: R × 4 i32x4 accumulators, one dot step per pair and
/// lane group.
#[inline(always)]
fn tile<const R: usize, const U: usize, B: Dot>(
    a: [&[B::A]; R],
    b: &[[B; PANEL]],
) -> [[i32x4; PANEL]; R] {
    // A constant, not `default()`: Cranelift kept that a call per tile.
    let mut acc = [[i32x4::ZERO; PANEL]; R];
    let mut step = |av: [&B::A; R], bt: &[B; PANEL]| {
        let bv: [B::Vb; PANEL] = std::array::from_fn(|c| B::load_b(&bt[c]));
        for r in 0..R {
            let x = B::load_a(av[r]);
            for c in 0..PANEL {
                acc[r][c] = B::dot(acc[r][c], x, bv[c]);
            }
        }
    };
    let (b2, b_rest) = b.as_chunks::<U>();
    // Sliced to b2's length so that indexing by b2's position needs no bounds check.
    let a2 = a.map(|x| &x.as_chunks::<U>().0[..b2.len()]);
    for (s, bt) in b2.iter().enumerate() {
        for u in 0..U {
            step(std::array::from_fn(|r| &a2[r][s][u]), &bt[u]);
        }
    }
    let done = b2.len() * U;
    for (t, bt) in b_rest.iter().enumerate() {
        step(std::array::from_fn(|r| &a[r][done + t]), bt);
    }
    acc
}

/// The lane sums of four accumulators at once (`[Σv₀, Σv₁, Σv₂, Σv₃]`): two rounds of
/// interleave-and-add instead of four separate horizontal sums, which for short products
/// (Q·Kᵀ, k = 64) cost as much as the products.
#[cfg(target_arch = "wasm32")]
#[inline(always)]
fn sum4(v: [i32x4; 4]) -> [i32; 4] {
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
fn sum4(v: [i32x4; 4]) -> [i32; 4] {
    use core::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_unpackhi_epi32, _mm_unpackhi_epi64, _mm_unpacklo_epi32,
        _mm_unpacklo_epi64,
    };
    // SAFETY: SSE2 is part of x86_64; i32x4 and __m128i are both 16 plain bytes.
    unsafe {
        let [a, b, c, d] = v.map(|x| std::mem::transmute::<i32x4, __m128i>(x));
        let ab = _mm_add_epi32(_mm_unpacklo_epi32(a, b), _mm_unpackhi_epi32(a, b));
        let cd = _mm_add_epi32(_mm_unpacklo_epi32(c, d), _mm_unpackhi_epi32(c, d));
        std::mem::transmute::<__m128i, [i32; 4]>(_mm_add_epi32(
            _mm_unpacklo_epi64(ab, cd),
            _mm_unpackhi_epi64(ab, cd),
        ))
    }
}

#[cfg(not(any(target_arch = "wasm32", target_arch = "x86_64")))]
#[inline(always)]
fn sum4(v: [i32x4; 4]) -> [i32; 4] {
    v.map(|x| x.reduce_add())
}

fn lanes<'a, A: Lane>(q: &QuantView<'a, A::Elem>, r: usize) -> &'a [A] {
    A::of(q.row(r))
}

/// Four consecutive values from `j`, zero past the end.
fn four(s: &[f32], j: usize) -> f32x4 {
    f32x4::from(std::array::from_fn::<f32, 4, _>(|c| s.get(j + c).copied().unwrap_or(0.0)))
}

/// `out[i·n + j] = Σₖ a[i,k]·(b[j,k] − zero) · a.scale[i] · b.scale[j] · alpha (+ bias[j])`,
/// with `n = b.rows`: B's zero point comes off as `zero · Σₖ a[i,k]` (A's row sums). A's
/// row stride must be B's steps × the lane width; `out` holds `a.rows × b.rows`. Tiles of 3 rows of A × one
/// panel (4 rows of B), 12 accumulators: under epoch checks they live in stack slots anyway,
/// so more rows per B load pays (measured in wasm as served: 3 rows ≈ 9 % faster end to end
/// than 2, 4 rows slower again — the operands of two steps no longer fit in registers).
pub fn matmul_t<B: Dot>(
    a: QuantView<'_, <B::A as Lane>::Elem>,
    b: PanelView<'_, B>,
    alpha: f32,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let (m, n) = (a.rows, b.rows);
    debug_assert_eq!(a.stride, b.steps * B::A::WIDTH);
    debug_assert!(b.zero == 0 || a.sums.len() == m, "a zero point needs A's row sums");
    debug_assert!(out.len() >= m * n);
    // A panel's four outputs of row i at once: sums, scales and bias as vectors, one store. Done
    // one scalar at a time, this epilogue cost as much as the products when k is short.
    let put = |out: &mut [f32], i: usize, p: usize, acc: [i32x4; PANEL]| {
        let j = p * PANEL;
        let v = f32x4::from_i32x4(i32x4::from(sum4(acc)) - i32x4::splat(b.zero * a.sum(i)))
            * f32x4::from(b.panel_scales(p))
            * f32x4::splat(a.scales[i] * alpha)
            + bias.map_or(f32x4::splat(0.0), |b| four(b, j));
        let row = &mut out[i * n..(i + 1) * n];
        if j + PANEL <= n {
            row[j..j + PANEL].copy_from_slice(&v.to_array());
        } else {
            let w = n - j;
            row[j..].copy_from_slice(&v.to_array()[..w]);
        }
    };
    let panels = b.panels();
    for p0 in (0..panels).step_by(PANEL_BLOCK) {
        let p1 = (p0 + PANEL_BLOCK).min(panels);
        let mut i = 0;
        while i + 3 <= m {
            let ar = [lanes::<B::A>(&a, i), lanes::<B::A>(&a, i + 1), lanes::<B::A>(&a, i + 2)];
            for p in p0..p1 {
                let [r0, r1, r2] = tile::<3, UNROLL, B>(ar, b.panel(p));
                put(out, i, p, r0);
                put(out, i + 1, p, r1);
                put(out, i + 2, p, r2);
            }
            i += 3;
        }
        while i + 2 <= m {
            let ar = [lanes::<B::A>(&a, i), lanes::<B::A>(&a, i + 1)];
            for p in p0..p1 {
                let [r0, r1] = tile::<2, UNROLL, B>(ar, b.panel(p));
                put(out, i, p, r0);
                put(out, i + 1, p, r1);
            }
            i += 2;
        }
        // A leftover row (the only one for a decoder token).
        for i in i..m {
            for p in p0..p1 {
                let [r0] = tile::<1, UNROLL_ONE_ROW, B>([lanes::<B::A>(&a, i)], b.panel(p));
                put(out, i, p, r0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::pack::{Int8Panels, Panels, U7Panels};
    use crate::kernels::quant::{ACTIVATION_LEVELS, QuantRows, U7_MAX, WEIGHT_LEVELS};

    fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = fastrand::Rng::with_seed(seed);
        (0..n).map(|_| rng.f32() * 2.0 - 1.0).collect()
    }

    const SHAPES: [(usize, usize, usize); 5] =
        [(1, 7, 13), (5, 9, 384), (8, 130, 64), (3, 4, 1536), (2, 6, 1500)];

    fn exact(
        a: &[f32],
        b: &[f32],
        (m, n, k): (usize, usize, usize),
        alpha: f32,
        bias: &[f32],
    ) -> Vec<f32> {
        (0..m * n)
            .map(|ij| {
                (0..k).map(|t| a[ij / n * k + t] * b[ij % n * k + t]).sum::<f32>() * alpha
                    + bias[ij % n]
            })
            .collect()
    }

    /// Every tile shape and leftover path against an f32 reference, within quantisation error.
    #[test]
    fn integer_product_matches_f32_within_quantisation_error() {
        for (m, n, k) in SHAPES {
            let a = pseudo_random(m * k, 1);
            let b = pseudo_random(n * k, 2);
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.5).collect();
            let qa = QuantRows::<i16>::from_f32(&a, m, k, ACTIVATION_LEVELS);
            let w = Int8Panels::int8_from_f32(&b, n, k);
            let mut out = vec![0.0; m * n];
            matmul_t(qa.view(), w.view(), 0.5, Some(&bias), &mut out);
            for (ij, (got, want)) in
                out.iter().zip(exact(&a, &b, (m, n, k), 0.5, &bias)).enumerate()
            {
                // int8 weights: each product is off by at most half a weight step.
                let tol = 0.5 * (k as f32).sqrt() * w.scales[ij % n] + 1e-3;
                assert!((got - want).abs() <= tol, "({m},{n},{k}) [{ij}] {got} vs {want}");
            }
        }
    }

    /// The relaxed products: int8 rows against 7-bit weights around their zero point (the
    /// zero point taken off through the row sums), and 7-bit rows against int8 — every tile
    /// shape, within both operands' quantisation error.
    #[test]
    fn relaxed_products_match_f32_within_quantisation_error() {
        for (m, n, k) in SHAPES {
            let a = pseudo_random(m * k, 3);
            let b = pseudo_random(n * k, 4);
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.25).collect();
            let mut qa = QuantRows::<i8>::default();
            qa.fill_i8(&a, m, k);
            let w = U7Panels::u7_from_f32(&b, n, k);
            let mut out = vec![0.0; m * n];
            matmul_t(qa.view(), w.view(), 0.5, Some(&bias), &mut out);
            let a_step = qa.scales.iter().fold(0f32, |x, &y| x.max(y));
            for (ij, (got, want)) in
                out.iter().zip(exact(&a, &b, (m, n, k), 0.5, &bias)).enumerate()
            {
                // Rounding errors of both operands, ≤ half a step each, add up like a random walk.
                let tol = 2.0 * (k as f32).sqrt() * (w.scales[ij % n] + a_step) + 1e-3;
                assert!((got - want).abs() <= tol, "i8·u7 ({m},{n},{k}) [{ij}] {got} vs {want}");
            }

            // Probabilities (0..=1) against signed values.
            let p: Vec<f32> = a.iter().map(|v| v.abs()).collect();
            let mut qp = QuantRows::<u8>::default();
            qp.fill(&p, m, k, U7_MAX);
            let mut qv = QuantRows::<i8>::default();
            qv.fill_i8(&b, n, k);
            let vp: Panels<[i8; 16]> = Panels::from_rows(&qv);
            matmul_t(qp.view(), vp.view(), 1.0, None, &mut out);
            for (ij, (got, want)) in
                out.iter().zip(exact(&p, &b, (m, n, k), 1.0, &[0.0; 130])).enumerate()
            {
                let tol = 2.0 * (k as f32).sqrt() * (qv.scales[ij % n] + qp.scales[ij / n]) + 1e-3;
                assert!((got - want).abs() <= tol, "u7·i8 ({m},{n},{k}) [{ij}] {got} vs {want}");
            }
        }
    }

    /// int8 panels (widened by the load) give exactly the integer sums of the rows, scaled as
    /// the epilogue scales them.
    #[test]
    fn int8_panels_give_the_exact_integer_sums() {
        let (m, n, k) = (5, 11, 389);
        let qa = QuantRows::<i16>::from_f32(&pseudo_random(m * k, 4), m, k, ACTIVATION_LEVELS);
        let qb = QuantRows::<i8>::from_f32(&pseudo_random(n * k, 5), n, k, WEIGHT_LEVELS);
        let mut got = vec![0.0; m * n];
        let b8: Int8Panels = Panels::from_rows(&qb);
        matmul_t(qa.view(), b8.view(), 1.0, None, &mut got);
        let want: Vec<f32> = (0..m * n)
            .map(|ij| {
                let (i, j) = (ij / n, ij % n);
                let s: i32 = qa
                    .row(i)
                    .iter()
                    .zip(qb.row(j))
                    .map(|(&x, &y)| i32::from(x) * i32::from(y))
                    .sum();
                s as f32 * qb.scales[j] * qa.scales[i]
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn largest_values_do_not_overflow() {
        let k = 1536;
        let qa = QuantRows::<i16>::from_f32(&vec![1.0; k], 1, k, ACTIVATION_LEVELS);
        let mut out = vec![0.0; 2];
        matmul_t(
            qa.view(),
            Int8Panels::int8_from_f32(&vec![-1.0; 2 * k], 2, k).view(),
            1.0,
            None,
            &mut out,
        );
        assert!(out.iter().all(|&v| (v + k as f32).abs() < 1e-2), "{out:?}");

        // The relaxed step at its extremes (−127 against 127 in every lane) and a long row.
        let mut qa = QuantRows::<i8>::default();
        qa.fill_i8(&vec![-1.0; k], 1, k);
        let w = U7Panels::u7_from_f32(&vec![1.0; 2 * k], 2, k);
        matmul_t(qa.view(), w.view(), 1.0, None, &mut out);
        assert!(out.iter().all(|&v| (v + k as f32).abs() < 1e-2), "{out:?}");
    }
}
