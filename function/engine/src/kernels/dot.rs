//! The step of the integer products: one lane group of A against one of B, accumulated into
//! i32x4. Two instructions serve:
//!
//! - `i32x4.dot_i16x8_s` (SSE2 `pmaddwd`): 14-bit activations against int8 rows, 8
//!   lanes a step (the decoder, whose accuracy needs the activations' 14 bits);
//! - relaxed-simd `i32x4.relaxed_dot_i8x16_i7x16_add_s`: int8 against 7-bit non-negative
//!   values, 16 lanes a step. On x86 wasmtime lowers it to `pmaddubsw` + `pmaddwd` + `paddd`,
//!   twice the multiply-accumulates per instruction and per byte loaded; the encoder runs on it
//!   (its dev-set WER does not move). Its result is exact whenever the 7-bit operand is in
//!   0..=127 (the only case where relaxed-simd's lowerings may differ is a set top bit), and
//!   `pmaddubsw`'s i16 pair sums stay below 2 × 127 × 128.
//!
//! Which one a product uses follows from its operands' lane types ([`Dot`]).

use wide::{i16x8, i32x4};

/// A group of lanes that a product reads as one vector.
pub trait Lane: Copy {
    type Elem: Copy + Default;
    const WIDTH: usize;
    fn splat(v: Self::Elem) -> Self;
    /// A padded row as lane groups.
    fn of(row: &[Self::Elem]) -> &[Self];
    fn elems(&self) -> &[Self::Elem];
}

impl<T: Copy + Default, const W: usize> Lane for [T; W] {
    type Elem = T;
    const WIDTH: usize = W;
    fn splat(v: T) -> Self {
        [v; W]
    }
    #[inline(always)]
    fn of(row: &[T]) -> &[Self] {
        row.as_chunks::<W>().0
    }
    fn elems(&self) -> &[T] {
        self
    }
}

/// A lane group of B (`self`) and the lane group of A it multiplies: each B type has one A
/// type, so a product's instruction follows from its B operand. Each is loaded once per step,
/// then multiplied with every row of the other operand in the tile.
pub trait Dot: Lane {
    type A: Lane;
    type Va: Copy;
    type Vb: Copy;
    fn load_a(a: &Self::A) -> Self::Va;
    fn load_b(b: &Self) -> Self::Vb;
    /// `acc` plus the products of `a` and `b`, summed into lanes in some grouping (only the
    /// total of all four lanes is used).
    fn dot(acc: i32x4, a: Self::Va, b: Self::Vb) -> i32x4;
}

/// int8 weights, widened by the load itself (half the bytes to stream for the same
/// instruction count).
impl Dot for [i8; 8] {
    type A = [i16; 8];
    type Va = i16x8;
    type Vb = i16x8;
    #[inline(always)]
    fn load_a(a: &[i16; 8]) -> i16x8 {
        i16x8::from(*a)
    }
    #[inline(always)]
    fn load_b(b: &[i8; 8]) -> i16x8 {
        widen(b)
    }
    #[inline(always)]
    fn dot(acc: i32x4, a: i16x8, b: i16x8) -> i32x4 {
        acc + a.dot(b)
    }
}

/// Signed int8 A (activations, queries) against 7-bit B (weights, keys around their zero).
impl Dot for [u8; 16] {
    type A = [i8; 16];
    type Va = [i8; 16];
    type Vb = [u8; 16];
    #[inline(always)]
    fn load_a(a: &[i8; 16]) -> [i8; 16] {
        *a
    }
    #[inline(always)]
    fn load_b(b: &[u8; 16]) -> [u8; 16] {
        *b
    }
    #[inline(always)]
    fn dot(acc: i32x4, a: [i8; 16], b: [u8; 16]) -> i32x4 {
        dot_i8_u7(acc, a, b)
    }
}

