//! Shared by the engine's integration tests: where the real data and models are.
#![allow(dead_code, unused_imports)] // each test crate uses a different part of these helpers

use std::sync::{Arc, OnceLock};

use stt_engine::{Engine, Precision, Vad};

pub const JFK: &str = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

pub use stt_testkit::paths::{data_dir, model_dir, read};
pub use stt_testkit::stats::percentile;

fn load(name: &str) -> Engine {
    load_with(name, Precision::default())
}

fn load_with(name: &str, precision: Precision) -> Engine {
    let dir = model_dir(name);
    match Engine::load_dir_with(&dir, precision) {
        Ok(e) => e.with_vad(vad()),
        Err(e) => panic!("{name} is not installed at {} ({e}); run `make models`", dir.display()),
    }
}

/// Silero VAD, attached to every engine here (it only runs when options ask for it).
pub fn vad() -> Arc<Vad> {
    static V: OnceLock<Arc<Vad>> = OnceLock::new();
    V.get_or_init(|| {
        let dir = model_dir("silero-vad");
        match Vad::load_dir(&dir) {
            Ok(v) => Arc::new(v),
            Err(e) => {
                panic!("silero-vad is not installed at {} ({e}); run `make models`", dir.display())
            }
        }
    })
    .clone()
}

pub fn tiny_en() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| load("tiny.en"))
}

/// tiny.en in f32, the reference precision.
pub fn tiny_en_f32() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| load_with("tiny.en", Precision::F32))
}

/// base in f32.
pub fn base_f32() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| load_with("base", Precision::F32))
}

pub fn base() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| load("base"))
}

/// Rows of a `manifest.tsv` of the data folder.
pub fn manifest(dir: &str) -> Vec<std::collections::HashMap<String, String>> {
    stt_testkit::paths::data_manifest(dir)
}

/// faster-whisper's transcripts of the dev set (`bench/reference/faster_whisper_words.json`,
/// made by `make reference`): greedy with word timings, and beam 5.
pub fn faster_whisper_reference() -> serde_json::Value {
    reference_json("faster_whisper_words.json")
}

/// A reference file of `bench/reference/` (made by `make reference`).
pub fn reference_json(name: &str) -> serde_json::Value {
    let path = stt_testkit::paths::workspace().join("bench/reference").join(name);
    serde_json::from_slice(&read(&path)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Words after Whisper-style normalisation, joined by spaces.
pub fn norm(text: &str) -> String {
    stt_testkit::wer::normalize_english(text).join(" ")
}
