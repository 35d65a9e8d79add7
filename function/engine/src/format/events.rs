//! OpenAI's streamed transcription (`stream=true`): Server-Sent Events, one
//! `transcript.text.delta` per segment as it is decoded, then `transcript.text.done`.

use serde_json::{Value, json};

use super::json::usage;
use crate::transcribe::Transcript;

pub use stt_contract::events::CONTENT_TYPE;

fn event(data: &Value) -> Vec<u8> {
    format!("data: {data}\n\n").into_bytes()
}

/// A piece of the text.
pub fn delta(text: &str) -> Vec<u8> {
    event(&json!({ "type": "transcript.text.delta", "delta": text }))
}

/// The whole text, and what it bills.
pub fn done(t: &Transcript) -> Vec<u8> {
    event(&json!({ "type": "transcript.text.done", "text": t.text, "usage": usage(t) }))
}

/// A failure after the stream started: an `error` event carrying the API's error body
/// (`{"error": {...}}`), which OpenAI's clients raise as an API error.
pub fn error(body: &Value) -> Vec<u8> {
    stt_contract::events::error(&body.to_string()).into_bytes()
}

/// Segment texts as deltas whose concatenation is the transcript's text (which is the
/// segments' texts joined and trimmed): leading whitespace is dropped until text has been sent.
#[derive(Debug, Default)]
pub struct Deltas {
    started: bool,
}

impl Deltas {
    pub fn next<'a>(&mut self, segment_text: &'a str) -> Option<&'a str> {
        let d = if self.started { segment_text } else { segment_text.trim_start() };
        self.started |= !d.is_empty();
        (!d.is_empty()).then_some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_join_to_the_trimmed_text() {
        let mut d = Deltas::default();
        let parts: Vec<&str> =
            ["  ", " And so", " my fellow"].iter().filter_map(|s| d.next(s)).collect();
        assert_eq!(parts.concat(), "And so my fellow");
        assert_eq!(
            delta("a\"b"),
            b"data: {\"delta\":\"a\\\"b\",\"type\":\"transcript.text.delta\"}\n\n"
        );
    }
}
