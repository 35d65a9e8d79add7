//! The function component imports only interfaces that Spin 4 and wasmtime's wasi-http host
//! also provide, and exports the wasi:http incoming handler.

use std::path::PathBuf;

use wasmtime::component::Component;

fn component() -> (wasmtime::Engine, Component) {
    let wasm = std::env::var_os("STT_FUNCTION_WASM").map(PathBuf::from).expect("STT_FUNCTION_WASM (make test sets it)");
    let engine = wasmtime::Engine::default();
    let cache = wasm.parent().map(|p| p.join("cwasm-cache")).unwrap_or_else(|| PathBuf::from("cwasm-cache"));
    let c = stt_host::component_cache::load(&engine, &wasm, &cache).expect("compile the function");
    (engine, c)
}

#[test]
fn imports_are_standard_wasi_and_spin_variables_only() {
    let (engine, c) = component();
    let ty = c.component_type();
    let imports: Vec<String> = ty.imports(&engine).map(|(name, _)| name.to_string()).collect();
    eprintln!("imports: {imports:#?}");
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
}
