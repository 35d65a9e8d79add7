//! C = A·Bᵀ over integer rows: both operands k-contiguous ([`QuantRows`]), so one kernel serves
//! x·Wᵀ (linear layers), Q·Kᵀ and P·(Vᵀ)ᵀ. Tiles of 4 rows of A × 2 rows of B keep 8 i32x4
//! accumulators in registers (16 are all x86 has, wasm's lowering included).

use wide::{i16x8, i32x4};

use super::quant::QuantView;

/// Rows of B per block: a block (≤ 64 × 1536 × 2 B) stays in L2 while all of A streams by.
const B_BLOCK: usize = 64;

#[inline(always)]
fn tile<const R: usize, const C: usize>(a: [&[[i16; 8]]; R], b: [&[[i16; 8]]; C]) -> [[i32; C]; R] {
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
    acc.map(|row| row.map(|v| v.reduce_add()))
}

fn lanes<'a>(q: &QuantView<'a>, r: usize) -> &'a [[i16; 8]] {
    q.data[r * q.stride..(r + 1) * q.stride].as_chunks::<8>().0
}

/// `out[i·n + j] = Σₖ a[i,k]·b[j,k] · a.scale[i] · b.scale[j] · alpha (+ bias[j])`, with
/// `n = b.rows`. `a` and `b` must have the same row stride; `out` holds `a.rows × b.rows`.
pub fn matmul_t(a: QuantView<'_>, b: QuantView<'_>, alpha: f32, bias: Option<&[f32]>, out: &mut [f32]) {
    let (m, n) = (a.rows, b.rows);
    debug_assert_eq!(a.stride, b.stride);
    debug_assert!(out.len() >= m * n);
    let mut put = |i: usize, j: usize, acc: i32| {
        let v = acc as f32 * a.scales[i] * b.scales[j] * alpha;
        out[i * n + j] = v + bias.map_or(0.0, |b| b[j]);
    };
    for j0 in (0..n).step_by(B_BLOCK) {
        let j1 = (j0 + B_BLOCK).min(n);
        let mut i = 0;
        while i + 4 <= m {
            let ar = [lanes(&a, i), lanes(&a, i + 1), lanes(&a, i + 2), lanes(&a, i + 3)];
            let mut j = j0;
            while j + 2 <= j1 {
                let acc = tile(ar, [lanes(&b, j), lanes(&b, j + 1)]);
                for (r, row) in acc.iter().enumerate() {
                    put(i + r, j, row[0]);
                    put(i + r, j + 1, row[1]);
                }
                j += 2;
            }
            if j < j1 {
                let acc = tile(ar, [lanes(&b, j)]);
                for (r, row) in acc.iter().enumerate() {
                    put(i + r, j, row[0]);
                }
            }
            i += 4;
        }
        // Leftover rows (all of them for one decoder token): 1 × 4 tiles.
        for i in i..m {
            let ar = [lanes(&a, i)];
            let mut j = j0;
            while j + 4 <= j1 {
                let acc = tile(ar, [lanes(&b, j), lanes(&b, j + 1), lanes(&b, j + 2), lanes(&b, j + 3)]);
                for (c, v) in acc[0].iter().enumerate() {
                    put(i, j + c, *v);
                }
                j += 4;
            }
            for j in j..j1 {
                put(i, j, tile(ar, [lanes(&b, j)])[0][0]);
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
