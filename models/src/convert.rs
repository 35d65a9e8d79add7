//! CTranslate2 Whisper → Hugging Face names in safetensors, plus a `config.json` that candle's
//! `whisper::Config` reads. Weights stay float16 on disk (an exact copy, half the size of f32);
//! the engine upcasts on load.

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::{Dtype as StDtype, TensorView};
use serde_json::{Value, json};
use thiserror::Error;

use crate::ct2::{Ct2Error, Ct2Model, Dtype, Variable};

#[derive(Debug, Error)]
pub enum ConvertError {
    #[error(transparent)]
    Format(#[from] Ct2Error),
    #[error("model.bin is a `{0}`, not a WhisperSpec")]
    NotWhisper(String),
    #[error("model.bin lacks `{0}`")]
    Missing(String),
    #[error("model.bin `{name}` has shape {shape:?}, expected {expected}")]
    BadShape { name: String, shape: Vec<usize>, expected: String },
    #[error("model.bin `{name}` is {dtype:?}; only float16/float32 weights are supported")]
    BadDtype { name: String, dtype: Dtype },
    #[error("model.bin setting `{name}` is {value}, this converter supports {supported}")]
    Unsupported { name: String, value: i64, supported: &'static str },
    #[error("model.bin `{0}`: the key part of a fused bias is not zero (HF k_proj has no bias)")]
    NonZeroKeyBias(String),
    #[error("config.json from the package is not valid JSON: {0}")]
    Ct2Config(serde_json::Error),
    #[error("writing safetensors: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
}

/// The dimensions read off the weights themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct Dims {
    pub n_mels: usize,
    pub d_model: usize,
    pub n_audio_ctx: usize,
    pub n_text_ctx: usize,
    pub n_vocab: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_heads: usize,
    pub decoder_heads: usize,
    pub ffn_dim: usize,
}

pub struct Converted {
    pub safetensors: Vec<u8>,
    pub config: Value,
    pub dims: Dims,
}

struct Out<'a> {
    tensors: BTreeMap<String, (Vec<usize>, StDtype, &'a [u8])>,
}

impl<'a> Out<'a> {
    fn put(&mut self, name: String, v: &Variable<'a>) {
        self.tensors.insert(name, (v.shape.clone(), st_dtype(v.dtype), v.data));
    }

    fn put_rows(&mut self, name: String, v: &Variable<'a>, part: usize, parts: usize) {
        let rows = v.shape[0] / parts;
        let row_bytes = v.data.len() / v.shape[0];
        let data = &v.data[part * rows * row_bytes..(part + 1) * rows * row_bytes];
        let mut shape = v.shape.clone();
        shape[0] = rows;
        self.tensors.insert(name, (shape, st_dtype(v.dtype), data));
    }
}

fn st_dtype(d: Dtype) -> StDtype {
    match d {
        Dtype::F32 => StDtype::F32,
        Dtype::F16 => StDtype::F16,
        Dtype::Bf16 => StDtype::BF16,
        Dtype::I8 => StDtype::I8,
        Dtype::I16 => StDtype::I16,
        Dtype::I32 => StDtype::I32,
    }
}

fn var<'m, 'a>(m: &'m Ct2Model<'a>, name: &str) -> Result<&'m Variable<'a>, ConvertError> {
    let v = m.get(name).ok_or_else(|| ConvertError::Missing(name.to_string()))?;
    if !v.shape.is_empty() && !matches!(v.dtype, Dtype::F16 | Dtype::F32) {
        return Err(ConvertError::BadDtype { name: name.to_string(), dtype: v.dtype });
    }
    Ok(v)
}

fn expect_shape(v: &Variable<'_>, expected: &[usize]) -> Result<(), ConvertError> {
    if v.shape != expected {
        return Err(ConvertError::BadShape {
            name: v.name.clone(),
            shape: v.shape.clone(),
            expected: format!("{expected:?}"),
        });
    }
    Ok(())
}

fn setting(m: &Ct2Model<'_>, name: &str) -> Result<i64, ConvertError> {
    m.setting(name).ok_or_else(|| ConvertError::Missing(name.to_string()))
}

fn require(
    m: &Ct2Model<'_>,
    name: &str,
    want: i64,
    supported: &'static str,
) -> Result<(), ConvertError> {
    match m.setting(name) {
        Some(v) if v != want => {
            Err(ConvertError::Unsupported { name: name.to_string(), value: v, supported })
        }
        _ => Ok(()),
    }
}

fn count_layers(m: &Ct2Model<'_>, prefix: &str) -> usize {
    (0..)
        .take_while(|i| m.get(&format!("{prefix}/layer_{i}/ffn/linear_0/weight")).is_some())
        .count()
}

fn layer_norm<'a>(
    m: &Ct2Model<'a>,
    out: &mut Out<'a>,
    from: &str,
    to: &str,
    d: usize,
) -> Result<(), ConvertError> {
    for (ct2, hf) in [("gamma", "weight"), ("beta", "bias")] {
        let v = var(m, &format!("{from}/{ct2}"))?;
        expect_shape(v, &[d])?;
        out.put(format!("{to}.{hf}"), v);
    }
    Ok(())
}

