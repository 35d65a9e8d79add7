//! Where things are: the workspace, the real speech, the models, the built artifacts.

use std::path::{Path, PathBuf};

/// The repository's root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared/data` beside the clone, or `STT_DATA_DIR`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("STT_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/data"))
}

/// The folder holding `tiny.en/`, `base/`: `models/` or `STT_MODELS_DIR`.
pub fn models_dir() -> PathBuf {
    std::env::var_os("STT_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("models"))
}

pub fn model_dir(name: &str) -> PathBuf {
    models_dir().join(name)
}

/// The pre-initialised function `make component` writes (what spin.toml names).
pub fn snapshot_wasm() -> PathBuf {
    workspace().join("build/stt_function.wasm")
}

/// A wasm artifact named by an environment variable that `make test` sets.
pub fn wasm_from_env(var: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{var} (set by `make test`): a component built for wasm32-wasip2")
    });
    assert!(
        path.is_file(),
        "{}: run `make test` (or `make component test-components`)",
        path.display()
    );
    path
}

/// The Spin CLI: `SPIN_BIN`, else `../shared/tools/spin/spin` beside the clone.
pub fn spin_binary() -> PathBuf {
    std::env::var_os("SPIN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/tools/spin/spin"))
}

/// A file's bytes, or a panic that names it.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Rows of `data_dir()/dir/manifest.tsv` as maps from column name to value.
pub fn data_manifest(dir: &str) -> Vec<std::collections::HashMap<String, String>> {
    let path = data_dir().join(dir).join("manifest.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().map(|h| h.split('\t').collect()).unwrap_or_default();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header.iter().zip(l.split('\t')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
        })
        .collect()
}

/// A fresh directory under the system's temporary folder, unique to this process and `tag`.
pub fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "stt-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
    d
}
