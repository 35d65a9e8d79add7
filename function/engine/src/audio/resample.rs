//! Sample-rate conversion to 16 kHz as FFmpeg's libswresample does it with its defaults, and the
//! 16-bit samples it hands on: the reference implementations (faster-whisper through PyAV's
//! `aformat`, openai-whisper through the ffmpeg CLI) both read audio this way, so the model sees
//! the samples it sees there (within one 16-bit step where float sums round differently; see
//! docs/ARCHITECTURE.md). Fed while the file decodes: memory follows the 16 kHz signal, never
//! the source rate's.
//!
//! Written here rather than taken from a crate because the point is swresample's exact filter
//! and edges, which no resampling crate reproduces (rubato's windows are Blackman/Hann, its
//! edges zero-padded).
//!
//! The filter is a Kaiser-windowed sinc (β = 9) of 32 zero crossings at 0.97 of the lower
//! Nyquist rate, in a polyphase bank: one phase per output position when the rate ratio
//! reduces to at most 1024 phases (every common rate), else 1024 phases with linear
//! interpolation between neighbours. The signal is mirrored at its start and reflected at its
//! end, as swresample does, so that the first and last outputs see no step to zero.

use std::f64::consts::PI;

use super::{AudioError, SAMPLE_RATE};
use crate::kernels::vmath::dot;

/// swresample's defaults: `filter_size`, `phase_shift` (as a phase count), `cutoff`,
/// `kaiser_beta`.
const ZERO_CROSSINGS: f64 = 32.0;
const MAX_PHASES: u64 = 1 << 10;
const CUTOFF: f64 = 0.97;
const KAISER_BETA: f64 = 9.0;

/// Consumed source samples are dropped from the front of the buffer once this many pile up.
const COMPACT_AT: usize = 1 << 14;

/// Mono samples at `rate` in, 16 kHz samples out, as they arrive.
pub struct To16k {
    poly: Option<Box<Polyphase>>,
    out: Vec<f32>,
}

impl To16k {
    pub fn new(rate: u32) -> Result<Self, AudioError> {
        if rate == 0 {
            return Err(AudioError::Resample("a sample rate of 0 Hz".into()));
        }
        let poly = (rate != SAMPLE_RATE).then(|| Box::new(Polyphase::new(rate)));
        Ok(Self { poly, out: Vec::new() })
    }

    pub fn push(&mut self, samples: &[f32]) {
        match self.poly.as_mut() {
            None => self.out.extend_from_slice(samples),
            Some(p) => p.push(samples, &mut self.out),
        }
    }

    /// Flushes the filter and returns the signal as 16-bit steps (the reference's `s16`, read
    /// back as `x / 32768`).
    pub fn finish(mut self) -> Vec<f32> {
        if let Some(p) = self.poly.as_mut() {
            p.finish(&mut self.out);
        }
        for s in &mut self.out {
            *s = to_16_bit(*s);
        }
        self.out
    }
}

