//! The parts of a Spin `spin.toml` (manifest version 2) the host uses: one HTTP component, its
//! source, mounted files and variables, so that `spin up` and `stt-host serve` run the same app.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ManifestError {
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
struct Raw {
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    trigger: RawTriggers,
    component: BTreeMap<String, RawComponent>,
}

#[derive(Debug, Deserialize)]
struct RawVariable {
    default: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawTriggers {
    http: Vec<RawHttpTrigger>,
}

#[derive(Debug, Deserialize)]
struct RawHttpTrigger {
    route: String,
    component: String,
}

#[derive(Debug, Deserialize)]
struct RawComponent {
    source: String,
    #[serde(default)]
    files: Vec<RawFile>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct RawFile {
    source: String,
    destination: String,
}

/// The HTTP component the manifest routes to, with paths resolved against the manifest's folder.
#[derive(Debug, Clone)]
pub struct App {
    pub route: String,
    pub source: PathBuf,
    /// Host folder → guest path, mounted read-only.
    pub files: Vec<(PathBuf, String)>,
    /// Component variables after template expansion with application variables.
    pub variables: BTreeMap<String, String>,
}

impl App {
    /// Loads the manifest; application variables are overridden, as in Spin, by
    /// `SPIN_VARIABLE_<NAME>` environment variables.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let invalid = |message: String| ManifestError::Invalid { path: path.to_path_buf(), message };
        let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
        let raw: Raw = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let trigger = raw.trigger.http.first().ok_or_else(|| invalid("no [[trigger.http]]".into()))?;
        let comp = raw
            .component
            .get(&trigger.component)
            .ok_or_else(|| invalid(format!("no component `{}`", trigger.component)))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let app_vars: BTreeMap<String, String> = raw
            .variables
            .iter()
            .map(|(k, v)| {
                let env = std::env::var(format!("SPIN_VARIABLE_{}", k.to_uppercase())).ok();
                (k.clone(), env.or_else(|| v.default.clone()).unwrap_or_default())
            })
            .collect();
        let variables = comp
            .variables
            .iter()
            .map(|(k, template)| Ok((k.clone(), expand(template, &app_vars).map_err(invalid)?)))
            .collect::<Result<_, ManifestError>>()?;
        Ok(Self {
            route: trigger.route.clone(),
            source: base.join(&comp.source),
            files: comp.files.iter().map(|f| (base.join(&f.source), f.destination.clone())).collect(),
            variables,
        })
    }
}

/// Expands `{{ name }}` references to application variables.
fn expand(template: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").ok_or_else(|| format!("unclosed template in `{template}`"))? + start;
        let name = rest[start + 2..end].trim();
        out.push_str(vars.get(name).ok_or_else(|| format!("undefined variable `{name}`"))?);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}
