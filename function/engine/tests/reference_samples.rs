//! The engine hands Whisper the samples faster-whisper does: FFmpeg's decoders, swresample's
//! default mono mix, resampling filter and edges, and 16-bit rounding, as checked in by
//! bench/scripts/pyav_pcm_reference.py (PyAV 18, FFmpeg 8). Float sums may round one 16-bit step
//! apart (swresample's SIMD sums in another order); anything else is a difference of method.

mod common;

use common::*;
use serde_json::Value;
use stt_engine::AudioLimits;

fn reference() -> Value {
    let path = stt_testkit::paths::workspace().join("bench/reference/pyav_pcm.json");
    serde_json::from_slice(&read(&path)).expect("pyav_pcm.json")
}

/// Our decode of `bytes` against one reference entry: same length, every checked sample within
/// one step, and at least 99.5 % of them equal.
fn check(name: &str, bytes: Vec<u8>, want: &Value) {
    let pcm = stt_engine::audio::load(bytes, AudioLimits::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .samples;
    assert_eq!(pcm.len() as u64, want["len"].as_u64().expect("len"), "{name}: length");
    let stride = want["stride"].as_u64().expect("stride") as usize;
    let samples = want["samples"].as_array().expect("samples");
    let (mut equal, mut worst) = (0usize, 0i64);
    for (k, w) in samples.iter().enumerate() {
        let ours = (pcm[k * stride] * 32768.0) as i64;
        let d = (ours - w.as_i64().expect("sample")).abs();
        equal += usize::from(d == 0);
        worst = worst.max(d);
    }
    assert!(worst <= 1, "{name}: a sample {worst} steps from the reference's");
    assert!(equal * 1000 >= samples.len() * 995, "{name}: {equal} of {} equal", samples.len());
}

/// Every entry of the reference's `section` (at least `at_least` of them), decoded from the
/// bytes `input` gives for its name.
fn check_section(section: &str, at_least: usize, input: impl Fn(&str) -> Vec<u8>) {
    let r = reference();
    let entries = r[section].as_object().expect("section");
    assert!(entries.len() >= at_least, "{section}: {} entries", entries.len());
    for (name, want) in entries {
        check(name, input(name), want);
    }
}

#[test]
fn shared_data_decodes_to_the_references_samples() {
    check_section("files", 8, |name| read(&data_dir().join(name)));
}

/// The formula bench/scripts/pyav_pcm_reference.py writes its synthetic WAVs with, byte for
/// byte: without a mask a plain PCM header as Python's `wave` writes it, which names no channel
/// positions; with one an extensible header (`WAVE_FORMAT_EXTENSIBLE`) naming them by it.
/// (hound, the project's WAV writer, gives every file of more than two channels the
/// extensible header with the first N positions: FFmpeg reads the two headers as different
/// layouts, so the test writes the script's bytes itself.)
fn synthetic_wav(rate: u32, channels: u16, frames: usize, mask: Option<u32>) -> Vec<u8> {
    let mut state = u64::from(rate) * 31 + u64::from(channels);
    let samples: Vec<i16> = (0..frames * channels as usize)
        .map(|i| {
            state = (state * 1_103_515_245 + 12_345) % (1 << 31);
            ((state >> 16) % 16_001) as i16 - 8_000 + (i % channels as usize) as i16 * 1_000
        })
        .collect();
    let mut fmt = Vec::with_capacity(40);
    fmt.extend_from_slice(&(if mask.is_some() { 0xFFFEu16 } else { 1 }).to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
    fmt.extend_from_slice(&(channels * 2).to_le_bytes());
    fmt.extend_from_slice(&16u16.to_le_bytes());
    if let Some(mask) = mask {
        // cbSize, valid bits, the mask, and KSDATAFORMAT_SUBTYPE_PCM.
        fmt.extend_from_slice(&22u16.to_le_bytes());
        fmt.extend_from_slice(&16u16.to_le_bytes());
        fmt.extend_from_slice(&mask.to_le_bytes());
        fmt.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71]);
    }
    let data_len = (samples.len() * 2) as u32;
    let mut w = Vec::with_capacity(28 + fmt.len() + data_len as usize);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(20 + fmt.len() as u32 + data_len).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    w.extend_from_slice(&fmt);
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data_len.to_le_bytes());
    samples.iter().for_each(|s| w.extend_from_slice(&s.to_le_bytes()));
    w
}

/// Layouts and rates the shared data lacks: 16-bit multichannel at 16 kHz (mixed in integers),
/// 5.0 and 7.1 at 48 kHz, a rate whose ratio to 16 kHz needs interpolated filter phases, and
/// channels named by an extensible header's mask where its positions are the first N (3.0, 3.1,
/// 7.1 wide: FFmpeg mixes them as named, where a plain header's same count gets its default).
#[test]
fn multichannel_and_odd_rates_decode_to_the_references_samples() {
    check_section("synthetic", 9, |name| {
        let p: Vec<u32> =
            name.split('_').map(|x| x.parse().expect("rate_channels_frames[_mask]")).collect();
        synthetic_wav(p[0], p[1] as u16, p[2] as usize, p.get(3).copied())
    });
}

/// Files the script encoded with FFmpeg's encoders beside the reference (a three-channel FLAC,
/// whose channels FLAC names by their count: FL FR FC).
#[test]
fn encoded_files_decode_to_the_references_samples() {
    let dir = stt_testkit::paths::workspace().join("bench/reference");
    check_section("encoded", 1, |name| read(&dir.join(name)));
}
