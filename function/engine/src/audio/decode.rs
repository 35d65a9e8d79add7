//! Container and codec decoding with symphonia (Opus, which symphonia lacks, via opus-rs;
//! Vorbis of more than two channels, which it decodes wrong, via lewton; HE-AAC as its AAC-LC
//! core).

use std::io::Cursor;

use symphonia::core::audio::{Channels, GenericAudioBufferRef};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::codecs::audio::well_known::{
    CODEC_ID_AAC, CODEC_ID_FLAC, CODEC_ID_OPUS, CODEC_ID_VORBIS,
};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::well_known::FORMAT_ID_ISOMP4;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::downmix::{Downmix, Naming};
use super::opus::OpusStream;
use super::resample::To16k;
use super::vorbis::VorbisStream;
use super::{AudioError, AudioLimits, Pcm16k};

/// A decoder of ours beside symphonia's (Opus, which it lacks; Vorbis of more than two
/// channels, which it decodes wrong): packets in, interleaved frames out.
pub(super) trait PacketDecoder {
    /// The channels of what [`Self::decode`] returns, in their order.
    fn layout(&self) -> Channels;

    /// One packet's interleaved frames, with the container's trims applied.
    fn decode(
        &mut self,
        packet: &[u8],
        trim_start: u64,
        trim_end: u64,
    ) -> Result<&[f32], AudioError>;
}

const MIN_RATE: u32 = 1_000;
const MAX_RATE: u32 = 384_000;

/// A stated sample rate, if there is one within range: outside it a header is lying, and the
/// resampler's tables would grow with it.
fn checked_rate(rate: Option<u32>) -> Result<u32, AudioError> {
    let rate = rate.ok_or_else(|| AudioError::Corrupt("no sample rate".into()))?;
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(AudioError::Corrupt(format!(
            "sample rate {rate} Hz is outside {MIN_RATE}–{MAX_RATE} Hz"
        )));
    }
    Ok(rate)
}

/// Integer samples of at most 16 bits, which FFmpeg's decoders hand on as `s16` (swresample
/// then mixes them in integers when it does not resample): 8- and 16-bit buffers, and the
/// 32-bit buffers symphonia's FLAC and ALAC decoders give a stream of `bits` ≤ 16.
fn sixteen_bit(buf: &GenericAudioBufferRef<'_>, bits: Option<u32>) -> bool {
    match buf {
        GenericAudioBufferRef::U8(_)
        | GenericAudioBufferRef::S8(_)
        | GenericAudioBufferRef::U16(_)
        | GenericAudioBufferRef::S16(_) => true,
        GenericAudioBufferRef::S24(_) | GenericAudioBufferRef::S32(_) => {
            bits.is_some_and(|b| b <= 16)
        }
        _ => false,
    }
}

/// Containers symphonia has no reader for, whose MPEG audio frames its MP3 reader would find
/// and lose after a few (program and transport streams: video `.mpg`, `.ts`): refused by name
/// rather than answered with the first tenth of a second of their sound.
fn unreadable_container(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0, 0, 1, 0xBA]) {
        return Some("an MPEG program stream (.mpg/.mpeg video)");
    }
    let ts = |i: usize| bytes.get(i) == Some(&0x47);
    (ts(0) && ts(188) && ts(376)).then_some("an MPEG transport stream (.ts)")
}

/// The largest sample magnitude passed on, 120 dB over full scale: a float file may hold values
/// up to 3.4·10³⁸, whose sums in the resampler's filter overflow to infinities of both signs,
/// and then to NaN (the FFT resampler used before panicked on it). Anything real (int16 values
/// written as floats reach 32 768) is far below it.
const MAX_SAMPLE: f32 = 1.0e6;

/// A sample as the resampler may take it: NaN and infinities as silence, the rest within
/// [`MAX_SAMPLE`].
fn passable(s: f32) -> f32 {
    if s.is_finite() { s.clamp(-MAX_SAMPLE, MAX_SAMPLE) } else { 0.0 }
}

/// Seconds of audio between two progress reports.
const PROGRESS_EVERY_S: usize = 60;

/// Mono samples on their way to 16 kHz, keeping the part the container says to present,
/// refusing audio past the duration limit and reporting the seconds decoded so far as they grow.
struct Sink<'a> {
    to16k: To16k,
    /// Frames the decoder has produced, and the range of them to keep (an MP4 edit list's).
    decoded: usize,
    keep: std::ops::Range<usize>,
    /// The samples as passed on: a float file may hold NaN or infinities, which would poison
    /// the resampler's filter and every window after; they become silence, and finite values
    /// are bounded by [`MAX_SAMPLE`].
    clean: Vec<f32>,
    frames: usize,
    max_frames: usize,
    limit_s: f64,
    rate: usize,
    progress: &'a mut dyn FnMut(f64),
}

