//! The strategies over one window's audio context: greedy, best-of sampling on fallback, and
//! beam search.

mod common;

use common::*;
use stt_engine::{AudioLimits, TranscribeOptions, audio_contexts_built};

fn jfk(o: &TranscribeOptions, engine: &stt_engine::Engine) -> stt_engine::Transcript {
    engine
        .transcribe_bytes(read(&data_dir().join("jfk.flac")), AudioLimits::default(), o)
        .expect("transcribe")
}

/// A threshold no result passes makes the window go through every temperature (greedy, then
/// five samples at each of 0.2 … 1.0: 26 decodes); the window's cross-attention keys and values
/// are still computed once.
#[test]
fn the_audio_context_is_built_once_per_window_through_the_whole_fallback() {
    let o = TranscribeOptions {
        logprob_threshold: Some(0.0),
        no_speech_threshold: None,
        ..Default::default()
    };
    let before = audio_contexts_built();
    let t = jfk(&o, tiny_en());
    let built = audio_contexts_built() - before;
    let windows = t.segments.iter().map(|s| s.seek).collect::<std::collections::BTreeSet<_>>();
    assert!(t.segments.iter().all(|s| s.temperature == 1.0), "every temperature was tried");
    assert_eq!(built, windows.len(), "one audio context per window ({windows:?})");
    assert_eq!(built, 1);
}

#[test]
fn beam_search_transcribes_jfk_in_both_precisions() {
    let o = TranscribeOptions { beam_size: 5, ..Default::default() };
    for engine in [tiny_en(), tiny_en_f32()] {
        let t = jfk(&o, engine);
        assert_eq!(norm(&t.text), norm(JFK), "{}: {}", engine.model.precision, t.text);
        assert!(t.segments.iter().all(|s| s.temperature == 0.0 && s.avg_logprob > -1.0));
    }
}

/// Beam search follows the reference's semantics: in f32, five beams give faster-whisper 1.2.1
/// float32's `beam_size=5` text on every dev clip (the same samples; reference in
/// `bench/reference/faster_whisper_words.json`).
#[test]
fn five_beams_give_faster_whispers_beam_search_text_on_every_dev_clip() {
    let reference = faster_whisper_reference();
    let clips = reference["clips"].as_object().expect("clips");
    assert_eq!(clips.len(), 20);
    let o = TranscribeOptions { beam_size: 5, language: Some("en".into()), ..Default::default() };
    let mut differing = Vec::new();
    for (file, want) in clips {
        let t = tiny_en_f32()
            .transcribe_bytes(read(&data_dir().join("dev").join(file)), AudioLimits::default(), &o)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let want = want["beam5_text"].as_str().expect("beam5_text");
        if t.text != want {
            differing.push(format!("{file}:\n  ours: {}\n  ref:  {want}", t.text));
        }
    }
    assert!(differing.is_empty(), "{}", differing.join("\n"));
}

#[test]
fn one_beam_is_greedy_and_patience_and_length_penalty_are_accepted() {
    let greedy = jfk(&TranscribeOptions::default(), tiny_en());
    let one =
        jfk(&TranscribeOptions { beam_size: 1, patience: 2.0, ..Default::default() }, tiny_en());
    assert_eq!(greedy, one);
    let o = TranscribeOptions {
        beam_size: 3,
        patience: 2.0,
        length_penalty: Some(0.6),
        ..Default::default()
    };
    assert_eq!(norm(&jfk(&o, tiny_en()).text), norm(JFK));
}

#[test]
fn out_of_range_beam_options_are_client_errors() {
    for o in [
        TranscribeOptions { beam_size: 0, ..Default::default() },
        TranscribeOptions { beam_size: stt_engine::MAX_BEAMS + 1, ..Default::default() },
        TranscribeOptions { patience: 0.0, ..Default::default() },
        TranscribeOptions { length_penalty: Some(f32::NAN), ..Default::default() },
    ] {
        let e = tiny_en()
            .transcribe_bytes(read(&data_dir().join("jfk.flac")), AudioLimits::default(), &o)
            .expect_err("rejected");
        assert!(e.is_client_error(), "{e}");
    }
}
