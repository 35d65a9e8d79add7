//! A `spin.toml` for a test or benchmark: components by route, each with its source, mounted
//! folders and variables; written to a temporary file that both hosts read.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::paths::temp_dir;

pub struct Component {
    id: String,
    route: String,
    source: PathBuf,
    files: Vec<(PathBuf, String)>,
    variables: Vec<(String, String)>,
    allowed_outbound_hosts: Vec<String>,
}

impl Component {
    /// `source` served on `route` (e.g. `/...`).
    pub fn new(id: &str, route: &str, source: &Path) -> Self {
        Self {
            id: id.into(),
            route: route.into(),
            source: absolute(source),
            files: Vec::new(),
            variables: Vec::new(),
            allowed_outbound_hosts: Vec::new(),
        }
    }

    /// The function: `source` on `/...` serving the default models, each folder of `models`
    /// (and the VAD's) mounted under `/models`, allowed to send requests to its own app, as the
    /// project's spin.toml serves it.
    pub fn function(source: &Path, models: &Path) -> Self {
        use stt_contract::defaults::{MODELS, MODELS_MOUNT, VAD_MODEL};
        let mut c = Self::new("stt", "/...", source)
            .variable("models", MODELS)
            .allow_outbound(stt_contract::fanout::ALLOWED_HOST);
        for name in MODELS.split(',').chain([VAD_MODEL]) {
            c = c.mount(&models.join(name), &format!("{MODELS_MOUNT}/{name}"));
        }
        c
    }

    pub fn mount(mut self, host: &Path, guest: &str) -> Self {
        self.files.push((absolute(host), guest.into()));
        self
    }

    /// Sets a component variable (a literal: `SPIN_VARIABLE_*` does not reach it), replacing an
    /// earlier value of the same name.
    pub fn variable(mut self, name: &str, value: &str) -> Self {
        self.variables.retain(|(k, _)| k != name);
        self.variables.push((name.into(), value.into()));
        self
    }

    /// An `allowed_outbound_hosts` entry.
    pub fn allow_outbound(mut self, host: &str) -> Self {
        self.allowed_outbound_hosts.push(host.into());
        self
    }

    /// No `allowed_outbound_hosts` at all.
    pub fn no_outbound(mut self) -> Self {
        self.allowed_outbound_hosts.clear();
        self
    }
}

fn absolute(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Writes a manifest serving `components` and returns its path.
pub fn write(name: &str, components: &[Component]) -> PathBuf {
    let mut text = format!("spin_manifest_version = 2\n[application]\nname = \"{name}\"\n");
    for c in components {
        let _ =
            write!(text, "[[trigger.http]]\nroute = \"{}\"\ncomponent = \"{}\"\n", c.route, c.id);
    }
    for c in components {
        let _ = writeln!(text, "[component.{}]\nsource = \"{}\"", c.id, c.source.display());
        if !c.files.is_empty() {
            let files: Vec<String> = c
                .files
                .iter()
                .map(|(h, g)| format!("{{ source = \"{}\", destination = \"{g}\" }}", h.display()))
                .collect();
            let _ = writeln!(text, "files = [{}]", files.join(", "));
        }
        if !c.allowed_outbound_hosts.is_empty() {
            let hosts: Vec<String> =
                c.allowed_outbound_hosts.iter().map(|h| format!("\"{h}\"")).collect();
            let _ = writeln!(text, "allowed_outbound_hosts = [{}]", hosts.join(", "));
        }
        if !c.variables.is_empty() {
            let _ = writeln!(text, "[component.{}.variables]", c.id);
            for (k, v) in &c.variables {
                let _ = writeln!(text, "{k} = \"{v}\"");
            }
        }
    }
    let path = temp_dir(name).join("spin.toml");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}
