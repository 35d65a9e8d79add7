//! Shared by the engine's integration tests: where the real data and models are.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use stt_engine::{Engine, Precision};

pub const JFK: &str =
    "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `../shared/data` beside the clone, or `STT_DATA_DIR`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("STT_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("../shared/data"))
}

pub fn model_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("STT_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("models"));
    base.join(name)
}

fn load(name: &str) -> Engine {
    load_with(name, Precision::default())
}

fn load_with(name: &str, precision: Precision) -> Engine {
    let dir = model_dir(name);
    match Engine::load_dir_with(&dir, precision) {
        Ok(e) => e,
        Err(e) => panic!("{name} is not installed at {} ({e}); run `make models`", dir.display()),
    }
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

/// Rows of a `manifest.tsv` as maps from column name to value.
pub fn manifest(dir: &str) -> Vec<std::collections::HashMap<String, String>> {
    let path = data_dir().join(dir).join("manifest.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().map(|h| h.split('\t').collect()).unwrap_or_default();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| header.iter().zip(l.split('\t')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
        .collect()
}

pub fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Words after Whisper-style normalisation, joined by spaces.
pub fn norm(text: &str) -> String {
    stt_engine::eval::normalize_english(text).join(" ")
}
