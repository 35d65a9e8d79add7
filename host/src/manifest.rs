//! The parts of a Spin `spin.toml` (manifest version 2) the host uses: the HTTP triggers' routes
//! and components, their sources, mounted files and variables, so that `spin up` and
//! `stt-host serve` run the same app.

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
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RawFile {
    source: String,
    destination: String,
}

/// One HTTP component and the route it serves, with paths resolved against the manifest's folder.
#[derive(Debug, Clone)]
pub struct HttpComponent {
    pub id: String,
    pub route: Route,
    pub source: PathBuf,
    /// Host folder → guest path, mounted read-only.
    pub files: Vec<(PathBuf, String)>,
    /// Component variables after template expansion with application variables.
    pub variables: BTreeMap<String, String>,
    /// Whether the component may send requests to its own app (`allowed_outbound_hosts`
    /// lists `http://self`); the host allows no other outgoing request.
    pub calls_self: bool,
}

/// A Spin route: an exact path, or a prefix when it ends in `/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Exact(String),
    Prefix(String),
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Route::Exact(p) => f.write_str(p),
            Route::Prefix(p) => write!(f, "{p}/..."),
        }
    }
}

impl Route {
    fn parse(route: &str) -> Self {
        match route.strip_suffix("/...") {
            Some(prefix) => Route::Prefix(prefix.trim_end_matches('/').to_string()),
            None => Route::Exact(route.to_string()),
        }
    }

    /// How specific the match of `path` is (longer wins, exact beats prefix), or `None`.
    fn score(&self, path: &str) -> Option<usize> {
        match self {
            Route::Exact(p) => (p == path).then_some(2 * p.len() + 1),
            Route::Prefix(p) => {
                let rest = path.strip_prefix(p.as_str())?;
                (rest.is_empty() || rest.starts_with('/')).then_some(2 * p.len())
            }
        }
    }
}

/// The HTTP components of a manifest.
#[derive(Debug, Clone)]
pub struct App {
    pub components: Vec<HttpComponent>,
}

impl App {
    /// Loads the manifest; application variables are overridden, as in Spin, by
    /// `SPIN_VARIABLE_<NAME>` environment variables.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|e| ManifestError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::parse(&text, path)
    }

    /// A manifest's text; `path` is where it was read from (paths in it are relative to its
    /// folder).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ManifestError> {
        let invalid =
            |message: String| ManifestError::Invalid { path: path.to_path_buf(), message };
        let raw: Raw = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if raw.trigger.http.is_empty() {
            return Err(invalid("no [[trigger.http]]".into()));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let app_vars: BTreeMap<String, String> = raw
            .variables
            .iter()
            .map(|(k, v)| {
                let env = std::env::var(format!("SPIN_VARIABLE_{}", k.to_uppercase())).ok();
                (k.clone(), env.or_else(|| v.default.clone()).unwrap_or_default())
            })
            .collect();
        let mut components = Vec::new();
        for trigger in &raw.trigger.http {
            let comp = raw
                .component
                .get(&trigger.component)
                .ok_or_else(|| invalid(format!("no component `{}`", trigger.component)))?;
            let variables = comp
                .variables
                .iter()
                .map(|(k, template)| Ok((k.clone(), expand(template, &app_vars).map_err(invalid)?)))
                .collect::<Result<_, ManifestError>>()?;
            components.push(HttpComponent {
                id: trigger.component.clone(),
                route: Route::parse(&trigger.route),
                source: base.join(&comp.source),
                files: comp
                    .files
                    .iter()
                    .map(|f| (base.join(&f.source), f.destination.clone()))
                    .collect(),
                variables,
                calls_self: comp.allowed_outbound_hosts.iter().any(|h| {
                    let h = h.trim().trim_end_matches('/');
                    h == stt_contract::fanout::ALLOWED_HOST || h == "http://self.alt"
                }),
            });
        }
        Ok(Self { components })
    }

    /// The index of the component whose route matches `path` most specifically.
    pub fn route(&self, path: &str) -> Option<usize> {
        self.components
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.route.score(path).map(|s| (s, i)))
            .max_by_key(|(s, _)| *s)
            .map(|(_, i)| i)
    }
}

/// Expands `{{ name }}` references to application variables.
fn expand(template: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end =
            rest[start..].find("}}").ok_or_else(|| format!("unclosed template in `{template}`"))?
                + start;
        let name = rest[start + 2..end].trim();
        out.push_str(vars.get(name).ok_or_else(|| format!("undefined variable `{name}`"))?);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_manifests_defaults_are_the_contracts() {
        // spin.toml cannot import the contract's constants: they are written there again, checked here.
        let app = App::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../spin.toml"))
            .expect("spin.toml");
        let v = &app.components[0].variables;
        use stt_contract::defaults;
        assert_eq!(v["models"], defaults::MODELS);
        let mounted: Vec<&str> = app.components[0].files.iter().map(|(_, g)| g.as_str()).collect();
        let wanted: Vec<String> = defaults::MODELS
            .split(',')
            .chain([defaults::VAD_MODEL])
            .map(|m| format!("{}/{m}", defaults::MODELS_MOUNT))
            .collect();
        assert_eq!(mounted, wanted, "only the served models' and the VAD's folders are mounted");
        assert_eq!(v["vad_filter"].parse::<bool>().ok(), Some(defaults::VAD_FILTER));
        assert_eq!(v["upload_limit_bytes"], defaults::UPLOAD_LIMIT_BYTES.to_string());
        assert_eq!(
            v["max_duration_seconds"].parse::<f64>().ok(),
            Some(defaults::MAX_DURATION_SECONDS)
        );
        assert_eq!(v["precision"], defaults::PRECISION);
        assert_eq!(
            v["chunk_above_seconds"].parse::<f64>().ok(),
            Some(defaults::CHUNK_ABOVE_SECONDS)
        );
        assert_eq!(v["fanout_width"].parse::<usize>().ok(), Some(defaults::FANOUT_WIDTH));
        assert!(app.components[0].calls_self, "the function may send its chunks to itself");
    }

    fn app(routes: &[&str]) -> App {
        let components = routes
            .iter()
            .map(|r| HttpComponent {
                id: r.to_string(),
                route: Route::parse(r),
                source: PathBuf::new(),
                files: vec![],
                variables: BTreeMap::new(),
                calls_self: false,
            })
            .collect();
        App { components }
    }

    #[test]
    fn routes_match_as_in_spin() {
        let a = app(&["/...", "/hog/...", "/hog/exact"]);
        assert_eq!(a.route("/transcribe"), Some(0));
        assert_eq!(a.route("/"), Some(0));
        assert_eq!(a.route("/hog/spin"), Some(1));
        assert_eq!(a.route("/hog"), Some(1));
        assert_eq!(a.route("/hogwash"), Some(0));
        assert_eq!(a.route("/hog/exact"), Some(2));
        assert_eq!(app(&["/api/..."]).route("/other"), None);
    }
}
