//! Opus packets (symphonia demuxes them from Ogg, WebM and Matroska but has no Opus decoder)
//! through `opus-rs`, a pure-Rust port of libopus (equal to libopus's float output within
//! ≈ 85 dB SNR; ≈ 100× faster than `opus-decoder`, which recomputed its FFT twiddles per
//! frame): mono and stereo streams (channel mapping family 0) and up to eight channels in
//! several streams (family 1, libopus's multistream layout, which surround encodes use).

use opus_rs::OpusDecoder;
use opus_rs::multistream::{ChannelMappingTable, MultistreamDecoder};
use symphonia::core::audio::Channels;

use super::AudioError;
use super::decode::PacketDecoder;
use super::vorbis_order::VorbisOrder;

/// Opus always decodes at 48 kHz here, the rate its granule positions (and so symphonia's
/// trim values) count in.
pub const OPUS_RATE: u32 = 48_000;

/// Longest Opus packet: 120 ms at 48 kHz.
const MAX_FRAMES: usize = 5760;

enum Decoder {
    /// Family 0: one stream of one or two channels.
    Single(Box<OpusDecoder>),
    /// Family 1: coupled and mono streams routed to the channels in Vorbis order.
    Multi(Box<MultistreamDecoder>),
}

pub struct OpusStream {
    decoder: Decoder,
    channels: usize,
    /// Family 1's channels into the layout's order.
    order: Option<VorbisOrder>,
    buf: Vec<f32>,
    reordered: Vec<f32>,
    /// Frames still to drop at the start: the encoder's pre-skip, which symphonia reports as
    /// the track's delay (Ogg) or not at all (WebM, Matroska) but never trims itself.
    skip: usize,
    /// The header's output gain as a factor, applied as FFmpeg applies it (RFC 7845 §5.1).
    gain: f32,
}

/// The pre-skip of an OpusHead (RFC 7845 §5.1; Matroska's CodecPrivate for Opus is the same).
fn pre_skip(head: &[u8]) -> Option<u16> {
    (head.len() >= 19 && head.starts_with(b"OpusHead"))
        .then(|| u16::from_le_bytes([head[10], head[11]]))
}

/// The output gain of an OpusHead (Q7.8 dB) as a factor; 1 without one.
fn output_gain(head: &[u8]) -> f32 {
    let q = match head.get(16..18) {
        Some(&[a, b]) if head.starts_with(b"OpusHead") => i16::from_le_bytes([a, b]),
        _ => 0,
    };
    10f32.powf(f32::from(q) / (20.0 * 256.0))
}

/// An MP4 `dOps` box as symphonia hands it on, the OpusHead magic put before it: an OpusHead's
/// fields in its order, but the pre-skip, input rate and output gain big-endian (Opus in
/// ISOBMFF, §4.3.2). Turned into an OpusHead's little-endian ones, as FFmpeg's MP4 reader
/// turns it; read as they were, a pre-skip of 312 dropped 0.3 s of speech from an MP4 without
/// an edit list.
pub fn head_from_mp4(head: &[u8]) -> Vec<u8> {
    let mut h = head.to_vec();
    if h.len() >= 18 {
        h[10..12].reverse();
        h[12..16].reverse();
        h[16..18].reverse();
    }
    h
}

/// Family 1's stream table from an OpusHead (RFC 7845 §5.1.1), checked so that every channel
/// names a decoded channel or silence (opus-rs indexes its streams' output by these bytes
/// unchecked).
fn stream_table(head: &[u8], channels: u8) -> Result<ChannelMappingTable, AudioError> {
    let corrupt = |what: &str| AudioError::Corrupt(format!("opus: {what}"));
    let table = ChannelMappingTable::parse(1, channels, head.get(19..).unwrap_or(&[]))
        .ok_or_else(|| corrupt("channel mapping table cut short"))?;
    let (streams, coupled) = (usize::from(table.stream_count), usize::from(table.coupled_count));
    // More streams than channels would decode streams no channel plays.
    if streams == 0 || coupled > streams || streams > usize::from(channels) {
        return Err(corrupt("channel mapping table with a stream count its channels do not fit"));
    }
    let decoded = streams + coupled;
    if table.mapping.iter().any(|&m| m != 255 && usize::from(m) >= decoded) {
        return Err(corrupt("channel mapped to a stream that does not exist"));
    }
    Ok(table)
}

