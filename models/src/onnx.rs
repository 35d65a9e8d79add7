//! The float initializers of an ONNX model: the few protobuf fields of `onnx.proto` that hold
//! them, declared for prost (no code generation, so no `protoc` at build time). Fields not
//! declared here are skipped by the decoder.

use std::collections::BTreeMap;

use prost::Message;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum OnnxError {
    #[error("not an ONNX model: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("the model has no graph")]
    NoGraph,
    #[error("initializer `{0}` is not float32 stored in the file (data type {1})")]
    NotFloat(String, i32),
    #[error("initializer `{name}`: {len} values for shape {dims:?}")]
    Length { name: String, len: usize, dims: Vec<usize> },
}

#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
}

#[derive(Clone, PartialEq, Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorProto>,
}

#[derive(Clone, PartialEq, Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(float, repeated, tag = "4")]
    float_data: Vec<f32>,
    #[prost(string, tag = "8")]
    name: String,
    #[prost(bytes = "vec", tag = "9")]
    raw_data: Vec<u8>,
}

/// `TensorProto.DataType.FLOAT`.
const FLOAT: i32 = 1;

/// A float tensor: its shape and values.
#[derive(Debug, Clone, PartialEq)]
pub struct Initializer {
    pub dims: Vec<usize>,
    pub values: Vec<f32>,
}

/// The graph's initializers by name.
pub fn initializers(model: &[u8]) -> Result<BTreeMap<String, Initializer>, OnnxError> {
    let graph = ModelProto::decode(model)?.graph.ok_or(OnnxError::NoGraph)?;
    let mut out = BTreeMap::new();
    for t in graph.initializer {
        if t.data_type != FLOAT {
            return Err(OnnxError::NotFloat(t.name, t.data_type));
        }
        let dims: Vec<usize> = t.dims.iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect();
        let values = if t.raw_data.is_empty() {
            t.float_data
        } else {
            t.raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        };
        if values.len() != dims.iter().product::<usize>() || t.raw_data.len() % 4 != 0 {
            return Err(OnnxError::Length { name: t.name, len: values.len(), dims });
        }
        out.insert(t.name, Initializer { dims, values });
    }
    Ok(out)
}
