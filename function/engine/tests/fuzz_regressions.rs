//! What the fuzz targets found (tests/fuzz_found/, docs/FUZZING.md), run on every build.

mod common;

use common::*;
use stt_engine::{AudioLimits, TranscribeOptions};

fn found(name: &str) -> Vec<u8> {
    read(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_found").join(name))
}

#[test]
fn a_webm_that_overflowed_an_opus_decoders_collapse_mask_transcribes() {
    let bytes = found("audio_decode-a4d77abb.webm");
    let pcm = stt_engine::audio::load(bytes.clone(), AudioLimits::default()).expect("decodes");
    assert!((pcm.duration_s() - 4.0).abs() < 0.1, "{}", pcm.duration_s());
    let t = tiny_en()
        .transcribe_bytes(bytes, AudioLimits::default(), &TranscribeOptions::default())
        .expect("transcribes");
    assert!(t.text.to_lowercase().contains("fellow americans"), "{}", t.text);
}

#[test]
fn a_float_wav_with_samples_near_f32_max_decodes() {
    // A mutated float WAV whose samples reach 3.4·10³⁸: the resampler's FFT overflowed to a NaN
    // and rubato panicked (a trap, so a 500, in the component).
    let pcm = stt_engine::audio::load(found("audio_decode-c62d4621.wav"), AudioLimits::default())
        .expect("decodes");
    assert!(pcm.duration_s() > 0.5 && pcm.samples.iter().all(|s| s.is_finite()));
}

#[test]
fn an_ogg_whose_pages_underflowed_the_end_probe_decodes() {
    // A mutated Ogg/Opus file (2026-12-03): symphonia's Ogg reader, probing a seekable stream's
    // end for its duration, subtracted past zero and panicked (in release builds too, through a
    // clamp further on): a trap, so a 500, in the component. Ogg uploads are read without that
    // probe now. What survives the mutation is 2 s of audio.
    let pcm = stt_engine::audio::load(found("audio_decode-9fe88e56.ogg"), AudioLimits::default())
        .expect("decodes");
    assert!((pcm.duration_s() - 2.0).abs() < 0.1, "{}", pcm.duration_s());
    assert!(pcm.samples.iter().all(|s| s.is_finite()));
}

#[test]
fn a_wav_claiming_57_342_channels_is_refused() {
    // A 59-byte WAV (2026-12-03) whose `fmt ` claims 57 342 channels of 16 bits: symphonia's
    // reader overflows a u16 product for a log line (a panic only with overflow checks on, as
    // in the fuzz build) and then refuses the channel count: a client's error, not a trap.
    let err = stt_engine::audio::load(found("audio_decode-9b5509a9.wav"), AudioLimits::default())
        .expect_err("refused");
    assert!(err.to_string().contains("channel count"), "{err}");
}
