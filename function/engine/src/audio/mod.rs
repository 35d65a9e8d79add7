//! Audio in: any supported container/codec → mono f32 PCM at 16 kHz.

mod decode;
mod downmix;
mod he_aac;
mod mp4_edit;
mod opus;
mod resample;
mod vorbis;
mod vorbis_order;
mod wav_header;

use decode::decode_to_16k;

use thiserror::Error;

/// Whisper's input rate.
pub const SAMPLE_RATE: u32 = 16_000;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum AudioError {
    #[error("the audio file is empty")]
    EmptyFile,
    #[error(
        "the file is not audio in a supported format (WAV, FLAC, MP3/MP2, Ogg Vorbis/Opus, WebM/Matroska Opus/Vorbis, AIFF, CAF, MP4/M4A AAC/ALAC): {0}"
    )]
    UnsupportedFormat(String),
    #[error("the file holds no audio track")]
    NoAudioTrack,
    #[error("unsupported audio codec: {0}")]
    UnsupportedCodec(String),
    #[error("the audio could not be decoded: {0}")]
    Corrupt(String),
    #[error("the file contains no audio samples")]
    NoSamples,
    #[error("the audio is longer than the limit of {limit_s} s")]
    TooLong { limit_s: f64 },
    #[error("resampling failed: {0}")]
    Resample(String),
}

/// Bounds on what a decode may produce, checked while decoding so that a file claiming
/// hours of audio never allocates for them.
#[derive(Debug, Clone, Copy)]
pub struct AudioLimits {
    pub max_duration_s: f64,
}

impl Default for AudioLimits {
    fn default() -> Self {
        Self { max_duration_s: stt_contract::defaults::MAX_DURATION_SECONDS }
    }
}

/// Decoded audio as the model wants it.
#[derive(Debug, Clone)]
pub struct Pcm16k {
    pub samples: Vec<f32>,
    /// The source's sample rate and channel count, for reporting.
    pub source_rate: u32,
    pub source_channels: usize,
}

impl Pcm16k {
    pub fn duration_s(&self) -> f64 {
        seconds(self.samples.len())
    }
}

/// The frames of a decoded packet of `n` to keep, for the decoders symphonia does not run
/// (Opus, lewton's Vorbis): the container's `trim_start` off the front, but at least `skip`
/// (Opus's pre-skip), and `trim_end` off the back.
fn kept_frames(n: usize, trim_start: u64, trim_end: u64, skip: usize) -> std::ops::Range<usize> {
    let frames = |t: u64| usize::try_from(t).unwrap_or(usize::MAX);
    let start = frames(trim_start).max(skip).min(n);
    start..n.saturating_sub(frames(trim_end)).max(start)
}

/// Seconds of `samples` samples at 16 kHz.
pub fn seconds(samples: usize) -> f64 {
    samples as f64 / SAMPLE_RATE as f64
}

/// Decodes and resamples in one go: the entry point for bytes from a user.
pub fn load(bytes: Vec<u8>, limits: AudioLimits) -> Result<Pcm16k, AudioError> {
    decode_to_16k(bytes, limits, &mut |_| {})
}

/// [`load`], telling `progress` the seconds decoded so far every minute of audio, so that a
/// caller can account for long files before their whole length is known.
pub fn load_observed(
    bytes: Vec<u8>,
    limits: AudioLimits,
    progress: &mut dyn FnMut(f64),
) -> Result<Pcm16k, AudioError> {
    decode_to_16k(bytes, limits, progress)
}

/// 16 kHz mono samples as a 32-bit float WAV file, which [`load`] reads back sample for sample:
/// the form a chunk of a recording travels in to another instance. `None` beyond what a WAV
/// file can hold (4 GiB; a chunk is 2 MB).
pub fn wav_f32(samples: &[f32]) -> Option<Vec<u8>> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut out = std::io::Cursor::new(Vec::with_capacity(44 + samples.len() * 4));
    let mut w = hound::WavWriter::new(&mut out, spec).ok()?;
    for &s in samples {
        w.write_sample(s).ok()?;
    }
    w.finalize().ok()?;
    Some(out.into_inner())
}

#[cfg(test)]
mod kept_frames_tests {
    use super::kept_frames;

    #[test]
    fn trims_come_off_both_ends_and_never_cross() {
        assert_eq!(kept_frames(960, 0, 0, 0), 0..960);
        // The pre-skip and the container's start trim overlap: the larger wins.
        assert_eq!(kept_frames(960, 100, 0, 312), 312..960);
        assert_eq!(kept_frames(960, 400, 60, 312), 400..900);
        // Trims past the packet leave it empty, never a reversed range.
        assert_eq!(kept_frames(960, 2000, 0, 0), 960..960);
        assert_eq!(kept_frames(960, 500, 700, 0), 500..500);
        assert_eq!(kept_frames(960, u64::MAX, u64::MAX, 0), 960..960);
    }
}
