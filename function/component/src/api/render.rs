//! Response bodies for each `response_format`.

use serde_json::json;
use stt_engine::{Transcript, format};

use super::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

impl ResponseFormat {
    pub fn parse(s: Option<&str>) -> Result<Self, ApiError> {
        Ok(match s.unwrap_or("json") {
            "json" => Self::Json,
            "text" => Self::Text,
            "srt" => Self::Srt,
            "vtt" => Self::Vtt,
            "verbose_json" => Self::VerboseJson,
            other => {
                return Err(ApiError::new(
                    400,
                    format!(
                        "response_format `{other}` is not one of json, text, srt, verbose_json, vtt"
                    ),
                )
                .param("response_format"));
            }
        })
    }
}

fn verbose(t: &Transcript) -> serde_json::Value {
    json!({
        "task": t.task.as_str(),
        "language": t.language,
        "duration": t.duration,
        "text": t.text,
        "segments": t.segments.iter().map(|s| json!({
            "id": s.id,
            "seek": s.seek,
            "start": s.start,
            "end": s.end,
            "text": s.text,
            "tokens": s.tokens,
            "temperature": s.temperature,
            "avg_logprob": s.avg_logprob,
            "compression_ratio": s.compression_ratio,
            "no_speech_prob": s.no_speech_prob,
        })).collect::<Vec<_>>(),
    })
}

/// `(content type, body)` of an OpenAI-style response.
pub fn render(t: &Transcript, f: ResponseFormat) -> (&'static str, Vec<u8>) {
    match f {
        ResponseFormat::Json => {
            ("application/json", json!({ "text": t.text }).to_string().into_bytes())
        }
        ResponseFormat::VerboseJson => ("application/json", verbose(t).to_string().into_bytes()),
        ResponseFormat::Text => ("text/plain; charset=utf-8", format::to_text(t).into_bytes()),
        ResponseFormat::Srt => ("application/x-subrip", format::to_srt(t).into_bytes()),
        ResponseFormat::Vtt => ("text/vtt; charset=utf-8", format::to_vtt(t).into_bytes()),
    }
}

/// The body of the guide's `/transcribe` endpoint in its default format.
pub fn transcribe_json(t: &Transcript) -> (&'static str, Vec<u8>) {
    let mut v = verbose(t);
    if let Some(o) = v.as_object_mut() {
        o.remove("task");
    }
    ("application/json", v.to_string().into_bytes())
}
