//! The multilingual base model on real speech in nine languages: transcription against
//! faster-whisper on the same weights, language detection and translation.

mod common;

use common::*;
use stt_engine::{AudioLimits, Engine, EngineError, Task, TranscribeOptions};
use stt_testkit::wer as eval;

/// base on every clip of the multilingual set (nine languages) against faster-whisper's same
/// precision on the same samples (`faster_whisper_multi.json`, greedy, language detected): the
/// language found is the clip's and faster-whisper's, and the character error rate against the
/// clips' references is within half a point of faster-whisper's. `exact` (f32): each text is
/// faster-whisper's, and so are its word timestamps (the same words; |Δstart|, |Δend| median
/// ≤ 20 ms, 90th percentile ≤ 100 ms, the dev set's bound), Chinese and Japanese split into
/// characters as the reference splits them.
fn matches_faster_whisper(engine: &Engine, precision: &str, exact: bool) {
    let reference = reference_json("faster_whisper_multi.json");
    let rows = manifest("multi");
    assert_eq!(rows.len(), 23);
    let o = TranscribeOptions { word_timestamps: exact, ..Default::default() };
    let (mut ours, mut theirs, mut deltas) = (Vec::new(), Vec::new(), Vec::new());
    for row in &rows {
        let file = &row["file"];
        let want = &reference["clips"][file][precision];
        let want_text = want["text"].as_str().expect("reference text");
        let t = engine
            .transcribe_bytes(
                read(&data_dir().join("multi").join(file)),
                AudioLimits::default(),
                &o,
            )
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        eprintln!("{file} ({precision}): {} {}\n  faster-whisper: {want_text}", t.language, t.text);
        assert_eq!(t.language, row["language"], "{file} ({precision})");
        assert_eq!(Some(t.language.as_str()), want["language"].as_str(), "{file}");
        if exact {
            assert_eq!(t.text.trim(), want_text, "{file}");
            let got: Vec<_> = t.segments.iter().flat_map(|s| &s.words).collect();
            let want_words = want["words"].as_array().expect("reference words");
            let got_words: Vec<&str> = got.iter().map(|w| w.word.trim()).collect();
            let names: Vec<&str> =
                want_words.iter().map(|w| w[0].as_str().expect("word").trim()).collect();
            assert_eq!(got_words, names, "{file}: words");
            for (w, r) in got.iter().zip(want_words) {
                let at = |i: usize| r[i].as_f64().expect("time");
                deltas.extend([(w.start - at(1)).abs(), (w.end - at(2)).abs()]);
            }
        }
        ours.push((row["reference"].clone(), t.text));
        theirs.push((row["reference"].clone(), want_text.to_string()));
    }
    let cer = |pairs: &[(String, String)]| {
        let (errors, chars) = eval::corpus_cer(pairs.iter().map(|(r, h)| (r.as_str(), h.as_str())));
        errors as f64 / chars as f64
    };
    let (ours, theirs) = (cer(&ours), cer(&theirs));
    eprintln!(
        "CER {precision}: ours {:.2} %, faster-whisper {:.2} %",
        ours * 100.0,
        theirs * 100.0
    );
    assert!(ours <= theirs + 0.005, "{precision}: CER {ours} against faster-whisper's {theirs}");
    if exact {
        let (median, p90) = (percentile(&deltas, 0.5), percentile(&deltas, 0.9));
        eprintln!("word times against faster-whisper's: median {median:.3} s, p90 {p90:.3} s");
        assert!(median <= 0.02 && p90 <= 0.1, "word times: median {median}, p90 {p90}");
    }
}

/// In f32 every text and word timing is faster-whisper float32's.
#[test]
fn base_f32_transcribes_nine_languages_as_faster_whisper_float32() {
    matches_faster_whisper(base_f32(), "float32", true);
}

