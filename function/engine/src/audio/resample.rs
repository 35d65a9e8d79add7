//! Sample-rate conversion to 16 kHz with rubato's FFT resampler (fixed ratio, band-limited),
//! fed while the file decodes: memory follows the 16 kHz signal, never the source rate's.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use super::{AudioError, SAMPLE_RATE};

/// Source frames per resampler call.
const CHUNK: usize = 1024;

fn err(e: impl std::fmt::Display) -> AudioError {
    AudioError::Resample(e.to_string())
}

/// Mono samples at `rate` in, 16 kHz samples out, a chunk at a time.
pub struct To16k {
    fft: Option<Box<Fft<f32>>>,
    /// Source samples not yet a whole chunk.
    pending: Vec<f32>,
    /// One call's output.
    scratch: Vec<f32>,
    out: Vec<f32>,
    /// The resampler's start-up delay, still to drop from the front of the output.
    to_trim: usize,
    input_len: usize,
    ratio: f64,
    source_rate: usize,
}

impl To16k {
    pub fn new(rate: u32) -> Result<Self, AudioError> {
        let ratio = SAMPLE_RATE as f64 / rate as f64;
        let (fft, to_trim, scratch) = if rate == SAMPLE_RATE {
            (None, 0, Vec::new())
        } else {
            let r =
                Fft::<f32>::new(rate as usize, SAMPLE_RATE as usize, CHUNK, 1, FixedSync::Input)
                    .map_err(err)?;
            let (delay, max_out) = (r.output_delay(), r.output_frames_max());
            (Some(Box::new(r)), delay, vec![0.0; max_out])
        };
        Ok(Self {
            fft,
            pending: Vec::new(),
            scratch,
            out: Vec::new(),
            to_trim,
            input_len: 0,
            ratio,
            source_rate: rate as usize,
        })
    }

    pub fn push(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        self.input_len += samples.len();
        if self.fft.is_none() {
            self.out.extend_from_slice(samples);
            return Ok(());
        }
        self.pending.extend_from_slice(samples);
        let mut done = 0;
        while self.pending.len() - done >= CHUNK {
            self.process(done, None)?;
            done += CHUNK;
        }
        self.pending.drain(..done);
        Ok(())
    }

    /// One resampler call on `pending[start..]` (a whole chunk, or `partial` frames of it).
    fn process(&mut self, start: usize, partial: Option<usize>) -> Result<(), AudioError> {
        let Some(r) = self.fft.as_mut() else { return Ok(()) };
        let frames = partial.unwrap_or(CHUNK);
        let input = &self.pending[start..start + frames];
        let inp = InterleavedSlice::new(input, 1, frames).map_err(err)?;
        let cap = self.scratch.len();
        let mut outp = InterleavedSlice::new_mut(&mut self.scratch, 1, cap).map_err(err)?;
        let indexing = Indexing {
            input_offset: 0,
            output_offset: 0,
            active_channels_mask: None,
            partial_len: partial,
        };
        let (_, n) = r.process_into_buffer(&inp, &mut outp, Some(&indexing)).map_err(err)?;
        let skip = self.to_trim.min(n);
        self.to_trim -= skip;
        self.out.extend_from_slice(&self.scratch[skip..n]);
        Ok(())
    }

    /// Flushes the resampler and returns the signal, as long as the source's duration.
    pub fn finish(mut self) -> Result<Vec<f32>, AudioError> {
        if self.fft.is_none() {
            return Ok(self.out);
        }
        let expected = (self.ratio * self.input_len as f64).ceil() as usize;
        if !self.pending.is_empty() {
            self.process(0, Some(self.pending.len()))?;
        }
        self.pending.clear();
        // The delay line and the FFT block still hold the last frames: pump silence through until
        // they are out. A call may emit nothing while a block fills (an FFT block is up to the
        // source rate long when its gcd with 16 kHz is small), so the pumps are bounded by what
        // can be held, not stopped at the first empty one.
        let missing_in = ((expected + self.to_trim).saturating_sub(self.out.len()) as f64
            / self.ratio)
            .ceil() as usize;
        let mut pumps = (missing_in + 2 * self.source_rate.max(CHUNK)) / CHUNK + 8;
        while self.out.len() < expected && pumps > 0 {
            self.process(0, Some(0))?;
            pumps -= 1;
        }
        self.out.truncate(expected);
        Ok(self.out)
    }
}

/// Resamples a whole signal (a convenience over [`To16k`]).
#[cfg(test)]
fn resample_to_16k(input: &[f32], rate: u32) -> Result<Vec<f32>, AudioError> {
    let mut r = To16k::new(rate)?;
    r.push(input)?;
    r.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: usize, seconds: usize) -> Vec<f32> {
        (0..rate * seconds)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn a_tone_keeps_its_frequency_and_length() {
        let rate = 44_100;
        let out = resample_to_16k(&tone(rate, 1), rate as u32).expect("resample");
        assert!((out.len() as i64 - 16_000).abs() <= 1, "len {}", out.len());
        // Zero crossings of a 440 Hz tone over 1 s: 880.
        let crossings =
            out[100..15_900].windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        assert!((crossings as i64 - 880 * 15_800 / 16_000).abs() <= 4, "crossings {crossings}");
    }

    /// At a rate whose gcd with 16 kHz is small, rubato's FFT block is longer than a chunk and
    /// some calls emit nothing: the flush must go on until the whole signal is out.
    #[test]
    fn odd_rates_keep_their_whole_length() {
        for rate in [38_411usize, 383_999, 44_100, 11_025, 1_009] {
            let input = tone(rate, 3);
            let out = resample_to_16k(&input, rate as u32).expect("resample");
            let expected = (16_000.0 * input.len() as f64 / rate as f64).ceil() as usize;
            assert_eq!(out.len(), expected, "{rate} Hz");
        }
    }

    #[test]
    fn streaming_in_odd_pieces_equals_rubato_in_one_call() {
        let rate = 48_000;
        let input = tone(rate, 3);
        let mut whole = Fft::<f32>::new(rate, 16_000, CHUNK, 1, FixedSync::Input).expect("fft");
        let inp = InterleavedSlice::new(&input, 1, input.len()).expect("in");
        let reference = whole.process_all(&inp, input.len(), None).expect("all").take_data();
        let mut r = To16k::new(rate as u32).expect("new");
        for piece in input.chunks(777) {
            r.push(piece).expect("push");
        }
        let out = r.finish().expect("finish");
        assert_eq!(out.len(), reference.len());
        let worst = out.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-5, "largest difference {worst}");
    }
}