fn linear<'a>(
    m: &Ct2Model<'a>,
    out: &mut Out<'a>,
    from: &str,
    to: &str,
    shape: &[usize],
) -> Result<(), ConvertError> {
    let w = var(m, &format!("{from}/weight"))?;
    expect_shape(w, shape)?;
    out.put(format!("{to}.weight"), w);
    let b = var(m, &format!("{from}/bias"))?;
    expect_shape(b, &shape[..1])?;
    out.put(format!("{to}.bias"), b);
    Ok(())
}

/// Splits a fused projection into HF's separate ones. `names[i]` gets rows i·d..(i+1)·d;
/// the key projection's bias must be zero and is dropped, as HF's `k_proj` has none.
fn fused<'a>(
    m: &Ct2Model<'a>,
    out: &mut Out<'a>,
    from: &str,
    to: &str,
    names: &[&str],
    d: usize,
) -> Result<(), ConvertError> {
    let parts = names.len();
    let w = var(m, &format!("{from}/weight"))?;
    expect_shape(w, &[parts * d, d])?;
    let b = var(m, &format!("{from}/bias"))?;
    expect_shape(b, &[parts * d])?;
    for (i, name) in names.iter().enumerate() {
        out.put_rows(format!("{to}.{name}.weight"), w, i, parts);
        if *name == "k_proj" {
            let part = b.data.len() / parts;
            if b.data[i * part..(i + 1) * part].iter().any(|&x| x != 0 && x != 0x80) {
                return Err(ConvertError::NonZeroKeyBias(b.name.clone()));
            }
        } else {
            out.put_rows(format!("{to}.{name}.bias"), b, i, parts);
        }
    }
    Ok(())
}

fn ffn<'a>(
    m: &Ct2Model<'a>,
    out: &mut Out<'a>,
    from: &str,
    to: &str,
    d: usize,
    ffn: usize,
) -> Result<(), ConvertError> {
    layer_norm(m, out, &format!("{from}/ffn/layer_norm"), &format!("{to}.final_layer_norm"), d)?;
    linear(m, out, &format!("{from}/ffn/linear_0"), &format!("{to}.fc1"), &[ffn, d])?;
    linear(m, out, &format!("{from}/ffn/linear_1"), &format!("{to}.fc2"), &[d, ffn])
}

fn self_attention<'a>(
    m: &Ct2Model<'a>,
    out: &mut Out<'a>,
    from: &str,
    to: &str,
    d: usize,
) -> Result<(), ConvertError> {
    let sa = format!("{from}/self_attention");
    layer_norm(m, out, &format!("{sa}/layer_norm"), &format!("{to}.self_attn_layer_norm"), d)?;
    fused(
        m,
        out,
        &format!("{sa}/linear_0"),
        &format!("{to}.self_attn"),
        &["q_proj", "k_proj", "v_proj"],
        d,
    )?;
    linear(m, out, &format!("{sa}/linear_1"), &format!("{to}.self_attn.out_proj"), &[d, d])
}