impl Sink<'_> {
    /// A packet of our own decoders (Opus, lewton's Vorbis), mixed and passed on; damaged, it
    /// is skipped as symphonia's are.
    fn push_own(
        &mut self,
        decoded: Result<&[f32], AudioError>,
        mix: &Downmix,
        mono: &mut Vec<f32>,
        first_error: &mut Option<String>,
    ) -> Result<(), AudioError> {
        match decoded {
            Ok(frames) => {
                mix.mix(frames, mono);
                self.push(mono)
            }
            Err(e) => {
                first_error.get_or_insert(e.to_string());
                Ok(())
            }
        }
    }

    fn push(&mut self, mono: &[f32]) -> Result<(), AudioError> {
        let at = self.decoded;
        self.decoded += mono.len();
        let from = self.keep.start.saturating_sub(at).min(mono.len());
        let mono = &mono[from..self.keep.end.saturating_sub(at).clamp(from, mono.len())];
        let step = PROGRESS_EVERY_S * self.rate;
        let before = self.frames / step;
        self.frames += mono.len();
        if self.frames > self.max_frames {
            return Err(AudioError::TooLong { limit_s: self.limit_s });
        }
        if self.frames / step > before {
            (self.progress)(self.frames as f64 / self.rate as f64);
        }
        self.clean.clear();
        self.clean.extend(mono.iter().copied().map(passable));
        self.to16k.push(&self.clean);
        Ok(())
    }
}

/// An upload as symphonia reads it. An Ogg file is offered without seeking: symphonia's Ogg
/// reader (0.6.1) then skips its probe of the stream's end for its duration, whose byte
/// arithmetic underflows on a crafted page layout (found by fuzzing: a panic, and so a trap in
/// the component, for a client's file). The engine reads every packet in order and needs no
/// duration from the container, so nothing else changes.
struct Upload {
    bytes: Cursor<Vec<u8>>,
    seekable: bool,
}

impl Upload {
    fn new(bytes: Vec<u8>) -> Self {
        Self { seekable: !bytes.starts_with(b"OggS"), bytes: Cursor::new(bytes) }
    }
}

impl std::io::Read for Upload {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.bytes.read(buf)
    }
}

impl std::io::Seek for Upload {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.bytes.seek(pos)
    }
}

impl symphonia::core::io::MediaSource for Upload {
    fn is_seekable(&self) -> bool {
        self.seekable
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.bytes.get_ref().len() as u64)
    }
}

