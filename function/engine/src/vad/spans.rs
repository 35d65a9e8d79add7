//! Speech probabilities → speech spans: the `silero-vad` package's `get_speech_timestamps`
//! (6.2.3), with faster-whisper's `VadOptions` as the defaults.

use serde::{Deserialize, Serialize};

use super::network::WINDOW;
use crate::audio::SAMPLE_RATE;

/// faster-whisper's `VadOptions`, with its defaults (those of `vad_filter=True`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VadOptions {
    /// Windows at or above this probability are speech.
    pub threshold: f32,
    /// Below this a window is silence; between the two it continues what came before.
    /// `None` is `max(threshold − 0.15, 0.01)`.
    pub neg_threshold: Option<f32>,
    /// Spans shorter than this are dropped.
    pub min_speech_duration_ms: u32,
    /// Spans longer than this are cut at their longest inner silence (over 98 ms), or where
    /// they reach it when there is none.
    pub max_speech_duration_s: f32,
    /// Silence shorter than this does not end a span.
    pub min_silence_duration_ms: u32,
    /// Audio kept on each side of a span.
    pub speech_pad_ms: u32,
}

impl Default for VadOptions {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            neg_threshold: None,
            min_speech_duration_ms: 0,
            max_speech_duration_s: f32::INFINITY,
            min_silence_duration_ms: 2000,
            speech_pad_ms: 400,
        }
    }
}

impl VadOptions {
    /// faster-whisper's `BatchedInferencePipeline` options: spans of at most `max_s` seconds,
    /// split at silences of 160 ms, for audio cut into independent chunks.
    pub fn for_chunks(max_s: f32) -> Self {
        Self { max_speech_duration_s: max_s, min_silence_duration_ms: 160, ..Self::default() }
    }

    pub fn validate(&self) -> Result<(), String> {
        let unit = |v: f32| (0.0..=1.0).contains(&v);
        if !unit(self.threshold) || self.neg_threshold.is_some_and(|n| !unit(n)) {
            return Err("VAD thresholds must lie between 0 and 1".into());
        }
        if self.max_speech_duration_s.is_nan() || self.max_speech_duration_s <= 0.0 {
            return Err("max_speech_duration_s must be positive".into());
        }
        Ok(())
    }
}

/// Speech from sample `start` to sample `end` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeechSpan {
    pub start: usize,
    pub end: usize,
}

impl SpeechSpan {
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

fn samples(ms: f64) -> f64 {
    SAMPLE_RATE as f64 * ms / 1000.0
}

/// The spans of speech in `len` samples whose windows have the probabilities `probs`.
pub fn speech_spans(probs: &[f32], len: usize, o: &VadOptions) -> Vec<SpeechSpan> {
    let window = WINDOW as f64;
    let threshold = o.threshold;
    let neg_threshold = o.neg_threshold.unwrap_or((threshold - 0.15).max(0.01));
    let min_speech = samples(o.min_speech_duration_ms as f64);
    let pad = samples(o.speech_pad_ms as f64);
    let max_speech = SAMPLE_RATE as f64 * o.max_speech_duration_s as f64 - window - 2.0 * pad;
    let min_silence = samples(o.min_silence_duration_ms as f64);
    let min_silence_at_max = samples(98.0);

    // The reference's `prev_end`/`next_start` only matter in its legacy cutting mode
    // (`use_max_poss_sil_at_max_speech=False`), which is not this one.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut current: Option<usize> = None;
    let mut temp_end = 0usize;
    let mut possible_ends: Vec<(usize, usize)> = Vec::new();

    for (i, &p) in probs.iter().enumerate() {
        let cur = WINDOW * i;
        if p >= threshold && temp_end != 0 {
            let silence = cur - temp_end;
            if silence as f64 > min_silence_at_max {
                possible_ends.push((temp_end, silence));
            }
            temp_end = 0;
        }
        let Some(start) = current else {
            if p >= threshold {
                current = Some(cur);
            }
            continue;
        };
        if (cur - start) as f64 > max_speech {
            // The reference picks the first of equally long silences (Python's `max`).
            let longest =
                possible_ends.iter().copied().reduce(|best, e| if e.1 > best.1 { e } else { best });
            if let Some((end, dur)) = longest {
                spans.push((start, end));
                let next = end + dur;
                // As the reference writes it: true whenever the longest silence ended before
                // now, i.e. the audio after it is speech still running.
                current = (next < end + cur).then_some(next);
            } else {
                spans.push((start, cur));
                current = None;
            }
            temp_end = 0;
            possible_ends.clear();
            if current.is_none() {
                continue;
            }
        }
        if p < neg_threshold {
            if temp_end == 0 {
                temp_end = cur;
            }
            if ((cur - temp_end) as f64) < min_silence {
                continue;
            }
            if let Some(start) = current.take()
                && (temp_end - start) as f64 > min_speech
            {
                spans.push((start, temp_end));
            }
            temp_end = 0;
            possible_ends.clear();
        }
    }
    if let Some(start) = current
        && len.saturating_sub(start) as f64 > min_speech
    {
        spans.push((start, len));
    }

    // Padding: a gap shorter than two pads is split between its neighbours.
    let pad_i = pad as usize;
    let n = spans.len();
    for i in 0..n {
        if i == 0 {
            spans[0].0 = spans[0].0.saturating_sub(pad_i);
        }
        if i + 1 < n {
            let gap = spans[i + 1].0.saturating_sub(spans[i].1);
            if (gap as f64) < 2.0 * pad {
                spans[i].1 += gap / 2;
                spans[i + 1].0 = spans[i + 1].0.saturating_sub(gap / 2);
            } else {
                spans[i].1 = len.min(spans[i].1 + pad_i);
                spans[i + 1].0 = spans[i + 1].0.saturating_sub(pad_i);
            }
        } else {
            spans[i].1 = len.min(spans[i].1 + pad_i);
        }
    }
    spans
        .into_iter()
        .map(|(start, end)| SpeechSpan { start, end: end.min(len) })
        .filter(|s| !s.is_empty())
        .collect()
}
