//! Compiling a component once: machine code is cached on disk, keyed by the component's bytes
//! and by the engine's compatibility hash (wasmtime version and compilation settings).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use thiserror::Error;
use wasmtime::Engine;
use wasmtime::component::Component;

#[derive(Debug, Error)]
pub enum CacheError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("compiling {path}: {message}")]
    Compile { path: PathBuf, message: String },
}

/// Compilation settings wasmtime's compatibility hash leaves out but that change the artifact
/// (the memory-image density threshold of `server::engine`): bump when they change.
const SETTINGS_REVISION: &[u8] = b"dense-image-4GiB";

/// The cache key: sha256 of the component, of the engine's compatibility hash and of
/// [`SETTINGS_REVISION`].
pub fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut engine_hash);
    let mut h = Sha256::new();
    h.update(wasm);
    h.update(SETTINGS_REVISION);
    h.update(engine_hash.finish().to_le_bytes());
    h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Loads `wasm_path` as a component, from `cache_dir` when it was compiled before.
pub fn load(engine: &Engine, wasm_path: &Path, cache_dir: &Path) -> Result<Component, CacheError> {
    let wasm = std::fs::read(wasm_path)
        .map_err(|source| CacheError::Io { path: wasm_path.to_path_buf(), source })?;
    load_bytes(engine, &wasm, wasm_path, cache_dir)
}

/// [`load`] for a component already read from `wasm_path` (which names it in errors and logs).
pub fn load_bytes(
    engine: &Engine,
    wasm: &[u8],
    wasm_path: &Path,
    cache_dir: &Path,
) -> Result<Component, CacheError> {
    let cached = cache_dir.join(format!("{}.cwasm", cache_key(engine, wasm)));
    if cached.is_file() {
        // SAFETY: the file was written by `Component::serialize` below, for an engine with the
        // same compatibility hash (it is part of the name), into a cache only this program writes.
        if let Ok(c) = unsafe { Component::deserialize_file(engine, &cached) } {
            return Ok(c);
        }
    }
    let compile_err = |e: wasmtime::Error| CacheError::Compile {
        path: wasm_path.to_path_buf(),
        message: format!("{e:#}"),
    };
    let component = Component::new(engine, wasm).map_err(compile_err)?;
    let bytes = component.serialize().map_err(compile_err)?;
    // A cache that cannot be written (a read-only image whose precompiled code does not match
    // this CPU, say) costs a compile per start, not the start itself.
    match store(cache_dir, &cached, &bytes) {
        Err(e) => {
            tracing::warn!(component = %wasm_path.display(), error = %e, "compiled code not cached")
        }
        // Served from the file, as on every later start: a freshly compiled component keeps its
        // memory image in anonymous memory (all of it resident), a deserialised one maps the
        // file copy-on-write and only touched pages count.
        // SAFETY: as above; the file was just written from `component.serialize()`.
        Ok(()) => {
            if let Ok(c) = unsafe { Component::deserialize_file(engine, &cached) } {
                return Ok(c);
            }
        }
    }
    Ok(component)
}

fn store(cache_dir: &Path, cached: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CacheError::Io { path, source }
    };
    std::fs::create_dir_all(cache_dir).map_err(io(cache_dir))?;
    let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, cached).map_err(io(cached))
}
