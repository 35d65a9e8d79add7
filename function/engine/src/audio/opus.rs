//! Ogg Opus packets (symphonia demuxes them but has no Opus decoder) through the pure-Rust
//! `opus-decoder`, downmixed to mono by the decoder itself.

use opus_decoder::OpusDecoder;

use super::AudioError;

/// Opus always decodes at 48 kHz here, the rate its granule positions (and so symphonia's
/// trim values) count in.
pub const OPUS_RATE: u32 = 48_000;

/// Longest Opus packet: 120 ms at 48 kHz.
const MAX_FRAMES: usize = 5760;

pub struct OpusStream {
    decoder: OpusDecoder,
    buf: Vec<f32>,
}

impl OpusStream {
    /// `head` is the OpusHead identification header; only mapping family 0 (mono/stereo) is
    /// supported, which is what speech recordings use.
    pub fn new(head: Option<&[u8]>) -> Result<Self, AudioError> {
        if let Some(h) = head
            && h.len() >= 19
            && h[18] != 0
        {
            return Err(AudioError::UnsupportedCodec(format!(
                "Opus channel mapping family {}",
                h[18]
            )));
        }
        let decoder = OpusDecoder::new(OPUS_RATE, 1)
            .map_err(|e| AudioError::Corrupt(format!("opus: {e}")))?;
        Ok(Self { decoder, buf: vec![0.0; MAX_FRAMES] })
    }

    /// Decodes one packet and returns its samples with the container's trims applied.
    pub fn decode(
        &mut self,
        packet: &[u8],
        trim_start: u64,
        trim_end: u64,
    ) -> Result<&[f32], AudioError> {
        let n = self
            .decoder
            .decode_float(packet, &mut self.buf, false)
            .map_err(|e| AudioError::Corrupt(format!("opus: {e}")))?;
        let n = n.min(self.buf.len());
        let start = (trim_start as usize).min(n);
        let end = n.saturating_sub(trim_end as usize).max(start);
        Ok(&self.buf[start..end])
    }
}
