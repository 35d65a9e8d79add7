//! Vorbis of more than two channels, through lewton. symphonia 0.6.1's Vorbis decoder loses
//! channels beyond the first pair (measured on libvorbis's files against FFmpeg: a 3.0 file's
//! second channel comes out silent and its centre at 0.43, quad's rear pair and 5.1's rear
//! right silent); lewton decodes them as FFmpeg does. Mono and stereo stay with symphonia.
//!
//! symphonia's decoder is built from the same headers first and must accept them: its bounds
//! (at most 32 dimensions and 128 Ki entries per codebook) keep a hostile setup header from
//! sizing lewton's tables, which lewton allocates as the header states.

use lewton::audio::{PreviousWindowRight, read_audio_packet_generic};
use lewton::header::{IdentHeader, SetupHeader, read_header_ident, read_header_setup};
use lewton::samples::InterleavedSamples;
use symphonia::core::audio::Channels;

use super::AudioError;
use super::decode::PacketDecoder;
use super::vorbis_order::VorbisOrder;

/// A Vorbis identification header's length (Vorbis I §4.2.2).
const IDENT_LEN: usize = 30;

pub struct VorbisStream {
    ident: IdentHeader,
    setup: SetupHeader,
    previous: PreviousWindowRight,
    order: VorbisOrder,
    frames: Vec<f32>,
}

impl VorbisStream {
    /// `extra_data`: the identification and setup headers one after the other, as symphonia's
    /// Ogg and Matroska readers give them. `None` when they are not that, or lewton cannot
    /// read them (the caller then keeps symphonia's decoder).
    pub fn new(extra_data: &[u8]) -> Option<Self> {
        let (ident, setup) = extra_data.split_at_checked(IDENT_LEN)?;
        let ident = read_header_ident(ident).ok()?;
        let order = VorbisOrder::new(usize::from(ident.audio_channels))?;
        let setup =
            read_header_setup(setup, ident.audio_channels, (ident.blocksize_0, ident.blocksize_1))
                .ok()?;
        Some(Self { ident, setup, previous: PreviousWindowRight::new(), order, frames: Vec::new() })
    }
}

impl PacketDecoder for VorbisStream {
    fn layout(&self) -> Channels {
        self.order.channels()
    }

    /// The first packet yields no frames: it only primes the overlap, as in FFmpeg.
    fn decode(
        &mut self,
        packet: &[u8],
        trim_start: u64,
        trim_end: u64,
    ) -> Result<&[f32], AudioError> {
        let decoded: InterleavedSamples<f32> =
            read_audio_packet_generic(&self.ident, &self.setup, packet, &mut self.previous)
                .map_err(|e| AudioError::Corrupt(format!("vorbis: {e}")))?;
        let channels = decoded.channel_count.max(1);
        let n = decoded.samples.len() / channels;
        let kept = super::kept_frames(n, trim_start, trim_end, 0);
        self.frames.clear();
        self.order.reorder_into(
            &decoded.samples[kept.start * channels..kept.end * channels],
            &mut self.frames,
        );
        Ok(&self.frames)
    }
}
