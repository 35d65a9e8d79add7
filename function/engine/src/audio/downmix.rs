//! Channels to mono with the weights FFmpeg's libswresample gives a mono output by default,
//! which is how the reference implementations hear a stereo or surround upload: the centre at
//! full weight, the front pair at √½, surrounds at −3 dB of that, the LFE left out, the whole
//! scaled so that the weights sum to one. For 5.1 that is centre 0.29, fronts 0.21, surrounds
//! 0.15: dialogue, mixed to the centre, is not diluted by music and effects as an average of
//! the six channels would.

use std::f64::consts::FRAC_1_SQRT_2;

use symphonia::core::audio::{Channels, Position};

/// swresample's centre and surround mix levels are single-precision options set to √½.
const MIX_LEVEL: f64 = FRAC_1_SQRT_2 as f32 as f64;

/// A channel's weight before scaling.
fn weight(p: Position) -> f64 {
    if p == Position::FRONT_CENTER {
        // Its own output channel; with a front pair present swresample writes it as
        // centre level · √2, a hair under one.
        MIX_LEVEL * std::f64::consts::SQRT_2
    } else if [
        Position::FRONT_LEFT,
        Position::FRONT_RIGHT,
        Position::FRONT_LEFT_CENTER,
        Position::FRONT_RIGHT_CENTER,
    ]
    .contains(&p)
    {
        FRAC_1_SQRT_2
    } else if [
        Position::REAR_LEFT,
        Position::REAR_RIGHT,
        Position::REAR_CENTER,
        Position::SIDE_LEFT,
        Position::SIDE_RIGHT,
    ]
    .contains(&p)
    {
        MIX_LEVEL * FRAC_1_SQRT_2
    } else {
        // LFE (mix level 0) and the channels swresample has no mono rule for (heights, wides).
        0.0
    }
}

/// FFmpeg's default layout for a channel count when the file names none.
fn default_layout(count: usize) -> Position {
    let stereo = Position::FRONT_LEFT | Position::FRONT_RIGHT;
    let front = stereo | Position::FRONT_CENTER;
    let rear = Position::REAR_LEFT | Position::REAR_RIGHT;
    let side = Position::SIDE_LEFT | Position::SIDE_RIGHT;
    match count {
        0 | 1 => Position::FRONT_CENTER,
        2 => stereo,
        3 => stereo | Position::LFE1,
        4 => front | Position::REAR_CENTER,
        5 => front | rear,
        6 => front | Position::LFE1 | rear,
        7 => front | Position::LFE1 | Position::REAR_CENTER | side,
        _ => front | Position::LFE1 | rear | side,
    }
}

/// What the container says of its channels' positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// It names them (an extensible WAV's mask; FLAC, Vorbis and Opus, whose positions follow
    /// from the count): the positions stand.
    Named,
    /// It does not (a plain WAV header): FFmpeg's default layout for the count.
    Unnamed,
    /// Not known here: positions that are the first N bits of the WAVE mask, symphonia's
    /// stand-in for a bare count (AIFF, CAF without a layout), are read as unnamed.
    Guess,
}

/// How one upload's frames become mono samples.
pub struct Downmix {
    /// What the weights were built for.
    channels: Channels,
    integer_16k: bool,
    /// Per channel, in the decoder's channel order.
    weights: Vec<f32>,
    /// The same in 1/32768 steps, when the source is 16-bit integers at 16 kHz: swresample
    /// then mixes in integers (its internal format is `s16` when it does not resample).
    int16: Option<Vec<i64>>,
}

impl Downmix {
    /// `integer_16k`: the decoder yields integers of at most 16 bits at 16 kHz.
    pub fn new(channels: &Channels, naming: Naming, integer_16k: bool) -> Self {
        let count = channels.count().max(1);
        // FFmpeg's default layout differs from the first `count` mask bits for 3, 4, 5, 7 and 8
        // channels.
        let positions: Vec<Position> = match channels {
            Channels::Positioned(p)
                if p.bits().count_ones() as usize == count
                    && match naming {
                        Naming::Named => true,
                        Naming::Unnamed => false,
                        Naming::Guess => Position::from_count(count as u32) != Some(*p),
                    } =>
            {
                p.iter().collect()
            }
            _ => default_layout(count).iter().collect(),
        };
        let mut w: Vec<f64> = (0..count)
            .map(|i| positions.get(i).map_or(0.0, |&p| if count == 1 { 1.0 } else { weight(p) }))
            .collect();
        let sum: f64 = w.iter().map(|x| x.abs()).sum();
        if sum > 1.0 {
            w.iter_mut().for_each(|x| *x /= sum);
        }
        let int16 = (integer_16k && count > 1)
            .then(|| w.iter().map(|x| ((x * 32768.0) as f32).round_ties_even() as i64).collect());
        Self {
            channels: channels.clone(),
            integer_16k,
            weights: w.iter().map(|&x| x as f32).collect(),
            int16,
        }
    }

