//! `stt-bench dot`: what the encoder's int8 product step costs as wasmtime lowers it on x86,
//! against the one instruction made for it. Relaxed-simd's `i32x4.relaxed_dot_i8x16_i7x16_add_s`
//! is lowered by wasmtime 48 (and 50) to `pmaddubsw` + `pmaddwd` (by ones) + `paddd`; CPUs with
//! AVX-512 VNNI or AVX-VNNI do the same step in one `vpdpbusd`, on the same 128-bit registers.
//! Cranelift has that fold (a rule for the u8 × i8 widening dot-accumulate tree), but wasmtime's
//! wasm translator emits `x86_pmaddubsw` for this instruction on x86, and no wasm instruction
//! sequence produces the tree the rule matches, so wasm code never gets it.
//!
//! Both sides run natively here, on our product's tile (3 rows of A × 4 rows of B, 16 bytes a
//! step, the row's lane sums at the end) and the encoder's shapes, and must give the same sums:
//! the ratio is what a VNNI lowering would do to the products that are most of a served
//! instance's time.

// Elsewhere only `run`'s skip message is compiled in; the rest is x86's.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_imports))]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;

use crate::engine_rtf::{median, write_section};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Timed runs of each kernel per shape; the median is reported.
    #[arg(long, default_value_t = 7)]
    reps: usize,
    /// Where the report goes.
    #[arg(long, default_value = "docs/PERFORMANCE_REPORT.md")]
    out: PathBuf,
}

/// The encoder's relaxed products for tiny.en (d = 384, 6 heads, a 30 s window): rows of A,
/// rows of B, k.
const SHAPES: [(&str, usize, usize, usize); 3] = [
    ("MLP fc1, x·Wᵀ", 1500, 1536, 384),
    ("q/k/v/out projection, x·Wᵀ", 1500, 384, 384),
    ("scores of a head, Q·Kᵀ", 1500, 1500, 64),
];

/// Signed A rows and 7-bit B rows of `k` bytes (a multiple of 16), as the engine stores them.
struct Operands {
    a: Vec<[i8; 16]>,
    b: Vec<[u8; 16]>,
    m: usize,
    n: usize,
    steps: usize,
}

