use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex, num_complex::Complex};

use super::{HOP_LENGTH, N_FFT, N_FRAMES, N_SAMPLES, mel_filters};

/// A log10-mel spectrogram, row-major `[n_mels][n_frames]`, not yet normalised: windows are
/// normalised by [`LogMel::window`] against the whole file's maximum.
#[derive(Debug, Clone)]
pub struct LogMel {
    pub n_mels: usize,
    pub n_frames: usize,
    pub data: Vec<f32>,
    /// The largest value over all frames (content and the 30 s of padding), as the reference
    /// clamps at.
    pub max: f32,
}

impl LogMel {
    /// Frames `[start, start + len)` zero-padded to a 30 s window, `[n_mels][N_FRAMES]`, as the
    /// reference does with `pad_or_trim` on each segment.
    ///
    /// Values are normalised as the reference does (openai-whisper's `log_mel_spectrogram`,
    /// faster-whisper's feature extractor): clamped at the whole file's maximum − 8, then
    /// (x+4)/4. (Normalising each window on its own, as this engine first did, decoded
    /// differently from the reference on long files: on a 60 s clip one window more.)
    pub fn window(&self, start: usize, len: usize) -> Vec<f32> {
        let mut out = vec![0f32; self.n_mels * N_FRAMES];
        let len = len.min(N_FRAMES).min(self.n_frames.saturating_sub(start));
        let rows = || {
            (0..self.n_mels)
                .map(|m| &self.data[m * self.n_frames + start..m * self.n_frames + start + len])
        };
        let floor = self.max - 8.0;
        for (m, src) in rows().enumerate() {
            for (o, &v) in out[m * N_FRAMES..m * N_FRAMES + len].iter_mut().zip(src) {
                *o = (v.max(floor) + 4.0) / 4.0;
            }
        }
        out
    }
}

/// Sparse view of the filter bank: each mel band touches a short run of FFT bins.
struct Bands {
    n_freqs: usize,
    runs: Vec<(usize, Vec<f32>)>,
}

impl Bands {
    fn new(n_mels: usize) -> Self {
        let n_freqs = N_FFT / 2 + 1;
        let w = mel_filters(16_000, N_FFT, n_mels);
        let runs = (0..n_mels)
            .map(|m| {
                let row = &w[m * n_freqs..(m + 1) * n_freqs];
                let first = row.iter().position(|&x| x != 0.0).unwrap_or(0);
                let last = row.iter().rposition(|&x| x != 0.0).map_or(first, |l| l + 1);
                (first, row[first..last].to_vec())
            })
            .collect();
        Self { n_freqs, runs }
    }
}

fn reflect(samples: &[f32], i: isize) -> f32 {
    let n = samples.len() as isize;
    if n == 1 {
        return samples[0];
    }
    let period = 2 * (n - 1);
    let mut j = i.rem_euclid(period);
    if j >= n {
        j = period - j;
    }
    samples[j as usize]
}