    /// Whether this mix serves buffers with these channels and sample type.
    pub fn suits(&self, channels: &Channels, integer_16k: bool) -> bool {
        &self.channels == channels && self.integer_16k == integer_16k
    }

    /// Interleaved frames (`weights.len()` samples each) into `mono` (cleared first).
    pub fn mix(&self, interleaved: &[f32], mono: &mut Vec<f32>) {
        mono.clear();
        let n = self.weights.len();
        if n == 1 {
            mono.extend_from_slice(interleaved);
            return;
        }
        let frames = interleaved.chunks_exact(n);
        match &self.int16 {
            Some(c) => mono.extend(frames.map(|f| {
                let v: i64 = f.iter().zip(c).map(|(s, c)| (s * 32768.0) as i64 * c).sum();
                ((v + 16_384) >> 15).clamp(-32_768, 32_767) as f32 / 32768.0
            })),
            // Summed in channel order, skipping the zero weights, as swresample's float mix.
            None => mono.extend(frames.map(|f| {
                f.iter()
                    .zip(&self.weights)
                    .filter(|(_, w)| **w != 0.0)
                    .fold(0.0f32, |v, (s, w)| v + s * w)
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(channels: Channels) -> Vec<f32> {
        Downmix::new(&channels, Naming::Guess, false).weights
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4)
    }

    /// The matrices swresample 6.3 (FFmpeg 8) builds, read back from PyAV's output.
    #[test]
    fn weights_are_swresamples() {
        assert_eq!(weights(Channels::Discrete(1)), [1.0]);
        assert!(close(&weights(Channels::Discrete(2)), &[0.5, 0.5]));
        assert!(close(&weights(Channels::Discrete(3)), &[0.5, 0.5, 0.0]));
        let five_one = [0.2071, 0.2071, 0.2929, 0.0, 0.1464, 0.1464];
        assert!(close(&weights(Channels::Discrete(6)), &five_one));
        let seven_one = [0.1602, 0.1602, 0.2265, 0.0, 0.1133, 0.1133, 0.1133, 0.1133];
        assert!(close(&weights(Channels::Discrete(8)), &seven_one));
    }

    /// Three channels named FL FR FC (a FLAC's, an extensible WAV's) keep their centre; the
    /// same positions read as unnamed are FFmpeg's default for three, FL FR LFE.
    #[test]
    fn named_positions_stand_and_unnamed_ones_get_the_default_layout() {
        let first_three = Channels::Positioned(Position::from_count(3).expect("3"));
        let mix = |naming| Downmix::new(&first_three, naming, false).weights;
        assert!(close(&mix(Naming::Named), &[0.2929, 0.2929, 0.4142]));
        assert!(close(&mix(Naming::Unnamed), &[0.5, 0.5, 0.0]));
        assert!(close(&mix(Naming::Guess), &[0.5, 0.5, 0.0]));
        // Positions that are not the first N bits are a layout whatever the container says.
        let named = Channels::Positioned(
            Position::FRONT_LEFT | Position::FRONT_RIGHT | Position::REAR_CENTER,
        );
        let w = Downmix::new(&named, Naming::Guess, false).weights;
        assert!(close(&w, &[0.3694, 0.3694, 0.2612]), "{w:?}");
    }

    #[test]
    fn sixteen_bit_stereo_at_16k_mixes_in_integers_rounding_half_up() {
        let mix = Downmix::new(&Channels::Discrete(2), Naming::Guess, true);
        let mut mono = Vec::new();
        let s = |x: i32| x as f32 / 32768.0;
        mix.mix(&[s(1), s(2), s(-1), s(-2), s(32767), s(32767)], &mut mono);
        assert_eq!(mono, [s(2), s(-1), s(32767)]);
    }
}