impl Operands {
    fn random(m: usize, n: usize, k: usize) -> Self {
        let mut rng = fastrand::Rng::with_seed(19);
        let steps = k / 16;
        Self {
            a: (0..m * steps).map(|_| std::array::from_fn(|_| rng.i8(-127..=127))).collect(),
            b: (0..n * steps).map(|_| std::array::from_fn(|_| rng.u8(0..=127))).collect(),
            m,
            n,
            steps,
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Operands;

    /// The tile over all of A and B; `step(acc, b, a)` is one 16-byte step.
    ///
    /// # Safety
    /// The CPU must have what `step` uses (SSE2 otherwise: every x86_64 has it).
    #[inline(always)]
    unsafe fn tiles(
        o: &Operands,
        out: &mut [i32],
        step: impl Fn(__m128i, __m128i, __m128i) -> __m128i,
    ) {
        let s = o.steps;
        for i in (0..o.m - o.m % 3).step_by(3) {
            for j in (0..o.n - o.n % 4).step_by(4) {
                // SAFETY (here and below): SSE2 is part of x86_64; the loads read 16 plain bytes
                // of an operand row, unaligned.
                let mut acc = [[unsafe { _mm_setzero_si128() }; 4]; 3];
                for t in 0..s {
                    let b: [__m128i; 4] = std::array::from_fn(|c| unsafe {
                        _mm_loadu_si128(o.b[(j + c) * s + t].as_ptr().cast())
                    });
                    for (r, row) in acc.iter_mut().enumerate() {
                        let a = unsafe { _mm_loadu_si128(o.a[(i + r) * s + t].as_ptr().cast()) };
                        for (c, v) in row.iter_mut().enumerate() {
                            *v = step(*v, b[c], a);
                        }
                    }
                }
                for (r, row) in acc.iter().enumerate() {
                    for (c, v) in row.iter().enumerate() {
                        // SAFETY: __m128i and [i32; 4] are both 16 plain bytes.
                        let lanes: [i32; 4] = unsafe { std::mem::transmute(*v) };
                        out[(i + r) * o.n + j + c] = lanes.iter().sum();
                    }
                }
            }
        }
    }

    /// wasmtime's lowering of the relaxed dot-accumulate.
    #[target_feature(enable = "ssse3")]
    pub unsafe fn as_wasmtime_lowers_it(o: &Operands, out: &mut [i32]) {
        let ones = _mm_set1_epi16(1);
        // SAFETY: SSSE3 is enabled for this function and checked by the caller.
        unsafe {
            tiles(o, out, |acc, b, a| {
                _mm_add_epi32(acc, _mm_madd_epi16(_mm_maddubs_epi16(b, a), ones))
            })
        }
    }

    /// The same step on VNNI.
    #[target_feature(enable = "avx512vnni,avx512vl")]
    pub unsafe fn on_vnni(o: &Operands, out: &mut [i32]) {
        // SAFETY: AVX-512 VNNI and VL are enabled for this function and checked by the caller.
        unsafe { tiles(o, out, |acc, b, a| _mm_dpbusd_epi32(acc, b, a)) }
    }

    pub fn has_vnni() -> bool {
        is_x86_feature_detected!("avx512vnni") && is_x86_feature_detected!("avx512vl")
    }
}

pub fn run(a: &Args) -> anyhow::Result<()> {
    // Elsewhere there is nothing to compare (`make bench` goes on; the report keeps its table).
    #[cfg(not(target_arch = "x86_64"))]
    {
        eprintln!("stt-bench dot: skipped, this compares two x86 instruction sequences");
        Ok(())
    }
    #[cfg(target_arch = "x86_64")]
    {
        if !x86::has_vnni() {
            eprintln!("stt-bench dot: skipped, this CPU has no AVX-512 VNNI");
            return Ok(());
        }
        let mut body = format!(
            "`stt-bench dot`, median of {} runs, one thread: the encoder's int8 product tile (3 rows \
             × 4 rows, 16 bytes a step) natively, as wasmtime lowers relaxed-simd's dot-accumulate \
             on x86 (`pmaddubsw` + `pmaddwd` + `paddd`) and as one `vpdpbusd` (AVX-512 VNNI, the \
             same 128-bit registers); both give the same sums.\n\n\
             | product (tiny.en encoder, 30 s window) | shape m × n × k | as wasmtime lowers it, ms | \
             vpdpbusd, ms | ratio |\n|---|---|---:|---:|---:|\n",
            a.reps
        );
        for (name, m, n, k) in SHAPES {
            let o = Operands::random(m, n, k);
            let (mut lowered, mut vnni) = (vec![0; m * n], vec![0; m * n]);
            let (mut t_low, mut t_vnni) = (Vec::new(), Vec::new());
            for _ in 0..a.reps {
                let t0 = Instant::now();
                // SAFETY: SSSE3 is part of every x86 CPU with AVX-512 (checked above).
                unsafe { x86::as_wasmtime_lowers_it(&o, &mut lowered) };
                t_low.push(t0.elapsed().as_secs_f64());
                let t0 = Instant::now();
                // SAFETY: AVX-512 VNNI and VL checked above.
                unsafe { x86::on_vnni(&o, &mut vnni) };
                t_vnni.push(t0.elapsed().as_secs_f64());
                if lowered != vnni {
                    bail!("{name}: the two sequences disagree");
                }
            }
            let (l, v) = (median(&t_low), median(&t_vnni));
            eprintln!("{name}: {:.2} ms vs {:.2} ms", l * 1e3, v * 1e3);
            writeln!(
                body,
                "| {name} | {m} × {n} × {k} | {:.2} | {:.2} | {:.2} |",
                l * 1e3,
                v * 1e3,
                l / v
            )?;
        }
        write_section(&a.out, "dot-lowering", &body)?;
        eprintln!("wrote {}", a.out.display());
        Ok(())
    }
}
