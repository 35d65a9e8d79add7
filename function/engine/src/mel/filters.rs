//! The mel filter bank of `librosa.filters.mel(sr, n_fft, n_mels)` with librosa's defaults:
//! Slaney's mel scale (linear below 1 kHz, logarithmic above) and Slaney area normalisation.
//! Computed in f64 and rounded to f32 at the same two points as librosa, so it matches exactly.

fn hz_to_mel(f: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = (6.4f64).ln() / 27.0;
    if f >= MIN_LOG_HZ { min_log_mel + (f / MIN_LOG_HZ).ln() / logstep } else { f / F_SP }
}

fn mel_to_hz(m: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = (6.4f64).ln() / 27.0;
    if m >= min_log_mel { MIN_LOG_HZ * (logstep * (m - min_log_mel)).exp() } else { F_SP * m }
}

/// Row-major `[n_mels][n_fft / 2 + 1]`.
pub fn mel_filters(sample_rate: u32, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let n_freqs = n_fft / 2 + 1;
    let sr = sample_rate as f64;
    let fft_freqs: Vec<f64> = (0..n_freqs).map(|i| i as f64 * sr / n_fft as f64).collect();
    let (mel_min, mel_max) = (hz_to_mel(0.0), hz_to_mel(sr / 2.0));
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(mel_min + (mel_max - mel_min) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut weights = vec![0f32; n_mels * n_freqs];
    for i in 0..n_mels {
        let (lo, mid, hi) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
        let enorm = 2.0 / (hi - lo);
        for (j, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - lo) / (mid - lo);
            let upper = (hi - f) / (hi - mid);
            // librosa stores the triangle in its f32 array first, then scales it in place.
            let tri = lower.min(upper).max(0.0) as f32;
            weights[i * n_freqs + j] = (tri as f64 * enorm) as f32;
        }
    }
    weights
}

#[cfg(test)]
// The reference values are printed by Python with full f64 digits.
#[allow(clippy::excessive_precision)]
mod tests {
    use super::*;

    // Reference values from librosa 0.11.0: librosa.filters.mel(sr=16000, n_fft=400, n_mels=80).
    include!("filters_reference.rs");

    #[test]
    fn matches_librosa() {
        let w = mel_filters(16_000, 400, 80);
        assert_eq!(w.len(), 80 * 201);
        for &(row, col, want) in LIBROSA_NONZERO_SAMPLE {
            let got = w[row * 201 + col];
            assert_eq!(got.to_bits(), want.to_bits(), "[{row},{col}] {got} vs {want}");
        }
        let sum: f64 = w.iter().map(|&x| x as f64).sum();
        assert!((sum - LIBROSA_SUM).abs() < 1e-6, "sum {sum} vs {LIBROSA_SUM}");
        let nonzero = w.iter().filter(|&&x| x != 0.0).count();
        assert_eq!(nonzero, LIBROSA_NONZERO);
    }
}
