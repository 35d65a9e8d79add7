//! Every file in ../shared/data/bad/ gets the behaviour its manifest expects: a typed error,
//! a transcript of what is there, or an empty transcript, never a panic.

mod common;

use common::*;
use stt_engine::{AudioLimits, EngineError, TranscribeOptions};

#[test]
fn every_bad_input_behaves_as_the_manifest_says() {
    let rows = manifest("bad");
    assert!(rows.len() >= 14);
    for row in rows {
        let (file, expect) = (&row["file"], row["expect"].as_str());
        let bytes = read(&data_dir().join("bad").join(file));
        let started = std::time::Instant::now();
        let result = tiny_en().transcribe_bytes(
            bytes,
            AudioLimits::default(),
            &TranscribeOptions::default(),
        );
        eprintln!(
            "{file} ({expect}) in {:?}: {:?}",
            started.elapsed(),
            result.as_ref().map(|t| &t.text)
        );
        match (expect, &result) {
            ("error", Err(e)) => {
                assert!(matches!(e, EngineError::Audio(_)) && e.is_client_error(), "{file}: {e}")
            }
            ("error", Ok(t)) => panic!("{file}: expected an error, got {:?}", t.text),
            ("error_or_text" | "error_or_empty", Err(e)) => {
                assert!(e.is_client_error(), "{file}: {e}")
            }
            ("error_or_text", Ok(_)) => {}
            ("error_or_empty" | "empty", Ok(t)) => {
                assert!(t.text.split_whitespace().count() <= 2, "{file}: {:?}", t.text)
            }
            ("empty", Err(e)) => panic!("{file}: silence must transcribe (to nothing), got {e}"),
            ("jfk", Ok(t)) => assert_eq!(norm(&t.text), norm(JFK), "{file}"),
            ("jfk", Err(e)) => panic!("{file}: {e}"),
            (other, _) => panic!("{file}: unknown expectation {other}"),
        }
    }
}

#[test]
fn audio_over_the_duration_limit_is_refused_while_decoding() {
    let bytes = read(&data_dir().join("jfk.flac"));
    let err = tiny_en()
        .transcribe_bytes(bytes, AudioLimits { max_duration_s: 5.0 }, &TranscribeOptions::default())
        .expect_err("11 s over a 5 s limit");
    assert!(
        matches!(err, EngineError::Audio(stt_engine::audio::AudioError::TooLong { .. })),
        "{err}"
    );
}

/// A WAV file whose writer never filled in its sizes (written to a pipe, or a recorder that
/// stopped early) is read to its end, as ffmpeg reads it.
#[test]
fn a_wav_whose_sizes_were_never_written_transcribes() {
    let jfk = data_dir().join("jfk.flac");
    let wav = read(&stt_testkit::media::reencode(
        &jfk,
        "jfk_s16_mono.wav",
        &["-ac", "1", "-c:a", "pcm_s16le", "-bitexact"],
    ));
    let data = wav.windows(4).position(|w| w == b"data").expect("a data chunk");
    for (riff, size) in [(0u32, 0u32), (0, u32::MAX), (u32::MAX, 0)] {
        let mut bytes = wav.clone();
        bytes[4..8].copy_from_slice(&riff.to_le_bytes());
        bytes[data + 4..data + 8].copy_from_slice(&size.to_le_bytes());
        let t = tiny_en()
            .transcribe_bytes(bytes, AudioLimits::default(), &TranscribeOptions::default())
            .unwrap_or_else(|e| panic!("RIFF size {riff:#x}, data size {size:#x}: {e}"));
        assert_eq!(norm(&t.text), norm(JFK), "RIFF size {riff:#x}, data size {size:#x}");
    }
}