/// A sample as a 16-bit value would hold it: rounded half to even (C's `lrintf`) and clipped.
pub fn to_16_bit(s: f32) -> f32 {
    (s * 32768.0).round_ties_even().clamp(-32768.0, 32767.0) / 32768.0
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The modified Bessel function I₀, by its power series (converges for the window's
/// arguments, 0..=β, to the last bit in under 30 terms).
fn bessel_i0(x: f64) -> f64 {
    let q = x * x / 4.0;
    let (mut sum, mut term, mut k) = (1.0f64, 1.0f64, 1.0f64);
    loop {
        term *= q / (k * k);
        let next = sum + term;
        if next == sum {
            return sum;
        }
        sum = next;
        k += 1.0;
    }
}

/// The polyphase filter bank: `phases + 1` rows of `taps` coefficients (the last row is the
/// first shifted by one tap, the neighbour of the last phase for interpolation).
fn filter_bank(taps: usize, phases: usize, factor: f64) -> Vec<f32> {
    let center = (taps as i64 - 1) / 2;
    // Even phase counts are symmetric: rows past the middle are earlier rows reversed.
    let computed = if phases % 2 == 1 { phases } else { phases / 2 + 1 };
    let mut bank = vec![0.0f32; (phases + 1) * taps];
    let mut tab = vec![0.0f64; taps];
    let mut norm = 0.0f64;
    for ph in 0..computed {
        let offset = ph as f64 / phases as f64;
        // At factor 1 (upsampling) sin(x) is one value with alternating sign along the row.
        let mut s = if factor == 1.0 {
            (PI * offset).sin() * if center & 1 == 1 { 1.0 } else { -1.0 }
        } else {
            0.0
        };
        for (i, t) in tab.iter_mut().enumerate() {
            let x = PI * ((i as i64 - center) as f64 - offset) * factor;
            let mut y = if x == 0.0 {
                1.0
            } else if factor == 1.0 {
                s / x
            } else {
                x.sin() / x
            };
            let w = 2.0 * x / (factor * taps as f64 * PI);
            y *= bessel_i0(KAISER_BETA * (1.0 - w * w).max(0.0).sqrt());
            *t = y;
            s = -s;
            if ph == 0 {
                norm += y;
            }
        }
        // Every phase is scaled by the first one's sum, as swresample does.
        for (i, t) in tab.iter().enumerate() {
            bank[ph * taps + i] = (t / norm) as f32;
        }
        if phases.is_multiple_of(2) {
            // In place for the middle row (ph = phases − ph), which then mirrors its first half.
            for i in 0..taps {
                bank[(phases - ph) * taps + taps - 1 - i] = bank[ph * taps + i];
            }
        }
    }
    // The interpolation neighbour of the last phase: the first row one tap later. Its first
    // tap is what swresample's 8-aligned row holds past the last tap (zero unless the row
    // length is a multiple of 8).
    let first_tap = if taps.is_multiple_of(8) { bank[taps - 1] } else { 0.0 };
    bank[phases * taps] = first_tap;
    for i in 1..taps {
        bank[phases * taps + i] = bank[i - 1];
    }
    bank
}

struct Polyphase {
    bank: Vec<f32>,
    taps: usize,
    phases: usize,
    /// Per output the position advances by `step + (step_frac / frac_den)` phases.
    step: u64,
    step_frac: u64,
    frac_den: u64,
    /// The source samples still needed, the first window starting at `pos`; before the start
    /// is mirrored in, the first samples as they came.
    buf: Vec<f32>,
    started: bool,
    pos: usize,
    phase: usize,
    frac: u64,
}

impl Polyphase {
    fn new(rate: u32) -> Self {
        let (rate, out) = (rate as u64, SAMPLE_RATE as u64);
        let factor = (out as f64 * CUTOFF / rate as f64).min(1.0);
        let mut taps = ((ZERO_CROSSINGS / factor).ceil() as usize).max(1);
        if taps > 1 {
            taps += taps % 2;
        }
        // An exact phase per output position when the reduced ratio allows it.
        let exact = out / gcd(out, rate);
        let phases = if exact <= MAX_PHASES { exact } else { MAX_PHASES };
        let g = gcd(out, rate * phases);
        let (mut den, mut incr) = (out / g, rate * phases / g);
        // swresample scales both up to at least 2^20; the arithmetic is the same, the
        // interpolation weights (frac / den) are too.
        while incr < 1 << 20 && den < 1 << 20 {
            incr *= 2;
            den *= 2;
        }
        Self {
            bank: filter_bank(taps, phases as usize, factor),
            taps,
            phases: phases as usize,
            step: incr / den,
            step_frac: incr % den,
            frac_den: den,
            buf: Vec::new(),
            started: false,
            pos: 0,
            phase: 0,
            frac: 0,
        }
    }

    /// Samples the start's mirror takes: the first output is centred on the first sample.
    fn half(&self) -> usize {
        (self.taps - 1) / 2
    }

    fn push(&mut self, samples: &[f32], out: &mut Vec<f32>) {
        self.buf.extend_from_slice(samples);
        if !self.started {
            if self.buf.len() <= self.half() {
                return;
            }
            self.start();
        }
        self.run(out);
        if self.pos >= COMPACT_AT {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Puts the mirror of the first samples (x[h], …, x[1]) before them.
    fn start(&mut self) {
        let h = self.half().min(self.buf.len().saturating_sub(1));
        let mut b = Vec::with_capacity(h + self.buf.len());
        b.extend(self.buf[1..=h].iter().rev());
        b.extend_from_slice(&self.buf);
        self.buf = b;
        self.started = true;
    }

    /// Every output whose window is in the buffer.
    fn run(&mut self, out: &mut Vec<f32>) {
        let taps = self.taps;
        let interpolate = self.step_frac != 0;
        while self.pos + taps <= self.buf.len() {
            let window = &self.buf[self.pos..self.pos + taps];
            let row = &self.bank[self.phase * taps..(self.phase + 1) * taps];
            let mut v = dot(window, row);
            if interpolate {
                let next = &self.bank[(self.phase + 1) * taps..(self.phase + 2) * taps];
                let v2 = dot(window, next);
                v = (v as f64 + (v2 - v) as f64 * (self.frac as f64 / self.frac_den as f64)) as f32;
            }
            out.push(v);
            self.frac += self.step_frac;
            let mut phase = self.phase as u64 + self.step;
            if self.frac >= self.frac_den {
                self.frac -= self.frac_den;
                phase += 1;
            }
            self.pos += (phase / self.phases as u64) as usize;
            self.phase = (phase % self.phases as u64) as usize;
        }
    }

    /// Reflects the end (x[n], x[n+1], … = x[n−1], x[n−2], …) over half the samples still
    /// unread, at most half a filter, and emits the last outputs.
    fn finish(&mut self, out: &mut Vec<f32>) {
        if self.buf.is_empty() {
            return;
        }
        if !self.started {
            self.start();
        }
        let unread = self.buf.len().saturating_sub(self.pos);
        let reflection = unread.min(self.taps).div_ceil(2);
        let n = self.buf.len();
        for j in 0..reflection.min(n) {
            let s = self.buf[n - 1 - j];
            self.buf.push(s);
        }
        self.run(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resample(input: &[f32], rate: u32) -> Vec<f32> {
        let mut r = To16k::new(rate).expect("new");
        r.push(input);
        r.finish()
    }

    fn tone(rate: usize, seconds: f64) -> Vec<f32> {
        (0..(rate as f64 * seconds) as usize)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn a_tone_keeps_its_frequency_and_length() {
        let rate = 44_100;
        let out = resample(&tone(rate, 1.0), rate as u32);
        assert_eq!(out.len(), 16_000);
        // Zero crossings of a 440 Hz tone over 1 s: 880.
        let crossings =
            out[100..15_900].windows(2).filter(|w| (w[0] < 0.0) != (w[1] < 0.0)).count();
        assert!((crossings as i64 - 880 * 15_800 / 16_000).abs() <= 4, "crossings {crossings}");
    }

    /// swresample's output counts for 1.3 s at these rates, as PyAV 18 (FFmpeg 8) gives them:
    /// ⌈n · 16000 / rate⌉ but for 22 058 Hz, one fewer (the filter's last window ends short).
    #[test]
    fn lengths_are_the_references() {
        let want = [
            (8_000usize, 20_800usize),
            (11_025, 20_800),
            (22_050, 20_800),
            (22_058, 20_799),
            (38_411, 20_800),
            (44_100, 20_800),
            (48_000, 20_800),
            (96_000, 20_800),
            (383_999, 20_800),
        ];
        for (rate, len) in want {
            assert_eq!(resample(&tone(rate, 1.3), rate as u32).len(), len, "{rate} Hz");
        }
    }

    #[test]
    fn streaming_in_odd_pieces_equals_one_call() {
        for rate in [48_000usize, 22_058] {
            let input = tone(rate, 3.0);
            let mut r = To16k::new(rate as u32).expect("new");
            for piece in input.chunks(777) {
                r.push(piece);
            }
            assert_eq!(r.finish(), resample(&input, rate as u32), "{rate} Hz");
        }
    }

    /// Pass-band gain 1 (a DC level stays), and a tone above the new Nyquist rate is 40 dB down
    /// (swresample's filter: a 9 kHz tone from 48 kHz comes through at −51 dB).
    #[test]
    fn the_filter_passes_speech_and_stops_aliases() {
        let level = resample(&vec![0.25f32; 48_000], 48_000);
        assert!(level[200..15_800].iter().all(|s| (s - 0.25).abs() <= 1.0 / 32768.0));
        let rate = 48_000;
        let alias: Vec<f32> = (0..rate)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 9_000.0 * i as f32 / rate as f32).sin())
            .collect();
        let out = resample(&alias, rate as u32);
        let peak = out[200..15_800].iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak < 0.005, "a 9 kHz tone came through at {peak}");
    }

    #[test]
    fn samples_are_16_bit_steps_rounded_half_to_even() {
        assert_eq!(to_16_bit(0.5 / 32768.0), 0.0);
        assert_eq!(to_16_bit(1.5 / 32768.0), 2.0 / 32768.0);
        assert_eq!(to_16_bit(1.0), 32767.0 / 32768.0);
        assert_eq!(to_16_bit(-2.0), -1.0);
        let out = resample(&[0.123_456_7; 100], 16_000);
        assert!(out.iter().all(|s| (s * 32768.0).fract() == 0.0));
    }
}