/// 7-bit A (probabilities) against signed int8 B (values).
impl Dot for [i8; 16] {
    type A = [u8; 16];
    type Va = [u8; 16];
    type Vb = [i8; 16];
    #[inline(always)]
    fn load_a(a: &[u8; 16]) -> [u8; 16] {
        *a
    }
    #[inline(always)]
    fn load_b(b: &[i8; 16]) -> [i8; 16] {
        *b
    }
    #[inline(always)]
    fn dot(acc: i32x4, a: [u8; 16], b: [i8; 16]) -> i32x4 {
        dot_i8_u7(acc, b, a)
    }
}

#[cfg(target_arch = "wasm32")]
#[inline(always)]
fn dot_i8_u7(acc: i32x4, s: [i8; 16], u: [u8; 16]) -> i32x4 {
    use core::arch::wasm32::{i32x4_relaxed_dot_i8x16_i7x16_add, v128};
    // SAFETY: all four types are 16 plain bytes.
    unsafe {
        let (s, u, c) = (
            std::mem::transmute::<[i8; 16], v128>(s),
            std::mem::transmute::<[u8; 16], v128>(u),
            std::mem::transmute::<i32x4, v128>(acc),
        );
        std::mem::transmute::<v128, i32x4>(i32x4_relaxed_dot_i8x16_i7x16_add(s, u, c))
    }
}

/// Natively (tests and the native CLI; not what ships): SSE2, bytes widened to i16 and two
/// `pmaddwd`; exact, as the wasm instruction is for these operands.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn dot_i8_u7(acc: i32x4, s: [i8; 16], u: [u8; 16]) -> i32x4 {
    use core::arch::x86_64::{
        __m128i, _mm_add_epi32, _mm_madd_epi16, _mm_setzero_si128, _mm_srai_epi16,
        _mm_unpackhi_epi8, _mm_unpacklo_epi8,
    };
    // SAFETY: SSE2 is part of x86_64; all types are 16 plain bytes.
    unsafe {
        let (s, u) = (
            std::mem::transmute::<[i8; 16], __m128i>(s),
            std::mem::transmute::<[u8; 16], __m128i>(u),
        );
        let z = _mm_setzero_si128();
        let (s_lo, s_hi) = (
            _mm_srai_epi16(_mm_unpacklo_epi8(s, s), 8),
            _mm_srai_epi16(_mm_unpackhi_epi8(s, s), 8),
        );
        let (u_lo, u_hi) = (_mm_unpacklo_epi8(u, z), _mm_unpackhi_epi8(u, z));
        let d = _mm_add_epi32(_mm_madd_epi16(s_lo, u_lo), _mm_madd_epi16(s_hi, u_hi));
        acc + std::mem::transmute::<__m128i, i32x4>(d)
    }
}

#[cfg(not(any(target_arch = "wasm32", target_arch = "x86_64")))]
#[inline(always)]
fn dot_i8_u7(acc: i32x4, s: [i8; 16], u: [u8; 16]) -> i32x4 {
    acc + i32x4::from(std::array::from_fn::<i32, 4, _>(|j| {
        (4 * j..4 * j + 4).map(|t| i32::from(s[t]) * i32::from(u[t])).sum()
    }))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The relaxed step is exact over the whole operand ranges the products use.
    #[test]
    fn the_int8_by_7_bit_step_is_exact() {
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..200 {
            let s: [i8; 16] =
                std::array::from_fn(|_| if round == 0 { -127 } else { rng.i8(-127..=127) });
            let u: [u8; 16] =
                std::array::from_fn(|_| if round == 0 { 127 } else { rng.u8(0..=127) });
            let want: i32 =
                s.iter().zip(&u).map(|(&a, &b)| i32::from(a) * i32::from(b)).sum::<i32>() + 40;
            let got = <[u8; 16] as Dot>::dot(i32x4::splat(10), s, u).reduce_add();
            assert_eq!(got, want);
            let got = <[i8; 16] as Dot>::dot(i32x4::splat(10), u, s).reduce_add();
            assert_eq!(got, want);
        }
    }
}
