//! Container and codec decoding with symphonia (Opus, which symphonia lacks, via opus-decoder).

use std::io::Cursor;

use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::audio::{AudioDecoderOptions, well_known::CODEC_ID_OPUS};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::opus::OpusStream;
use super::{AudioError, AudioLimits};

const MIN_RATE: u32 = 1_000;
const MAX_RATE: u32 = 384_000;

/// Mono audio at the source's own rate.
#[derive(Debug, Clone)]
pub struct MonoPcm {
    pub samples: Vec<f32>,
    pub rate: u32,
    pub channels: usize,
}

/// Appends interleaved frames as their channel average, refusing to grow past `max_frames`.
pub(crate) fn push_downmixed(
    out: &mut Vec<f32>,
    interleaved: &[f32],
    channels: usize,
    max_frames: usize,
    limit_s: f64,
) -> Result<(), AudioError> {
    let channels = channels.max(1);
    let frames = interleaved.len() / channels;
    if out.len() + frames > max_frames {
        return Err(AudioError::TooLong { limit_s });
    }
    if channels == 1 {
        out.extend_from_slice(&interleaved[..frames]);
    } else {
        let scale = 1.0 / channels as f32;
        out.extend(interleaved.chunks_exact(channels).map(|f| f.iter().sum::<f32>() * scale));
    }
    Ok(())
}

/// Decodes the first audio track to mono f32 at its own rate.
///
/// A stream that breaks off part-way (a truncated upload) yields the audio before the break;
/// one that yields nothing is an error.
pub fn decode_mono(bytes: Vec<u8>, limits: AudioLimits) -> Result<MonoPcm, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::EmptyFile);
    }
    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let mut reader = symphonia::default::get_probe()
        .probe(&Hint::new(), mss, FormatOptions::default(), MetadataOptions::default())
        .map_err(|e| AudioError::UnsupportedFormat(e.to_string()))?;
    let track = reader.first_track(TrackType::Audio).ok_or(AudioError::NoAudioTrack)?;
    let track_id = track.id;
    let params = match &track.codec_params {
        Some(CodecParameters::Audio(p)) => p.clone(),
        _ => return Err(AudioError::NoAudioTrack),
    };
    let rate = params.sample_rate.ok_or_else(|| AudioError::Corrupt("no sample rate".into()))?;
    // Outside this range a header is lying, and the resampler's tables would grow with it.
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(AudioError::Corrupt(format!(
            "sample rate {rate} Hz is outside {MIN_RATE}–{MAX_RATE} Hz"
        )));
    }
    let channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(1).max(1);
    let max_frames = (limits.max_duration_s * rate as f64).ceil() as usize;

    enum Codec {
        Symphonia(Box<dyn symphonia::core::codecs::audio::AudioDecoder>),
        Opus(Box<OpusStream>),
    }
    let mut codec = if params.codec == CODEC_ID_OPUS {
        Codec::Opus(Box::new(OpusStream::new(params.extra_data.as_deref())?))
    } else {
        let d = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .map_err(|e| AudioError::UnsupportedCodec(e.to_string()))?;
        Codec::Symphonia(d)
    };

    let mut out: Vec<f32> = Vec::new();
    let mut scratch: Vec<f32> = Vec::new();
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
                    let ch = buf.spec().channels().count().max(1);
                    buf.copy_to_vec_interleaved(&mut scratch);
                    push_downmixed(&mut out, &scratch, ch, max_frames, limits.max_duration_s)?;
                }
                // A damaged packet is skipped, as players do; a wholly undecodable stream ends empty.
                Err(SymError::DecodeError(e)) => {
                    first_error.get_or_insert(e.to_string());
                }
                Err(SymError::IoError(_)) => break,
                Err(e) => return Err(AudioError::Corrupt(e.to_string())),
            },
            Codec::Opus(o) => {
                let pcm = o.decode(&packet.data, packet.trim_start.get(), packet.trim_end.get())?;
                push_downmixed(&mut out, pcm, 1, max_frames, limits.max_duration_s)?;
            }
        }
    }
    if out.is_empty() {
        return Err(match first_error {
            Some(e) => AudioError::Corrupt(e),
            None => AudioError::NoSamples,
        });
    }
    let rate = match &codec {
        Codec::Opus(_) => super::opus::OPUS_RATE,
        Codec::Symphonia(_) => rate,
    };
    Ok(MonoPcm { samples: out, rate, channels })
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
            let r = decode_mono(wav(rate, 100), AudioLimits::default());
            assert!(
                matches!(r, Err(AudioError::Corrupt(_)) | Err(AudioError::UnsupportedFormat(_))),
                "{rate}: {r:?}"
            );
        }
        let ok = decode_mono(wav(8_000, 100), AudioLimits::default()).expect("8 kHz is fine");
        assert_eq!((ok.rate, ok.samples.len()), (8_000, 100));
    }
}
