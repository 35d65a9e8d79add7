//! Opus packets (symphonia demuxes them from Ogg, WebM and Matroska but has no Opus decoder)
//! through `opus-rs`, a pure-Rust port of libopus (equal to libopus's float output within
//! ≈ 85 dB SNR; ≈ 100× faster than `opus-decoder`, which recomputed its FFT twiddles per
//! frame).

use opus_rs::OpusDecoder;

use super::AudioError;

/// Opus always decodes at 48 kHz here, the rate its granule positions (and so symphonia's
/// trim values) count in.
pub const OPUS_RATE: u32 = 48_000;

/// Longest Opus packet: 120 ms at 48 kHz.
const MAX_FRAMES: usize = 5760;

pub struct OpusStream {
    decoder: OpusDecoder,
    channels: usize,
    buf: Vec<f32>,
    /// Frames still to drop at the start: the encoder's pre-skip, which symphonia reports as
    /// the track's delay (Ogg) or not at all (WebM, Matroska) but never trims itself.
    skip: usize,
}

/// The pre-skip of an OpusHead (RFC 7845 §5.1; Matroska's CodecPrivate for Opus is the same).
fn pre_skip(head: &[u8]) -> Option<u16> {
    (head.len() >= 19 && head.starts_with(b"OpusHead"))
        .then(|| u16::from_le_bytes([head[10], head[11]]))
}

impl OpusStream {
    /// `head` is the OpusHead identification header; only mapping family 0 (mono/stereo) is
    /// supported, which is what speech recordings use. `delay`: the container's pre-skip, if it
    /// gives one; else the header's. The pre-skip is dropped, as RFC 7845 says and FFmpeg
    /// does (the reference implementations read Opus through FFmpeg).
    pub fn new(head: Option<&[u8]>, delay: Option<u32>) -> Result<Self, AudioError> {
        if let Some(h) = head
            && h.len() >= 19
            && h[18] != 0
        {
            return Err(AudioError::UnsupportedCodec(format!(
                "Opus channel mapping family {}",
                h[18]
            )));
        }
        // Stereo is decoded as stereo and mixed by the caller, as FFmpeg's decoder and
        // swresample do, not folded inside the decoder.
        let channels = match head.and_then(|h| h.get(9)) {
            Some(2) => 2,
            _ => 1,
        };
        let decoder = OpusDecoder::new(OPUS_RATE as i32, channels)
            .map_err(|e| AudioError::Corrupt(format!("opus: {e}")))?;
        let skip = delay.or_else(|| head.and_then(pre_skip).map(u32::from)).unwrap_or(0);
        Ok(Self { decoder, channels, buf: vec![0.0; MAX_FRAMES * channels], skip: skip as usize })
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Decodes one packet and returns its interleaved frames with the pre-skip and the
    /// container's trims applied.
    pub fn decode(
        &mut self,
        packet: &[u8],
        trim_start: u64,
        trim_end: u64,
    ) -> Result<&[f32], AudioError> {
        let n = self
            .decoder
            .decode(packet, MAX_FRAMES, &mut self.buf)
            .map_err(|e| AudioError::Corrupt(format!("opus: {e}")))?;
        let n = n.min(MAX_FRAMES);
        let skip = self.skip.min(n);
        self.skip -= skip;
        let start = (trim_start as usize).max(skip).min(n);
        let end = n.saturating_sub(trim_end as usize).max(start);
        Ok(&self.buf[start * self.channels..end * self.channels])
    }
}
