//! Response formats, one home for the API and the CLI: OpenAI's `json`, `text`, `srt`, `vtt`
//! and `verbose_json` (with `words` when word timestamps are asked for).

pub mod events;
mod json;
mod languages;
mod subtitles;

use std::fmt;
use std::str::FromStr;

pub use json::{json, verbose_json};
pub use languages::english_name;
pub use subtitles::{to_srt, to_text, to_vtt};

use crate::transcribe::Transcript;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseFormat {
    #[default]
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

impl ResponseFormat {
    pub const NAMES: &str = "json, text, srt, verbose_json, vtt";

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Text => "text",
            Self::Srt => "srt",
            Self::Vtt => "vtt",
            Self::VerboseJson => "verbose_json",
        }
    }
}

impl fmt::Display for ResponseFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResponseFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "json" => Self::Json,
            "text" => Self::Text,
            "srt" => Self::Srt,
            "vtt" => Self::Vtt,
            "verbose_json" => Self::VerboseJson,
            other => return Err(format!("`{other}` is not one of {}", Self::NAMES)),
        })
    }
}

/// Which timestamps `verbose_json` carries (OpenAI's `timestamp_granularities[]`): segments
/// unless only words are asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granularities {
    pub segment: bool,
    pub word: bool,
}

impl Default for Granularities {
    fn default() -> Self {
        Self { segment: true, word: false }
    }
}

/// A rendered response: its media type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

pub fn render(t: &Transcript, format: ResponseFormat, g: Granularities) -> Rendered {
    let (content_type, body) = match format {
        ResponseFormat::Json => ("application/json", json(t).to_string()),
        ResponseFormat::VerboseJson => ("application/json", verbose_json(t, g).to_string()),
        ResponseFormat::Text => ("text/plain; charset=utf-8", to_text(t)),
        ResponseFormat::Srt => ("application/x-subrip", to_srt(t)),
        ResponseFormat::Vtt => ("text/vtt; charset=utf-8", to_vtt(t)),
    };
    Rendered { content_type, body: body.into_bytes() }
}