/// Decodes the first audio track to mono f32 at 16 kHz, resampling as packets decode (memory
/// follows the 16 kHz signal, not the source's rate or channel count). `progress` is told the
/// seconds decoded so far every minute of audio (a host scales a CPU budget to it).
///
/// A stream that breaks off part-way (a truncated upload) yields the audio before the break;
/// one that yields nothing is an error.
pub fn decode_to_16k(
    mut bytes: Vec<u8>,
    limits: AudioLimits,
    progress: &mut dyn FnMut(f64),
) -> Result<Pcm16k, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::EmptyFile);
    }
    if let Some(what) = unreadable_container(&bytes) {
        return Err(AudioError::UnsupportedFormat(format!(
            "{what} is not supported; send its sound alone"
        )));
    }
    super::wav_header::fill_in_unwritten_sizes(&mut bytes);
    let wav_naming = super::wav_header::names_its_channels(&bytes);
    let edit = super::mp4_edit::audio_edit(&bytes);
    let mss = MediaSourceStream::new(Box::new(Upload::new(bytes)), Default::default());
    let mut reader = symphonia::default::get_probe()
        .probe(&Hint::new(), mss, FormatOptions::default(), MetadataOptions::default())
        .map_err(|e| AudioError::UnsupportedFormat(e.to_string()))?;
    let track = reader.first_track(TrackType::Audio).ok_or(AudioError::NoAudioTrack)?;
    let (track_id, delay) = (track.id, track.delay);
    let mut params = match &track.codec_params {
        Some(CodecParameters::Audio(p)) => p.clone(),
        _ => return Err(AudioError::NoAudioTrack),
    };
    // HE-AAC signalled in its config: its AAC-LC core, at the core's rate.
    if params.codec == CODEC_ID_AAC
        && let Some(core) = params.extra_data.as_deref().and_then(super::he_aac::core_of)
    {
        params.sample_rate = Some(core.rate);
        params.extra_data = Some(core.config.into_boxed_slice());
    }
    let rate = checked_rate(params.sample_rate)?;
    let channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(1).max(1);
    let naming = match wav_naming {
        Some(true) => Naming::Named,
        Some(false) => Naming::Unnamed,
        // FLAC and Vorbis name channels by their count (Opus's own streams say so too).
        None if [CODEC_ID_FLAC, CODEC_ID_VORBIS].contains(&params.codec) => Naming::Named,
        None => Naming::Guess,
    };

    enum Codec {
        Symphonia(Box<dyn symphonia::core::codecs::audio::AudioDecoder>),
        /// One of ours, its mix, and the rate it decodes at.
        Own(Box<dyn PacketDecoder>, Downmix, u32),
    }
    let own = |d: Box<dyn PacketDecoder>, rate| {
        let mix = Downmix::new(&d.layout(), Naming::Named, false);
        Codec::Own(d, mix, rate)
    };
    let mut codec = if params.codec == CODEC_ID_OPUS {
        // An edit list covers Opus's pre-skip already.
        let delay = if edit.is_some() { Some(0) } else { delay };
        let mp4 = reader.format_info().format == FORMAT_ID_ISOMP4;
        let head = params
            .extra_data
            .as_deref()
            .map(|h| if mp4 { super::opus::head_from_mp4(h) } else { h.to_vec() });
        // Opus decodes at its own fixed rate, whatever the header says.
        own(Box::new(OpusStream::new(head.as_deref(), delay)?), super::opus::OPUS_RATE)
    } else {
        // symphonia's decoder is built in any case: its checks of the headers come first.
        let d = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .map_err(|e| {
                AudioError::UnsupportedCodec(if params.codec == CODEC_ID_AAC {
                    // symphonia's words for surround AAC are "aac too complex" or "program
                    // config element": say what is read.
                    format!("AAC: {e} (mono and stereo AAC-LC and HE-AAC are supported)")
                } else {
                    e.to_string()
                })
            })?;
        match params.extra_data.as_deref() {
            Some(headers) if params.codec == CODEC_ID_VORBIS && channels > 2 => {
                match VorbisStream::new(headers) {
                    Some(v) => own(Box::new(v), rate),
                    None => Codec::Symphonia(d),
                }
            }
            _ => Codec::Symphonia(d),
        }
    };
    // symphonia's decoders decode at the rate of their codec's own header, where an MP4's
    // sample entry may state another (an AAC config's core rate against HE-AAC's output rate).
    let decoded_rate = match &codec {
        Codec::Symphonia(d) => checked_rate(d.codec_params().sample_rate.or(Some(rate)))?,
        Codec::Own(.., r) => *r,
    };
    let frames_in =
        |s: f64| (s * decoded_rate as f64).round().clamp(0.0, usize::MAX as f64) as usize;
    let keep = match edit {
        Some(e) => {
            let start = frames_in(e.start_s);
            start..e.duration_s.map_or(usize::MAX, |d| start.saturating_add(frames_in(d)))
        }
        None => 0..usize::MAX,
    };
    let mut sink = Sink {
        to16k: To16k::new(decoded_rate)?,
        decoded: 0,
        keep,
        clean: Vec::new(),
        frames: 0,
        max_frames: (limits.max_duration_s * decoded_rate as f64).ceil() as usize,
        limit_s: limits.max_duration_s,
        rate: decoded_rate as usize,
        progress,
    };
    let mut scratch: Vec<f32> = Vec::new();
    let mut mono: Vec<f32> = Vec::new();
    // Built from symphonia's first buffer (its channels and sample type) and again if they
    // change.
    let mut mix: Option<Downmix> = None;
    let mut first_error: Option<String> = None;
    loop {
        let packet = match reader.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            // A stream cut short ends here; what was decoded stands.
            Err(SymError::IoError(_)) => break,
            Err(e) => {
                first_error.get_or_insert(e.to_string());
                break;
            }
        };
        if packet.track_id != track_id {
            continue;
        }
        match &mut codec {
            Codec::Symphonia(d) => match d.decode(&packet) {
                Ok(buf) => {
                    let channels = buf.spec().channels();
                    let integer_16k = decoded_rate == super::SAMPLE_RATE
                        && sixteen_bit(&buf, params.bits_per_sample);
                    let m = match mix.take() {
                        Some(m) if m.suits(channels, integer_16k) => m,
                        _ => Downmix::new(channels, naming, integer_16k),
                    };
                    buf.copy_to_vec_interleaved(&mut scratch);
                    m.mix(&scratch, &mut mono);
                    mix = Some(m);
                    sink.push(&mono)?;
                }
                // A damaged packet is skipped, as players do; a wholly undecodable stream ends empty.
                Err(SymError::DecodeError(e)) => {
                    first_error.get_or_insert(e.to_string());
                }
                Err(SymError::IoError(_)) => break,
                Err(e) => return Err(AudioError::Corrupt(e.to_string())),
            },
            Codec::Own(d, m, _) => {
                let decoded =
                    d.decode(&packet.data, packet.trim_start.get(), packet.trim_end.get());
                sink.push_own(decoded, m, &mut mono, &mut first_error)?;
            }
        }
    }
    if sink.frames == 0 {
        return Err(match first_error {
            Some(e) => AudioError::Corrupt(e),
            None => AudioError::NoSamples,
        });
    }
    let samples = sink.to16k.finish();
    if samples.is_empty() {
        return Err(AudioError::NoSamples);
    }
    Ok(Pcm16k { samples, source_rate: rate, source_channels: channels })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 16-bit mono WAV header claiming `rate`, with `n` samples of silence.
    fn wav(rate: u32, n: u32) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(b"RIFF");
        f.extend_from_slice(&(36 + 2 * n).to_le_bytes());
        f.extend_from_slice(b"WAVEfmt ");
        f.extend_from_slice(&16u32.to_le_bytes());
        f.extend_from_slice(&1u16.to_le_bytes());
        f.extend_from_slice(&1u16.to_le_bytes());
        f.extend_from_slice(&rate.to_le_bytes());
        f.extend_from_slice(&(rate.wrapping_mul(2)).to_le_bytes());
        f.extend_from_slice(&2u16.to_le_bytes());
        f.extend_from_slice(&16u16.to_le_bytes());
        f.extend_from_slice(b"data");
        f.extend_from_slice(&(2 * n).to_le_bytes());
        f.extend(std::iter::repeat_n(0u8, 2 * n as usize));
        f
    }

    #[test]
    fn absurd_sample_rates_are_refused() {
        for rate in [1, 999, 400_000, 4_000_000_000] {
            let r = decode_to_16k(wav(rate, 100), AudioLimits::default(), &mut |_| {});
            assert!(
                matches!(r, Err(AudioError::Corrupt(_)) | Err(AudioError::UnsupportedFormat(_))),
                "{rate}: {r:?}"
            );
        }
        let ok = decode_to_16k(wav(8_000, 100), AudioLimits::default(), &mut |_| {})
            .expect("8 kHz is fine");
        assert_eq!((ok.source_rate, ok.samples.len()), (8_000, 200));
    }

    /// A 32-bit float mono WAV at 44.1 kHz holding `samples`.
    fn float_wav(samples: impl ExactSizeIterator<Item = f32>) -> Vec<u8> {
        let bytes = u32::try_from(4 * samples.len()).expect("a small test file");
        let mut f = Vec::new();
        f.extend_from_slice(b"RIFF");
        f.extend_from_slice(&(36 + bytes).to_le_bytes());
        f.extend_from_slice(b"WAVEfmt ");
        f.extend_from_slice(&16u32.to_le_bytes());
        f.extend_from_slice(&3u16.to_le_bytes()); // IEEE float
        f.extend_from_slice(&1u16.to_le_bytes());
        f.extend_from_slice(&44_100u32.to_le_bytes());
        f.extend_from_slice(&(44_100u32 * 4).to_le_bytes());
        f.extend_from_slice(&4u16.to_le_bytes());
        f.extend_from_slice(&32u16.to_le_bytes());
        f.extend_from_slice(b"data");
        f.extend_from_slice(&bytes.to_le_bytes());
        f.extend(samples.flat_map(f32::to_le_bytes));
        f
    }

    /// Found by the audio_decode fuzz target: a float WAV with NaN/infinite samples made the FFT
    /// resampler used then panic (a trap, so a 500, in the component).
    #[test]
    fn non_finite_float_samples_become_silence() {
        let f = float_wav((0..44_100).map(|i| match i % 5 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            _ => 0.25,
        }));
        let pcm = decode_to_16k(f, AudioLimits::default(), &mut |_| {}).expect("decodes");
        assert!((pcm.samples.len() as i64 - 16_000).abs() <= 1, "{}", pcm.samples.len());
        assert!(pcm.samples.iter().all(|s| s.is_finite()));
    }

    #[test]
    fn float_samples_too_large_for_the_resampler_are_bounded() {
        let f = float_wav((0..44_100).map(|i| if i % 3 == 0 { f32::MAX } else { -3.0e38 }));
        let pcm = decode_to_16k(f, AudioLimits::default(), &mut |_| {}).expect("decodes");
        assert!(pcm.samples.iter().all(|s| s.is_finite()));
    }

    #[test]
    fn progress_is_reported_every_minute_of_audio() {
        let mut seen = Vec::new();
        let pcm =
            decode_to_16k(wav(8_000, 8_000 * 150), AudioLimits::default(), &mut |s| seen.push(s))
                .expect("150 s of silence");
        assert_eq!(pcm.samples.len(), 16_000 * 150);
        assert!(seen.len() == 2 && seen[0] >= 60.0 && seen[1] >= 120.0, "{seen:?}");
    }
}
