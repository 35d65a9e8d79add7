//! The engine compiled to wasm32-wasip2 (the `stt` command) run under wasmtime: the same text
//! as native for jfk.flac, and a typed error (no trap) for every bad input.

use std::path::PathBuf;
use std::sync::OnceLock;

use stt_engine::{AudioLimits, Engine, TranscribeOptions};
use stt_testkit::paths::{data_dir, models_dir};
use stt_testkit::wasi_command::{self as command, CommandOutput, Preopen};
use wasmtime::component::Component;

fn runtime() -> &'static (wasmtime::Engine, Component) {
    static R: OnceLock<(wasmtime::Engine, Component)> = OnceLock::new();
    R.get_or_init(|| {
        let wasm = std::env::var_os("STT_CLI_WASM")
            .map(PathBuf::from)
            .expect("STT_CLI_WASM names the stt.wasm command (make test sets it)");
        let engine = wasmtime::Engine::default();
        let cache = wasm
            .parent()
            .map(|p| p.join("cwasm-cache"))
            .unwrap_or_else(|| PathBuf::from("cwasm-cache"));
        let component =
            stt_host::component_cache::load(&engine, &wasm, &cache).expect("compile stt.wasm");
        (engine, component)
    })
}

fn run_stt(files: &[&str], dir: &str) -> CommandOutput {
    let (engine, component) = runtime();
    let mut args: Vec<String> =
        ["stt", "transcribe", "--model", "/models/tiny.en", "--format", "json"]
            .map(String::from)
            .to_vec();
    args.extend(files.iter().map(|f| format!("/data/{f}")));
    let preopens = [
        Preopen { host: models_dir(), guest: "/models".into() },
        Preopen { host: data_dir().join(dir), guest: "/data".into() },
    ];
    command::run(engine, component, &args, &preopens).expect("the command runs without trapping")
}

fn lines(out: &CommandOutput) -> Vec<serde_json::Value> {
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn wasm_gives_the_same_text_as_native_for_jfk() {
    let out = run_stt(&["jfk.flac"], ".");
    assert_eq!(out.exit_code, 0, "stderr: {}", out.stderr);
    let wasm_text = lines(&out)[0]["text"].as_str().expect("text").to_string();
    let native = Engine::load_dir(&models_dir().join("tiny.en")).expect("native model");
    let bytes = std::fs::read(data_dir().join("jfk.flac")).expect("jfk.flac");
    let t = native
        .transcribe_bytes(bytes, AudioLimits::default(), &TranscribeOptions::default())
        .expect("native");
    assert_eq!(wasm_text, t.text);
    assert!(
        wasm_text
            .starts_with("And so my fellow Americans ask not what your country can do for you"),
        "{wasm_text}"
    );
}

#[test]
fn wasm_survives_every_bad_input() {
    let manifest = std::fs::read_to_string(data_dir().join("bad/manifest.tsv")).expect("manifest");
    let rows: Vec<(String, String)> = manifest
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect();
    let files: Vec<&str> = rows.iter().map(|(f, _)| f.as_str()).collect();
    let out = run_stt(&files, "bad");
    assert_eq!(out.exit_code, 1, "some inputs are rejected, none traps; stderr: {}", out.stderr);
    let results = lines(&out);
    assert_eq!(results.len(), rows.len());
    for ((file, expect), r) in rows.iter().zip(&results) {
        let error = r.get("error").and_then(|e| e.as_str());
        match expect.as_str() {
            "error" => assert!(error.is_some() && r["client_error"] == true, "{file}: {r}"),
            "jfk" => assert!(
                r["text"].as_str().is_some_and(|t| t.contains("fellow Americans")),
                "{file}: {r}"
            ),
            "empty" => assert_eq!(r["text"], "", "{file}: {r}"),
            _ => assert!(error.is_none() || r["client_error"] == true, "{file}: {r}"),
        }
    }
}