impl OpusStream {
    /// `head` is the OpusHead identification header: channel mapping family 0 (mono or
    /// stereo) or 1 (one to eight channels in Vorbis order); the others (ambisonics, and 255's
    /// unnamed channels) are refused. `delay`: the container's pre-skip, if it gives one; else
    /// the header's. The pre-skip is dropped, as RFC 7845 says and FFmpeg does (the reference
    /// implementations read Opus through FFmpeg).
    pub fn new(head: Option<&[u8]>, delay: Option<u32>) -> Result<Self, AudioError> {
        let family = head.filter(|h| h.len() >= 19).map_or(0, |h| h[18]);
        let count = head.and_then(|h| h.get(9)).copied().unwrap_or(1);
        let opus_err = |e: &str| AudioError::Corrupt(format!("opus: {e}"));
        let (decoder, channels, order) = match (family, head) {
            // Stereo is decoded as stereo and mixed by the caller, as FFmpeg's decoder and
            // swresample do, not folded inside the decoder.
            (0, _) => {
                let channels = if count == 2 { 2 } else { 1 };
                let d = OpusDecoder::new(OPUS_RATE as i32, channels).map_err(opus_err)?;
                (Decoder::Single(Box::new(d)), channels, None)
            }
            (1, Some(h)) => {
                let order = VorbisOrder::new(usize::from(count)).ok_or_else(|| {
                    AudioError::UnsupportedCodec(format!(
                        "Opus with {count} channels (one to eight are supported)"
                    ))
                })?;
                let d = MultistreamDecoder::new(OPUS_RATE as i32, stream_table(h, count)?)
                    .map_err(opus_err)?;
                (Decoder::Multi(Box::new(d)), usize::from(count), Some(order))
            }
            (f, _) => {
                return Err(AudioError::UnsupportedCodec(format!(
                    "Opus channel mapping family {f}"
                )));
            }
        };
        let skip = delay.or_else(|| head.and_then(pre_skip).map(u32::from)).unwrap_or(0);
        let gain = head.map_or(1.0, output_gain);
        Ok(Self {
            decoder,
            channels,
            order,
            buf: vec![0.0; MAX_FRAMES * channels],
            reordered: Vec::new(),
            skip: skip as usize,
            gain,
        })
    }
}

impl PacketDecoder for OpusStream {
    /// Mono or stereo unnamed (family 0), else positioned.
    fn layout(&self) -> Channels {
        self.order.as_ref().map_or(Channels::Discrete(self.channels as u16), VorbisOrder::channels)
    }

    /// The encoder's pre-skip comes off as well as the container's trims.
    fn decode(
        &mut self,
        packet: &[u8],
        trim_start: u64,
        trim_end: u64,
    ) -> Result<&[f32], AudioError> {
        let n = match &mut self.decoder {
            Decoder::Single(d) => d.decode(packet, MAX_FRAMES, &mut self.buf),
            Decoder::Multi(d) => d.decode(packet, MAX_FRAMES, &mut self.buf),
        }
        .map_err(|e| AudioError::Corrupt(format!("opus: {e}")))?;
        let n = n.min(MAX_FRAMES);
        let skip = self.skip.min(n);
        self.skip -= skip;
        let kept = super::kept_frames(n, trim_start, trim_end, skip);
        let frames = &mut self.buf[kept.start * self.channels..kept.end * self.channels];
        if self.gain != 1.0 {
            frames.iter_mut().for_each(|s| *s *= self.gain);
        }
        let frames = &*frames;
        match &self.order {
            Some(order) => {
                self.reordered.clear();
                order.reorder_into(frames, &mut self.reordered);
                Ok(&self.reordered)
            }
            None => Ok(frames),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OpusHead of `channels` in `family` with the stream table `table` after it.
    fn head(channels: u8, family: u8, table: &[u8]) -> Vec<u8> {
        let mut h = b"OpusHead".to_vec();
        h.extend([1, channels, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, family]);
        h.extend_from_slice(table);
        h
    }

    #[test]
    fn surround_heads_are_checked_before_the_decoder_indexes_by_them() {
        // 5.1 as libopus writes it: 4 streams, 2 coupled, channels in Vorbis order.
        let five_one = head(6, 1, &[4, 2, 0, 4, 1, 2, 3, 5]);
        let s = OpusStream::new(Some(&five_one), None).expect("5.1");
        assert_eq!(s.layout().count(), 6);
        let corrupt =
            |h: &[u8]| matches!(OpusStream::new(Some(h), None), Err(AudioError::Corrupt(_)));
        // A channel mapped past the 6 decoded channels (255 is silence, allowed).
        assert!(corrupt(&head(6, 1, &[4, 2, 0, 4, 1, 2, 3, 6])));
        assert!(OpusStream::new(Some(&head(6, 1, &[4, 2, 0, 4, 1, 2, 3, 255])), None).is_ok());
        // No streams, more coupled than streams, more streams than channels, a cut table.
        assert!(corrupt(&head(2, 1, &[0, 0, 0, 1])));
        assert!(corrupt(&head(2, 1, &[1, 2, 0, 1])));
        assert!(corrupt(&head(2, 1, &[3, 0, 0, 1])));
        assert!(corrupt(&head(6, 1, &[4, 2, 0, 4])));
        let unsupported = |h: &[u8]| {
            matches!(OpusStream::new(Some(h), None), Err(AudioError::UnsupportedCodec(_)))
        };
        // Nine channels have no Vorbis order; ambisonics (family 2) is not read.
        assert!(unsupported(&head(9, 1, &[9, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])));
        assert!(unsupported(&head(4, 2, &[4, 0, 0, 1, 2, 3])));
    }
}
