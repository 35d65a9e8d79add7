//! Sample-rate conversion to 16 kHz with rubato's FFT resampler (fixed ratio, band-limited).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use super::{AudioError, SAMPLE_RATE};

pub fn resample_to_16k(input: &[f32], rate: u32) -> Result<Vec<f32>, AudioError> {
    if rate == SAMPLE_RATE || input.is_empty() {
        return Ok(input.to_vec());
    }
    let err = |e: &dyn std::fmt::Display| AudioError::Resample(e.to_string());
    let mut r = Fft::<f32>::new(rate as usize, SAMPLE_RATE as usize, 1024, 1, FixedSync::Input)
        .map_err(|e| err(&e))?;
    let out_len = r.process_all_needed_output_len(input.len());
    let mut out = vec![0.0f32; out_len];
    let inp = InterleavedSlice::new(input, 1, input.len()).map_err(|e| err(&e))?;
    let mut outp = InterleavedSlice::new_mut(&mut out, 1, out_len).map_err(|e| err(&e))?;
    let (_, written) =
        r.process_all_into_buffer(&inp, &mut outp, input.len(), None).map_err(|e| err(&e))?;
    out.truncate(written);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_keeps_its_frequency_and_length() {
        let rate = 44_100;
        let tone: Vec<f32> = (0..rate)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin())
            .collect();
        let out = resample_to_16k(&tone, rate as u32).expect("resample");
        assert!((out.len() as i64 - 16_000).abs() <= 1, "len {}", out.len());
        // Zero crossings of a 440 Hz tone over 1 s: 880.
        let crossings =
            out[100..15_900].windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        assert!((crossings as i64 - 880 * 15_800 / 16_000).abs() <= 4, "crossings {crossings}");
    }
}
