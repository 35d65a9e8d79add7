//! The B operand of [`super::gemm`] in panels of four rows, interleaved step by step: the
//! four rows' lanes for one step are 64 contiguous bytes (32 for int8), so the product reads
//! a whole panel through one pointer. With four row pointers (plus A's) the inner loop ran out
//! of registers in wasm and reloaded them from the stack on every step.

use super::quant::{QuantRows, WEIGHT_LEVELS};

/// Rows per panel: one tile's worth of B.
pub const PANEL: usize = 4;

/// Rows of quantised values laid out as panels; the last panel is padded with zero rows.
#[derive(Debug, Clone, Default)]
pub struct Panels<T = i16> {
    /// Panel `p`, step `t` at `p · steps + t`: lanes `8t..8t + 8` of the panel's four rows.
    pub data: Vec<[[T; 8]; PANEL]>,
    /// One per row, padding rows included (zero).
    pub scales: Vec<f32>,
    pub rows: usize,
    pub k: usize,
    /// Steps of 8 lanes per row (`k` rounded up to a multiple of 8, over 8).
    pub steps: usize,
}

impl<T: Copy + Default> Panels<T> {
    pub fn from_rows(q: &QuantRows<T>) -> Self {
        let mut p = Self::default();
        p.fill_from(q);
        p
    }

    /// Same as [`Self::from_rows`], reusing this buffer.
    pub fn fill_from(&mut self, q: &QuantRows<T>) {
        let steps = q.stride / 8;
        let panels = q.rows.div_ceil(PANEL);
        self.data.clear();
        self.data.resize(panels * steps, [[T::default(); 8]; PANEL]);
        for r in 0..q.rows {
            let (p, c) = (r / PANEL, r % PANEL);
            let lanes = q.row(r).as_chunks::<8>().0;
            for (slot, l) in self.data[p * steps..(p + 1) * steps].iter_mut().zip(lanes) {
                slot[c] = *l;
            }
        }
        self.scales.clear();
        self.scales.extend_from_slice(&q.scales);
        self.scales.resize(panels * PANEL, 0.0);
        self.rows = q.rows;
        self.k = q.k;
        self.steps = steps;
    }

    /// Quantises `rows` rows of `k` values of `x` to int8 weights' levels, as panels.
    pub fn int8_from_f32(x: &[f32], rows: usize, k: usize) -> Panels<i8> {
        Panels::from_rows(&QuantRows::<i8>::from_i16(&QuantRows::from_f32(x, rows, k, WEIGHT_LEVELS)))
    }

    /// Row `r`'s `k` values (for a table that is also looked up by row: the token embedding).
    pub fn row_values(&self, r: usize) -> impl Iterator<Item = T> + '_ {
        let (p, c) = (r / PANEL, r % PANEL);
        self.data[p * self.steps..(p + 1) * self.steps].iter().flat_map(move |s| s[c]).take(self.k)
    }

    pub fn view(&self) -> PanelView<'_, T> {
        PanelView { data: &self.data, scales: &self.scales, rows: self.rows, steps: self.steps }
    }

    /// Rows `start..start + n`, when `start` is a multiple of [`PANEL`] and the range ends on
    /// a panel boundary or at the last row; `None` otherwise.
    pub fn rows_view(&self, start: usize, n: usize) -> Option<PanelView<'_, T>> {
        let end = start + n;
        if !start.is_multiple_of(PANEL) || end > self.rows || !(end.is_multiple_of(PANEL) || end == self.rows) {
            return None;
        }
        let (p0, p1) = (start / PANEL, end.div_ceil(PANEL));
        Some(PanelView {
            data: &self.data[p0 * self.steps..p1 * self.steps],
            scales: &self.scales[p0 * PANEL..p1 * PANEL],
            rows: n,
            steps: self.steps,
        })
    }
}

/// Some whole panels of a [`Panels`].
// Derived (so only for Copy T): every view is of i16 or i8.
#[derive(Debug, Clone, Copy)]
pub struct PanelView<'a, T = i16> {
    pub data: &'a [[[T; 8]; PANEL]],
    /// `PANEL` per panel.
    pub scales: &'a [f32],
    /// Real rows (the last panel may be partly padding).
    pub rows: usize,
    pub steps: usize,
}

impl<'a, T> PanelView<'a, T> {
    pub fn panels(&self) -> usize {
        self.rows.div_ceil(PANEL)
    }

    pub fn panel(&self, p: usize) -> &'a [[[T; 8]; PANEL]] {
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
        let q = QuantRows::from_f32(&x, rows, k, WEIGHT_LEVELS);
        let p = Panels::from_rows(&q);
        assert_eq!((p.steps, p.data.len(), p.scales.len()), (3, 2 * 3, 8));
        for r in 0..rows {
            for t in 0..p.steps {
                assert_eq!(p.data[(r / 4) * 3 + t][r % 4], q.row(r)[8 * t..8 * t + 8]);
            }
        }
        assert!(p.data[3..].iter().all(|s| s[2] == [0; 8] && s[3] == [0; 8]), "padding rows are zero");
        assert_eq!(&p.scales[6..], &[0.0, 0.0]);
        let back: Vec<i16> = p.row_values(5).collect();
        assert_eq!(back, q.row(5)[..k]);
        assert!(p.rows_view(4, 2).is_some() && p.rows_view(0, 4).is_some());
        assert!(p.rows_view(2, 4).is_none() && p.rows_view(0, 3).is_none() && p.rows_view(4, 4).is_none());
    }
}
