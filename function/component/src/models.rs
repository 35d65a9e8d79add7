//! The served models: each a folder under the models mount, loaded once into the snapshot or
//! read by the request that needs it, with where its weights came from.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stt_contract::{defaults, model_files};
use stt_engine::{Engine, EngineError, Precision, Vad};

/// `source.json` (written by `stt-models`): the pinned packages and the weights' digest.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Source {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub packages: Vec<Package>,
    pub weights: Weights,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Weights {
    pub file: String,
    pub sha256: String,
}

/// A loaded model.
pub struct Model {
    pub name: String,
    pub engine: Engine,
    pub source: Source,
}

impl Model {
    /// Loads `root/name` in `precision`, with its `source.json`, the voice activity detector
    /// attached when there is one.
    pub fn load(
        root: &Path,
        name: &str,
        precision: Precision,
        vad: Option<Arc<Vad>>,
    ) -> Result<Self, EngineError> {
        let dir = root.join(name);
        let path = dir.join(model_files::SOURCE);
        let files_error =
            |message: String| EngineError::ModelFiles { path: path.display().to_string(), message };
        let bytes = std::fs::read(&path).map_err(|e| files_error(e.to_string()))?;
        let source: Source =
            serde_json::from_slice(&bytes).map_err(|e| files_error(e.to_string()))?;
        let mut engine = Engine::load_dir_with(&dir, precision)?;
        if let Some(vad) = vad {
            engine = engine.with_vad(vad);
        }
        Ok(Self { name: name.to_string(), engine, source })
    }

    pub fn is_multilingual(&self) -> bool {
        self.engine.model.config.is_multilingual()
    }

    /// `sha256:<hex>` of the weights file.
    pub fn digest(&self) -> String {
        format!("sha256:{}", self.source.weights.sha256)
    }

    /// This model's entry in `GET /v1/models`.
    pub fn card(&self, preloaded: bool, default: bool) -> Value {
        let e = &self.engine;
        json!({
            "id": self.name,
            "object": "model",
            "owned_by": "stt-edge",
            "default": default,
            "aliases": if default { vec!["whisper-1"] } else { vec![] },
            "parameters": e.model.parameter_count(),
            "multilingual": self.is_multilingual(),
            "languages": e.languages(),
            "precision": e.model.precision.to_string(),
            "weights": if preloaded { "preloaded" } else { "loaded_per_request" },
            "weights_digest": self.digest(),
            "source": { "description": self.source.description, "packages": self.source.packages },
        })
    }
}

/// The models a function instance serves, in the configured order (the first is the default):
/// those preloaded into the snapshot, and the others read when a request first needs them.
pub struct Models {
    root: PathBuf,
    precision: Precision,
    entries: Vec<Entry>,
    /// The preloaded models' detector, or the one read from the folder for models read per
    /// request (`None` inside once tried and not found: `vad_filter` is then a 503).
    vad: Option<Option<Arc<Vad>>>,
}

/// Reads the voice activity detector from its folder under the models mount.
pub fn load_vad(root: &Path) -> Result<Vad, EngineError> {
    Vad::load_dir(&root.join(defaults::VAD_MODEL))
}

struct Entry {
    name: String,
    model: Option<Arc<Model>>,
    preloaded: bool,
}

/// Whether a request may go to an English-only model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Any,
    /// Translation, or a language other than English.
    Multilingual,
}

impl Models {
    /// `names` under `root`, using whichever of `preloaded` match by name and precision.
    pub fn new(
        root: PathBuf,
        names: &[String],
        precision: Precision,
        preloaded: &[Arc<Model>],
    ) -> Self {
        let entries = names
            .iter()
            .map(|name| {
                let model = preloaded
                    .iter()
                    .find(|m| &m.name == name && m.engine.model.precision == precision)
                    .cloned();
                Entry { name: name.clone(), preloaded: model.is_some(), model }
            })
            .collect();
        let vad = preloaded.iter().find_map(|m| m.engine.vad().cloned()).map(Some);
        Self { root, precision, entries, vad }
    }

    fn vad(&mut self) -> Option<Arc<Vad>> {
        let root = &self.root;
        self.vad.get_or_insert_with(|| load_vad(root).ok().map(Arc::new)).clone()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    pub fn default_name(&self) -> Option<&str> {
        self.names().next()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names().any(|n| n == name)
    }

    /// The model `name`, loaded now if it is not yet.
    pub fn get(&mut self, name: &str) -> Result<Arc<Model>, EngineError> {
        let Some(i) = self.entries.iter().position(|e| e.name == name) else {
            return Err(EngineError::ModelFiles {
                path: self.root.join(name).display().to_string(),
                message: "not a served model".into(),
            });
        };
        if let Some(m) = &self.entries[i].model {
            return Ok(m.clone());
        }
        let vad = self.vad();
        let m = Arc::new(Model::load(&self.root, name, self.precision, vad)?);
        self.entries[i].model = Some(m.clone());
        Ok(m)
    }

    pub fn is_preloaded(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e.name == name && e.preloaded)
    }

    /// The model a request that names none goes to: the default, unless it needs a multilingual
    /// model and the default is not; then the first multilingual one served. Models read per
    /// request are asked by their `config.json` alone.
    pub fn choose(&mut self, needs: Needs) -> Result<String, EngineError> {
        let names: Vec<String> = self.names().map(str::to_string).collect();
        let Some(default) = names.first() else {
            return Err(EngineError::ModelFiles {
                path: self.root.display().to_string(),
                message: "no model is configured".into(),
            });
        };
        if needs == Needs::Any {
            return Ok(default.clone());
        }
        for name in &names {
            let multilingual = match self.entries.iter().find(|e| &e.name == name) {
                Some(Entry { model: Some(m), .. }) => m.is_multilingual(),
                _ => Engine::dir_is_multilingual(&self.root.join(name))?,
            };
            if multilingual {
                return Ok(name.clone());
            }
        }
        // None can: the default answers with its own error (an English-only model's).
        Ok(default.clone())
    }
}