/// Log-mel of `samples` (16 kHz) followed by 30 s of silence, as Whisper's `transcribe` computes
/// it: the returned spectrogram has `samples.len() / 160 + 3000` frames, of which the first
/// `samples.len() / 160` hold the content.
pub fn log_mel_spectrogram(samples: &[f32], n_mels: usize) -> LogMel {
    let mut padded = Vec::with_capacity(samples.len() + N_SAMPLES);
    padded.extend_from_slice(samples);
    padded.resize(samples.len() + N_SAMPLES, 0.0);
    let n_frames = padded.len() / HOP_LENGTH; // 1 + (len + 2·200 − 400) / 160 frames, last dropped
    let bands = Bands::new(n_mels);
    let window: Vec<f32> = (0..N_FFT)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos() as f32)
        .collect();
    let fft: Arc<dyn RealToComplex<f32>> = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
    let mut frame = fft.make_input_vec();
    let mut spectrum: Vec<Complex<f32>> = fft.make_output_vec();
    let mut scratch = fft.make_scratch_vec();
    let mut power = vec![0f32; bands.n_freqs];
    let mut mel = vec![0f32; n_mels * n_frames];
    let half = (N_FFT / 2) as isize;
    for t in 0..n_frames {
        let start = (t * HOP_LENGTH) as isize - half;
        if start >= 0 && start as usize + N_FFT <= padded.len() {
            let src = &padded[start as usize..start as usize + N_FFT];
            for ((f, &s), &w) in frame.iter_mut().zip(src).zip(&window) {
                *f = s * w;
            }
        } else {
            for (i, (f, &w)) in frame.iter_mut().zip(&window).enumerate() {
                *f = reflect(&padded, start + i as isize) * w;
            }
        }
        // The buffers are sized by the plan itself, so processing cannot fail.
        let _ = fft.process_with_scratch(&mut frame, &mut spectrum, &mut scratch);
        for (p, c) in power.iter_mut().zip(&spectrum) {
            *p = c.norm_sqr();
        }
        for (m, (first, weights)) in bands.runs.iter().enumerate() {
            let v: f32 = weights.iter().zip(&power[*first..]).map(|(w, p)| w * p).sum();
            mel[m * n_frames + t] = v;
        }
    }
    for v in mel.iter_mut() {
        *v = v.max(1e-10).log10();
    }
    let max = crate::kernels::vmath::max(&mel);
    LogMel { n_mels, n_frames, data: mel, max }
}

#[cfg(test)]
// The reference values are printed by Python with full f64 digits.
#[allow(clippy::excessive_precision)]
mod tests {
    use super::*;

    include!("spectrogram_reference.rs");

    fn chirp() -> Vec<f32> {
        let n = 32_000;
        (0..n)
            .map(|i| {
                let t = i as f64;
                let a = 0.5
                    * (2.0 * std::f64::consts::PI * (200.0 + 1500.0 * t / n as f64) * t / 16_000.0)
                        .sin();
                let b = 0.1 * (2.0 * std::f64::consts::PI * 3100.0 * t / 16_000.0).sin();
                (a + b) as f32
            })
            .collect()
    }

    #[test]
    fn matches_a_librosa_reference() {
        let raw = log_mel_spectrogram(&chirp(), 80);
        assert_eq!(raw.n_frames, REF_FRAMES);
        let mel =
            LogMel { n_mels: 80, n_frames: N_FRAMES, data: raw.window(0, N_FRAMES), max: 0.0 };
        for &(m, t, want) in REF_POINTS.iter().filter(|p| p.1 < N_FRAMES) {
            let got = mel.data[m * mel.n_frames + t];
            assert!((got - want).abs() < 2e-4, "mel[{m},{t}] = {got}, reference {want}");
        }
        let mean: f64 = (0..80)
            .flat_map(|m| (0..200).map(move |t| (m, t)))
            .map(|(m, t)| mel.data[m * mel.n_frames + t] as f64)
            .sum::<f64>()
            / 16_000.0;
        assert!((mean - REF_CONTENT_MEAN).abs() < 1e-5, "{mean} vs {REF_CONTENT_MEAN}");
    }

    /// A window is clamped at the whole file's maximum − 8 (not its own) and zero-padded.
    #[test]
    fn windows_are_normalised_against_the_whole_file_and_zero_padded() {
        let mut loud_then_quiet = chirp();
        loud_then_quiet.extend(chirp().iter().map(|v| v * 1e-3));
        let mel = log_mel_spectrogram(&loud_then_quiet, 80);
        let floor = (mel.max - 8.0 + 4.0) / 4.0;
        // The quiet half (frames 200..400) sits 6 decades of power below the loud one: against
        // the file's maximum much of it is at the floor, as the reference has it.
        let w = mel.window(250, 50);
        assert_eq!(w.len(), 80 * N_FRAMES);
        let content = || (0..80).flat_map(|m| w[m * N_FRAMES..m * N_FRAMES + 50].iter().copied());
        assert!(content().all(|v| v >= floor));
        assert!(content().filter(|&v| v == floor).count() > 80 * 50 / 4);
        let top = content().fold(f32::MIN, f32::max);
        assert!(top < (mel.max + 4.0) / 4.0 - 1.0, "{top}: not normalised to its own maximum");
        assert!(w[50..N_FRAMES].iter().all(|&v| v == 0.0));
    }
}
