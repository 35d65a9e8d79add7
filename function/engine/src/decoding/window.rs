//! One 30 s window as every strategy sees it: its audio context, its prompt fed once, and what a
//! finished hypothesis reports.

use super::logit_filters::{LogitFilters, log_sum_exp};
use super::options::Task;
use crate::compression::compression_ratio;
use crate::error::EngineError;
use crate::model::{Backend, SequenceState};
use crate::tokenizer::WhisperTokenizer;

/// What does not change between the hypotheses of a window.
pub struct Window<'a, B: Backend> {
    pub model: &'a B,
    pub ctx: &'a B::Context,
    pub tok: &'a WhisperTokenizer,
    pub filters: &'a LogitFilters,
}

pub struct WindowPrompt<'a> {
    pub task: Task,
    pub language_token: Option<u32>,
    /// Earlier text, fed after `<|startofprev|>` to condition this window.
    pub previous: &'a [u32],
    pub without_timestamps: bool,
}

/// The window's prompt fed to a sequence: computed once per window, cloned by every
/// hypothesis (every temperature, candidate and beam starts from it).
pub struct Prefilled<S> {
    pub seq: S,
    /// Logits for the first sampled token.
    pub logits: Vec<f32>,
    pub no_speech_prob: f32,
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

/// The start-of-transcript sequence: `<|startoftranscript|>`, then language and task on
/// multilingual models.
pub fn sot_sequence<B: Backend>(
    model: &B,
    tok: &WhisperTokenizer,
    task: Task,
    language_token: Option<u32>,
) -> Vec<u32> {
    let s = &tok.special;
    let mut tokens = vec![s.sot];
    if model.config().is_multilingual() {
        tokens.push(language_token.unwrap_or(s.sot + 1));
        tokens.push(match task {
            Task::Transcribe => s.transcribe,
            Task::Translate => s.translate,
        });
    }
    tokens
}

impl<B: Backend> Window<'_, B> {
    /// Most tokens a hypothesis may sample (the reference's `sample_len`).
    pub fn sample_len(&self) -> usize {
        self.model.config().max_target_positions / 2
    }

    /// Whether a sequence has room for one more token.
    pub fn has_room(&self, seq: &B::Sequence) -> bool {
        seq.len() < self.model.config().max_target_positions
    }

    pub fn prefill(&self, p: &WindowPrompt<'_>) -> Result<Prefilled<B::Sequence>, EngineError> {
        let s = &self.tok.special;
        let mut tokens = Vec::new();
        if !p.previous.is_empty() {
            let keep = self.model.config().max_target_positions / 2 - 1;
            tokens.push(s.sot_prev);
            tokens.extend_from_slice(&p.previous[p.previous.len().saturating_sub(keep)..]);
        }
        let sot_index = tokens.len();
        tokens.extend(sot_sequence(self.model, self.tok, p.task, p.language_token));
        if p.without_timestamps {
            tokens.push(s.no_timestamps);
        }
        let mut seq = self.model.sequence();
        let mut rows = self.model.decode(
            self.ctx,
            std::slice::from_mut(&mut seq),
            &tokens,
            &[sot_index, tokens.len() - 1],
        )?;
        let logits = rows.pop().unwrap_or_default();
        let no_speech = rows.pop().unwrap_or_default();
        let no_speech_prob = no_speech
            .get(s.no_speech as usize)
            .map_or(0.0, |&l| (l - log_sum_exp(&no_speech)).exp());
        Ok(Prefilled { seq, logits, no_speech_prob })
    }

    /// The result of a finished hypothesis.
    pub fn finish(
        &self,
        tokens: Vec<u32>,
        sum_logprob: f32,
        no_speech_prob: f32,
        temperature: f32,
    ) -> Result<WindowResult, EngineError> {
        // The text only for the fallback's compression check: segments decode their own tokens.
        let text = self.tok.decode_text(&tokens)?;
        Ok(WindowResult {
            compression_ratio: compression_ratio(&text),
            avg_logprob: sum_logprob / (tokens.len() + 1) as f32,
            tokens,
            sum_logprob,
            no_speech_prob,
            temperature,
        })
    }
}
