//! The B operand of [`super::gemm`] in panels of four rows, interleaved step by step: the
//! four rows' lanes for one step are 64 contiguous bytes (32 for int8), so the product reads
//! a whole panel through one pointer. With four row pointers (plus A's) the inner loop ran out
//! of registers in wasm and reloaded them from the stack on every step.

use std::ops::Range;

use super::dot::Lane;
use super::quant::{Quant, QuantRows, U7_LEVELS, U7_ZERO, WEIGHT_LEVELS};

/// Rows per panel: one tile's worth of B.
pub const PANEL: usize = 4;

/// Rows of quantised values laid out as panels of lane groups `L` (`[i16; 8]`, `[i8; 8]` or
/// `[u8; 16]`…); the last panel is padded with rows of the zero point.
#[derive(Debug, Clone)]
pub struct Panels<L: Lane> {
    /// Panel `p`, step `t` at `p · steps + t`: lane group `t` of the panel's four rows.
    pub data: Vec<[L; PANEL]>,
    /// One per row, padding rows included (zero).
    pub scales: Vec<f32>,
    /// The rows' zero point (see [`QuantRows::zero`]).
    pub zero: i32,
    pub rows: usize,
    pub k: usize,
    /// Lane groups per row.
    pub steps: usize,
}

impl<L: Lane> Default for Panels<L> {
    fn default() -> Self {
        Self { data: Vec::new(), scales: Vec::new(), zero: 0, rows: 0, k: 0, steps: 0 }
    }
}

impl<L: Lane> Panels<L>
where
    L::Elem: Quant,
{
    pub fn from_rows(q: &QuantRows<L::Elem>) -> Self {
        let mut p = Self::default();
        p.fill_from(q);
        p
    }

    /// Same as [`Self::from_rows`], reusing this buffer.
    pub fn fill_from(&mut self, q: &QuantRows<L::Elem>) {
        self.reset(q.rows, q);
        self.put_rows(q, 0);
    }

    /// Panels of `rows` rows quantised `chunk` rows at a time: `quantise(range)` gives the rows
    /// of `range`. Equal to [`Self::from_rows`] of all rows at once (rows are quantised one by
    /// one), with only one chunk's rows in memory beside the panels.
    pub fn from_row_chunks<E>(
        rows: usize,
        chunk: usize,
        mut quantise: impl FnMut(Range<usize>) -> Result<QuantRows<L::Elem>, E>,
    ) -> Result<Self, E> {
        let mut p = Self::default();
        let chunk = chunk.next_multiple_of(PANEL).max(PANEL);
        for start in (0..rows).step_by(chunk) {
            let q = quantise(start..(start + chunk).min(rows))?;
            if start == 0 {
                p.reset(rows, &q);
            }
            p.put_rows(&q, start);
        }
        Ok(p)
    }

    /// Room for `rows` rows laid out as `q`'s (its width, zero point, `k`), every row at the
    /// zero point and every scale 0 until [`Self::put_rows`] writes them.
    fn reset(&mut self, rows: usize, q: &QuantRows<L::Elem>) {
        let (steps, panels) = (q.stride / L::WIDTH, rows.div_ceil(PANEL));
        self.data.clear();
        self.data.resize(panels * steps, [L::splat(L::Elem::from_i32(q.zero)); PANEL]);
        self.scales.clear();
        self.scales.resize(panels * PANEL, 0.0);
        (self.zero, self.rows, self.k, self.steps) = (q.zero, rows, q.k, steps);
    }

    /// Writes `q`'s rows as rows `first..` of the panels.
    fn put_rows(&mut self, q: &QuantRows<L::Elem>, first: usize) {
        let steps = self.steps;
        for r in 0..q.rows {
            let (p, c) = ((first + r) / PANEL, (first + r) % PANEL);
            for (slot, l) in self.data[p * steps..(p + 1) * steps].iter_mut().zip(L::of(q.row(r))) {
                slot[c] = *l;
            }
        }
        self.scales[first..first + q.rows].copy_from_slice(&q.scales[..q.rows]);
    }

    /// Row `r`'s `k` values (for a table that is also looked up by row: the token embedding).
    pub fn row_values(&self, r: usize) -> impl Iterator<Item = L::Elem> + '_ {
        let (p, c) = (r / PANEL, r % PANEL);
        self.data[p * self.steps..(p + 1) * self.steps]
            .iter()
            .flat_map(move |s| s[c].elems().iter().copied())
            .take(self.k)
    }

    pub fn view(&self) -> PanelView<'_, L> {
        PanelView {
            data: &self.data,
            scales: &self.scales,
            zero: self.zero,
            rows: self.rows,
            steps: self.steps,
        }
    }

    /// Rows `start..start + n`, when `start` is a multiple of [`PANEL`] and the range ends on
    /// a panel boundary or at the last row; `None` otherwise.
    pub fn rows_view(&self, start: usize, n: usize) -> Option<PanelView<'_, L>> {
        let end = start + n;
        if !start.is_multiple_of(PANEL)
            || end > self.rows
            || !(end.is_multiple_of(PANEL) || end == self.rows)
        {
            return None;
        }
        let (p0, p1) = (start / PANEL, end.div_ceil(PANEL));
        Some(PanelView {
            data: &self.data[p0 * self.steps..p1 * self.steps],
            scales: &self.scales[p0 * PANEL..p1 * PANEL],
            zero: self.zero,
            rows: n,
            steps: self.steps,
        })
    }
}

