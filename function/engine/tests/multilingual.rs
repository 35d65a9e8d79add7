//! The multilingual base model: language detection and translation on real speech.

mod common;

use common::*;
use stt_engine::{AudioLimits, EngineError, Task, TranscribeOptions};

#[test]
fn detects_the_spoken_language() {
    for (file, lang) in
        [("fleurs_de_000.ogg", "de"), ("fleurs_es_000.ogg", "es"), ("fleurs_fr_000.ogg", "fr")]
    {
        let t = base()
            .transcribe_bytes(
                read(&data_dir().join("multi").join(file)),
                AudioLimits::default(),
                &TranscribeOptions::default(),
            )
            .expect("transcribe");
        eprintln!("{file}: {} {}", t.language, t.text);
        assert_eq!(t.language, lang, "{file}");
        assert!(t.text.split_whitespace().count() >= 5, "{file}: {}", t.text);
    }
}

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