/// Converts a parsed CTranslate2 Whisper model. `ct2_config` is the package's own
/// `config.json` (suppression lists, language ids, alignment heads), carried into ours.
pub fn convert(m: &Ct2Model<'_>, ct2_config: &[u8]) -> Result<Converted, ConvertError> {
    if m.spec != "WhisperSpec" {
        return Err(ConvertError::NotWhisper(m.spec.clone()));
    }
    // What our model implements: pre-norm blocks, exact GELU, no ALiBi, unscaled embeddings.
    require(m, "decoder/pre_norm", 1, "pre-norm only")?;
    require(m, "decoder/activation", 3, "GELU (erf) only")?;
    require(m, "decoder/alibi", 0, "no ALiBi")?;
    require(m, "decoder/scale_embeddings", 0, "unscaled embeddings")?;

    let emb = var(m, "decoder/embeddings/weight")?;
    let (n_vocab, d) = match emb.shape[..] {
        [v, d] => (v, d),
        _ => {
            return Err(ConvertError::BadShape {
                name: emb.name.clone(),
                shape: emb.shape.clone(),
                expected: "[vocab, d]".into(),
            });
        }
    };
    let conv1 = var(m, "encoder/conv1/weight")?;
    let n_mels = conv1.shape.get(1).copied().unwrap_or(0);
    expect_shape(conv1, &[d, n_mels, 3])?;
    let enc_pos = var(m, "encoder/position_encodings/encodings")?;
    let n_audio_ctx = enc_pos.shape.first().copied().unwrap_or(0);
    expect_shape(enc_pos, &[n_audio_ctx, d])?;
    let dec_pos = var(m, "decoder/position_encodings/encodings")?;
    let n_text_ctx = dec_pos.shape.first().copied().unwrap_or(0);
    expect_shape(dec_pos, &[n_text_ctx, d])?;
    let ffn_w = var(m, "encoder/layer_0/ffn/linear_0/weight")?;
    let ffn_dim = ffn_w.shape.first().copied().unwrap_or(0);
    let dims = Dims {
        n_mels,
        d_model: d,
        n_audio_ctx,
        n_text_ctx,
        n_vocab,
        encoder_layers: count_layers(m, "encoder"),
        decoder_layers: count_layers(m, "decoder"),
        encoder_heads: setting(m, "encoder/num_heads")? as usize,
        decoder_heads: setting(m, "decoder/num_heads")? as usize,
        ffn_dim,
    };
    for (name, heads) in
        [("encoder/num_heads", dims.encoder_heads), ("decoder/num_heads", dims.decoder_heads)]
    {
        if heads == 0 || d % heads != 0 {
            return Err(ConvertError::Unsupported {
                name: name.into(),
                value: heads as i64,
                supported: "a divisor of d_model",
            });
        }
    }

    let mut out = Out { tensors: BTreeMap::new() };
    let e = "model.encoder";
    linear(m, &mut out, "encoder/conv1", &format!("{e}.conv1"), &[d, n_mels, 3])?;
    linear(m, &mut out, "encoder/conv2", &format!("{e}.conv2"), &[d, d, 3])?;
    out.put(format!("{e}.embed_positions.weight"), enc_pos);
    for i in 0..dims.encoder_layers {
        let (from, to) = (format!("encoder/layer_{i}"), format!("{e}.layers.{i}"));
        self_attention(m, &mut out, &from, &to, d)?;
        ffn(m, &mut out, &from, &to, d, ffn_dim)?;
    }
    layer_norm(m, &mut out, "encoder/layer_norm", &format!("{e}.layer_norm"), d)?;

    let dd = "model.decoder";
    out.put(format!("{dd}.embed_tokens.weight"), emb);
    out.put(format!("{dd}.embed_positions.weight"), dec_pos);
    for i in 0..dims.decoder_layers {
        let (from, to) = (format!("decoder/layer_{i}"), format!("{dd}.layers.{i}"));
        self_attention(m, &mut out, &from, &to, d)?;
        let ca = format!("{from}/attention");
        layer_norm(
            m,
            &mut out,
            &format!("{ca}/layer_norm"),
            &format!("{to}.encoder_attn_layer_norm"),
            d,
        )?;
        linear(
            m,
            &mut out,
            &format!("{ca}/linear_0"),
            &format!("{to}.encoder_attn.q_proj"),
            &[d, d],
        )?;
        fused(
            m,
            &mut out,
            &format!("{ca}/linear_1"),
            &format!("{to}.encoder_attn"),
            &["k_proj", "v_proj"],
            d,
        )?;
        linear(
            m,
            &mut out,
            &format!("{ca}/linear_2"),
            &format!("{to}.encoder_attn.out_proj"),
            &[d, d],
        )?;
        ffn(m, &mut out, &from, &to, d, ffn_dim)?;
    }
    layer_norm(m, &mut out, "decoder/layer_norm", &format!("{dd}.layer_norm"), d)?;

    let views = out
        .tensors
        .iter()
        .map(|(name, (shape, dtype, data))| {
            Ok((name.clone(), TensorView::new(*dtype, shape.clone(), data)?))
        })
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let meta = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("converted_from".to_string(), format!("ctranslate2 {} revision {}", m.spec, m.revision)),
    ]);
    let safetensors = safetensors::serialize(views, Some(meta))?;
    let config = hf_config(&dims, ct2_config)?;
    Ok(Converted { safetensors, config, dims })
}

/// A Hugging Face Whisper `config.json`, with the package's generation settings carried over.
fn hf_config(dims: &Dims, ct2_config: &[u8]) -> Result<Value, ConvertError> {
    let ct2: Value = serde_json::from_slice(ct2_config).map_err(ConvertError::Ct2Config)?;
    let field = |k: &str| ct2.get(k).cloned().unwrap_or(Value::Array(vec![]));
    Ok(json!({
        "model_type": "whisper",
        "architectures": ["WhisperForConditionalGeneration"],
        "activation_function": "gelu",
        "num_mel_bins": dims.n_mels,
        "d_model": dims.d_model,
        "max_source_positions": dims.n_audio_ctx,
        "max_target_positions": dims.n_text_ctx,
        "vocab_size": dims.n_vocab,
        "encoder_layers": dims.encoder_layers,
        "decoder_layers": dims.decoder_layers,
        "encoder_attention_heads": dims.encoder_heads,
        "decoder_attention_heads": dims.decoder_heads,
        "encoder_ffn_dim": dims.ffn_dim,
        "decoder_ffn_dim": dims.ffn_dim,
        "tie_word_embeddings": true,
        "torch_dtype": "float16",
        "suppress_tokens": field("suppress_ids"),
        "begin_suppress_tokens": field("suppress_ids_begin"),
        "lang_ids": field("lang_ids"),
        "alignment_heads": field("alignment_heads"),
    }))
}
