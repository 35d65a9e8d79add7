//! The function component imports only interfaces that Spin 4 and wasmtime's wasi-http host
//! also provide, and exports the wasi:http incoming handler: both as built and as shipped
//! (pre-initialised by `stt-host snapshot`, which keeps the init export and adds nothing else).

use std::path::PathBuf;

use wasmtime::component::Component;

fn component(var: &str) -> (wasmtime::Engine, Component) {
    let wasm = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{var} (make test sets it)"));
    let engine = wasmtime::Engine::default();
    let cache = std::env::temp_dir().join("stt-component-world-cache");
    let c = stt_host::component_cache::load(&engine, &wasm, &cache).expect("compile the function");
    (engine, c)
}

fn check_world(var: &str) {
    let (engine, c) = component(var);
    let ty = c.component_type();
    let imports: Vec<String> = ty.imports(&engine).map(|(name, _)| name.to_string()).collect();
    eprintln!("{var} imports: {imports:#?}");
    let allowed = [
        "wasi:http/",
        "wasi:cli/",
        "wasi:filesystem/",
        "wasi:clocks/",
        "wasi:random/",
        "wasi:io/",
        "fermyon:spin/variables",
        "wasi:config/",
    ];
    for i in &imports {
        assert!(allowed.iter().any(|a| i.starts_with(a)), "unexpected import {i}");
    }
    assert!(imports.iter().any(|i| i.starts_with("wasi:http/types")), "{imports:?}");
    let exports: Vec<String> = ty.exports(&engine).map(|(name, _)| name.to_string()).collect();
    assert!(exports.iter().any(|e| e.starts_with("wasi:http/incoming-handler@0.2")), "{exports:?}");
    assert!(exports.iter().any(|e| e == stt_host::snapshot::INIT_FUNC), "{exports:?}");
    assert_eq!(exports.len(), 2, "{exports:?}");
}

#[test]
fn built_component_imports_standard_wasi_and_spin_variables_only() {
    check_world("STT_FUNCTION_RAW_WASM");
}

#[test]
fn snapshot_component_imports_standard_wasi_and_spin_variables_only() {
    check_world("STT_FUNCTION_WASM");
}

#[test]
fn snapshot_memory_is_mapped_copy_on_write_by_stock_wasmtime() {
    // Spin and SpinKube run wasmtime with its default settings: the shipped snapshot's initial
    // memory must be dense enough for them to map it instead of copying it per instance.
    let wasm = std::env::var_os("STT_FUNCTION_WASM")
        .map(PathBuf::from)
        .expect("STT_FUNCTION_WASM (make test sets it)");
    let images = stt_host::memory_image::memory_images(&std::fs::read(&wasm).expect("snapshot"))
        .expect("parse");
    let main = images.first().expect("the snapshot has an initial memory");
    // The model is in it (tiny.en int8 is tens of megabytes).
    assert!(main.data_bytes > 20 << 20, "{main:?}");
    for image in &images {
        assert!(image.mapped_by_default(), "{image:?} would be copied into every instance");
    }
}