/// Int8 weights (±127 per row), as the decoder's products read them.
pub type Int8Panels = Panels<[i8; 8]>;
/// 7-bit weights (±63 around 64 per row), as the encoder's relaxed products read them.
pub type U7Panels = Panels<[u8; 16]>;

impl Int8Panels {
    /// Quantises `rows` rows of `k` values of `x` to int8 weights' levels, as panels.
    pub fn int8_from_f32(x: &[f32], rows: usize, k: usize) -> Self {
        Panels::from_rows(&QuantRows::<i8>::from_f32(x, rows, k, WEIGHT_LEVELS))
    }
}

impl U7Panels {
    /// Quantises `rows` rows of `k` values of `x` to ±63 around 64, as panels.
    pub fn u7_from_f32(x: &[f32], rows: usize, k: usize) -> Self {
        let mut q = QuantRows::<u8>::default();
        q.fill_around(x, rows, k, U7_LEVELS, U7_ZERO);
        Panels::from_rows(&q)
    }
}

/// Some whole panels of a [`Panels`].
// Derived (so only for Copy L): every view is of integers.
#[derive(Debug, Clone, Copy)]
pub struct PanelView<'a, L> {
    pub data: &'a [[L; PANEL]],
    /// `PANEL` per panel.
    pub scales: &'a [f32],
    pub zero: i32,
    /// Real rows (the last panel may be partly padding).
    pub rows: usize,
    pub steps: usize,
}

impl<'a, L> PanelView<'a, L> {
    pub fn panels(&self) -> usize {
        self.rows.div_ceil(PANEL)
    }

    pub fn panel(&self, p: usize) -> &'a [[L; PANEL]] {
        &self.data[p * self.steps..(p + 1) * self.steps]
    }

    pub fn panel_scales(&self, p: usize) -> [f32; PANEL] {
        std::array::from_fn(|c| self.scales[p * PANEL + c])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_hold_the_rows_step_by_step_and_pad_with_zeros() {
        let (rows, k) = (6, 19);
        let x: Vec<f32> = (0..rows * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let q = QuantRows::<i16>::from_f32(&x, rows, k, WEIGHT_LEVELS);
        let p: Panels<[i16; 8]> = Panels::from_rows(&q);
        assert_eq!((p.steps, p.data.len(), p.scales.len()), (4, 2 * 4, 8));
        for r in 0..rows {
            for t in 0..p.steps {
                assert_eq!(p.data[(r / 4) * 4 + t][r % 4], q.row(r)[8 * t..8 * t + 8]);
            }
        }
        assert!(
            p.data[4..].iter().all(|s| s[2] == [0; 8] && s[3] == [0; 8]),
            "padding rows are zero"
        );
        assert_eq!(&p.scales[6..], &[0.0, 0.0]);
        let back: Vec<i16> = p.row_values(5).collect();
        assert_eq!(back, q.row(5)[..k]);
        assert!(p.rows_view(4, 2).is_some() && p.rows_view(0, 4).is_some());
        assert!(
            p.rows_view(2, 4).is_none()
                && p.rows_view(0, 3).is_none()
                && p.rows_view(4, 4).is_none()
        );
    }

    /// 7-bit panels: values within ±63 of the zero point, and padding (rows and lanes) at the
    /// zero point, so that it stands for 0.
    #[test]
    fn u7_panels_sit_around_their_zero_point() {
        let (rows, k) = (5, 21);
        let x: Vec<f32> = (0..rows * k).map(|i| (i as f32 * 0.61).cos()).collect();
        let p = U7Panels::u7_from_f32(&x, rows, k);
        assert_eq!((p.zero, p.steps, p.data.len()), (64, 2, 2 * 2));
        for r in 0..rows {
            let back: Vec<f32> =
                p.row_values(r).map(|v| (i32::from(v) - 64) as f32 * p.scales[r]).collect();
            for (c, v) in back.iter().enumerate() {
                assert!((v - x[r * k + c]).abs() <= p.scales[r] * 0.5 + 1e-6, "[{r},{c}]");
            }
        }
        assert!(p.data.iter().flatten().flatten().all(|&v| (1..=127).contains(&v)));
        assert!(p.data[1][0][k - 16..].iter().all(|&v| v == 64), "lane padding");
        assert!(p.data[2..].iter().all(|s| s[1..].iter().all(|l| *l == [64; 16])), "row padding");
    }
}
