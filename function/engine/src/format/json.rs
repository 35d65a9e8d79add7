//! OpenAI's JSON bodies.

use serde_json::{Value, json};

use super::Granularities;
use super::languages::english_name;
use crate::transcribe::Transcript;

/// What OpenAI's whisper-1 bills: the audio's duration in whole seconds, rounded up.
pub(crate) fn usage(t: &Transcript) -> Value {
    json!({ "type": "duration", "seconds": t.duration.max(0.0).ceil() as u64 })
}

pub fn json(t: &Transcript) -> Value {
    json!({ "text": t.text, "usage": usage(t) })
}

pub fn verbose_json(t: &Transcript, g: Granularities) -> Value {
    let mut v = json!({
        "task": t.task.as_str(),
        "language": english_name(&t.language),
        "duration": t.duration,
        "text": t.text,
    });
    if g.segment || !g.word {
        v["segments"] = t
            .segments
            .iter()
            .map(|s| {
                json!({
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
                })
            })
            .collect();
    }
    if g.word {
        // OpenAI's words carry no leading space.
        v["words"] = t
            .segments
            .iter()
            .flat_map(|s| &s.words)
            .map(|w| json!({ "word": w.word.trim(), "start": w.start, "end": w.end }))
            .collect();
    }
    v["usage"] = usage(t);
    v
}
