//! One 30 s window decoded at one temperature: greedy at 0, sampling above it.

use candle_core::Tensor;

use super::logit_filters::{LogitFilters, log_sum_exp};
use super::options::Task;
use crate::compression::compression_ratio;
use crate::error::EngineError;
use crate::model::Whisper;
use crate::tokenizer::WhisperTokenizer;

pub struct WindowOptions<'a> {
    pub task: Task,
    pub language_token: Option<u32>,
    pub temperature: f32,
    /// Earlier text, fed after `<|startofprev|>` to condition this window.
    pub prompt: &'a [u32],
    pub without_timestamps: bool,
}

#[derive(Debug, Clone)]
pub struct WindowResult {
    /// Sampled tokens, timestamps included, end of text excluded.
    pub tokens: Vec<u32>,
    pub sum_logprob: f32,
    pub avg_logprob: f32,
    pub no_speech_prob: f32,
    pub compression_ratio: f32,
    pub temperature: f32,
}

/// The prompt of a window: optional previous text, then the start-of-transcript sequence.
pub fn initial_tokens(
    model: &Whisper,
    tok: &WhisperTokenizer,
    o: &WindowOptions<'_>,
) -> (Vec<u32>, usize) {
    let s = &tok.special;
    let mut tokens = Vec::new();
    if !o.prompt.is_empty() {
        let keep = model.config.max_target_positions / 2 - 1;
        tokens.push(s.sot_prev);
        tokens.extend_from_slice(&o.prompt[o.prompt.len().saturating_sub(keep)..]);
    }
    let sot_index = tokens.len();
    tokens.push(s.sot);
    if model.config.is_multilingual() {
        tokens.push(o.language_token.unwrap_or(s.sot + 1));
        tokens.push(match o.task {
            Task::Transcribe => s.transcribe,
            Task::Translate => s.translate,
        });
    }
    if o.without_timestamps {
        tokens.push(s.no_timestamps);
    }
    (tokens, sot_index)
}

fn softmax_at(logits: &[f32], i: usize) -> f32 {
    (logits[i] - log_sum_exp(logits)).exp()
}

fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best as u32
}

fn sample(logits: &[f32], temperature: f32, rng: &mut fastrand::Rng) -> u32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f32> = logits.iter().map(|&l| ((l - max) / temperature).exp()).collect();
    let total: f32 = weights.iter().sum();
    let mut r = rng.f32() * total;
    for (i, &w) in weights.iter().enumerate() {
        if r < w {
            return i as u32;
        }
        r -= w;
    }
    argmax(logits)
}

/// Decodes one window. `features` are the encoder's output for it.
pub fn decode_window(
    model: &Whisper,
    tok: &WhisperTokenizer,
    filters: &LogitFilters,
    features: &Tensor,
    o: &WindowOptions<'_>,
    rng: &mut fastrand::Rng,
) -> Result<WindowResult, EngineError> {
    let eot = tok.special.eot;
    let (prompt, sot_index) = initial_tokens(model, tok, o);
    let n_ctx = model.config.max_target_positions;
    let sample_len = n_ctx / 2;
    let mut state = model.start(features)?;
    let mut rows = model.decode(&mut state, &prompt, &[sot_index, prompt.len() - 1])?;
    let no_speech_logits = rows.remove(0);
    let no_speech_prob = softmax_at(&no_speech_logits, tok.special.no_speech as usize);
    let mut logits = rows.remove(0);

    let mut sampled: Vec<u32> = Vec::new();
    let mut sum_logprob = 0f32;
    for _ in 0..sample_len {
        filters.apply(&mut logits, &sampled);
        let next = if o.temperature == 0.0 {
            argmax(&logits)
        } else {
            sample(&logits, o.temperature, rng)
        };
        let logprob = logits[next as usize] - log_sum_exp(&logits);
        sum_logprob += logprob;
        if next == eot {
            break;
        }
        sampled.push(next);
        if state.len() + 1 > n_ctx {
            break;
        }
        logits = model.decode(&mut state, &[next], &[0])?.remove(0);
    }
    // The text only for the fallback's compression check: segments decode their own tokens.
    let text = tok.decode_text(&sampled)?;
    let avg_logprob = sum_logprob / (sampled.len() + 1) as f32;
    Ok(WindowResult {
        compression_ratio: compression_ratio(&text),
        tokens: sampled,
        sum_logprob,
        avg_logprob,
        no_speech_prob,
        temperature: o.temperature,
    })
}