/// In int8 (our integer kernels; CTranslate2's int8 is its own) the texts differ in places,
/// as faster-whisper int8's differ from its float32: the error rate is what is compared.
#[test]
fn base_int8_transcribes_nine_languages_as_well_as_faster_whisper_int8() {
    matches_faster_whisper(base(), "int8", false);
}

/// base's translations into English in f32, at temperature 0, are faster-whisper float32's
/// on every clip of the multilingual set, character for character (at higher temperatures each
/// implementation samples from its own random numbers).
#[test]
fn base_f32_translates_nine_languages_as_faster_whisper_float32() {
    let reference = reference_json("faster_whisper_multi.json");
    let o =
        TranscribeOptions { task: Task::Translate, temperatures: vec![0.0], ..Default::default() };
    for row in manifest("multi") {
        let file = &row["file"];
        let want = reference["clips"][file]["float32"]["translation"].as_str().expect("reference");
        let t = base_f32()
            .transcribe_bytes(
                read(&data_dir().join("multi").join(file)),
                AudioLimits::default(),
                &o,
            )
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        eprintln!("{file}: {}\n  faster-whisper: {want}", t.text);
        assert_eq!(t.text.trim(), want, "{file}");
    }
}

/// When every temperature fails the fallback's checks, the window keeps its likeliest attempt
/// (faster-whisper's rule; the choice itself is unit-tested in `decoding::fallback`), stamped
/// with the last temperature tried: for a Japanese clip base translates unsurely, at least as
/// likely as temperature 0's translation, not the last sample at 1.0.
#[test]
fn when_every_temperature_fails_the_likeliest_attempt_is_kept() {
    let audio = read(&data_dir().join("multi").join("leopard_test_ja.wav"));
    let o = TranscribeOptions { task: Task::Translate, ..Default::default() };
    let greedy = TranscribeOptions { temperatures: vec![0.0], ..o.clone() };
    let at_zero =
        base().transcribe_bytes(audio.clone(), AudioLimits::default(), &greedy).expect("t = 0");
    let kept = base().transcribe_bytes(audio, AudioLimits::default(), &o).expect("fallback");
    eprintln!("t = 0: {}\nfallback: {}", at_zero.text, kept.text);
    let (zero, kept) = (&at_zero.segments[0], &kept.segments[0]);
    assert!(zero.avg_logprob < -1.0, "temperature 0 must fail the check: {zero:?}");
    assert_eq!(kept.temperature, 1.0, "every temperature failed: {kept:?}");
    assert!(kept.avg_logprob >= zero.avg_logprob, "{kept:?} against {zero:?}");
}

/// In int8, the default precision, German speech comes out as English.
#[test]
fn translates_german_to_english() {
    let o = TranscribeOptions { task: Task::Translate, ..Default::default() };
    let t = base()
        .transcribe_bytes(
            read(&data_dir().join("multi").join("fleurs_de_000.ogg")),
            AudioLimits::default(),
            &o,
        )
        .expect("translate");
    eprintln!("{}", t.text);
    let text = norm(&t.text);
    assert_eq!(t.language, "de");
    assert!(text.contains("hong kong"), "{text}");
    assert!(text.split(' ').any(|w| w == "the"), "not English: {text}");
}

#[test]
fn english_only_model_refuses_translation_and_other_languages() {
    let pcm = vec![0.1f32; 16_000];
    let o = TranscribeOptions { task: Task::Translate, ..Default::default() };
    assert!(matches!(
        tiny_en().transcribe_pcm(pcm.clone(), &o),
        Err(EngineError::NeedsMultilingual(_))
    ));
    let o = TranscribeOptions { language: Some("de".into()), ..Default::default() };
    assert!(matches!(
        tiny_en().transcribe_pcm(pcm.clone(), &o),
        Err(EngineError::NeedsMultilingual(_))
    ));
    let o = TranscribeOptions { language: Some("xx".into()), ..Default::default() };
    assert!(matches!(base().transcribe_pcm(pcm.clone(), &o), Err(EngineError::UnknownLanguage(_))));
}
