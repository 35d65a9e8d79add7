//! The interface between the model and the decoding strategies: a window is encoded once into
//! an [`Backend::Context`] (the encoder's output as every decoder layer attends to it: the
//! cross-attention keys and values), and any number of [`Backend::Sequence`]s (each one
//! hypothesis' self-attention cache, cloned when a beam forks) are advanced against it.

use std::cell::Cell;

use super::Config;
use crate::error::EngineError;

/// One sequence's state: the tokens it has been fed.
pub trait SequenceState: Clone {
    /// Tokens fed so far.
    fn len(&self) -> usize;
}

/// Cross-attention scores of chosen decoder heads, asked of [`Backend::cross_attention`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub layer: usize,
    pub head: usize,
}

/// Whisper in one precision.
pub trait Backend {
    /// One window's audio, as the decoder attends to it.
    type Context;
    type Sequence: SequenceState;

    fn config(&self) -> &Config;

    /// The encoder's output for one window of log-mel (`[n_mels][frames]` row-major), projected
    /// to every decoder layer's cross-attention keys and values. Called through [`Self::encode`].
    fn build_context(&self, mel: &[f32]) -> Result<Self::Context, EngineError>;

    /// A sequence with nothing fed.
    fn sequence(&self) -> Self::Sequence;

    /// Feeds `tokens`, split evenly among `seqs` in order (each sequence gets
    /// `tokens.len() / seqs.len()` after what it holds), and returns the logits (one
    /// vocabulary-sized row each) at `rows`, indices into `tokens`. The sequences may hold
    /// different lengths.
    fn forward(
        &self,
        ctx: &Self::Context,
        seqs: &mut [Self::Sequence],
        tokens: &[u32],
        rows: &[usize],
    ) -> Result<Vec<Vec<f32>>, EngineError>;

    /// The pre-softmax cross-attention scores (`q·k/√d_head`) of `heads` for each of `tokens`
    /// fed from the start to a new sequence: one `tokens × frames` row-major matrix per head.
    fn cross_attention(
        &self,
        ctx: &Self::Context,
        tokens: &[u32],
        heads: &[Head],
    ) -> Result<Vec<Vec<f32>>, EngineError>;

    /// Parameters, counted from the loaded tensors.
    fn parameter_count(&self) -> usize;

    /// Encodes one window: its audio context, counted (see [`contexts_built`]).
    fn encode(&self, mel: &[f32]) -> Result<Self::Context, EngineError> {
        let ctx = self.build_context(mel)?;
        CONTEXTS.with(|c| c.set(c.get() + 1));
        Ok(ctx)
    }

    /// [`Self::forward`] within the decoder's context (448 positions for every Whisper).
    fn decode(
        &self,
        ctx: &Self::Context,
        seqs: &mut [Self::Sequence],
        tokens: &[u32],
        rows: &[usize],
    ) -> Result<Vec<Vec<f32>>, EngineError> {
        let n_ctx = self.config().max_target_positions;
        let per = tokens.len() / seqs.len().max(1);
        if seqs.iter().any(|s| s.len() + per > n_ctx) {
            return Err(EngineError::ContextFull(n_ctx));
        }
        self.forward(ctx, seqs, tokens, rows)
    }
}

thread_local! {
    static CONTEXTS: Cell<usize> = const { Cell::new(0) };
}

/// Audio contexts built on this thread so far (counted by [`Backend::encode`]): the
/// evidence that a window's cross-attention keys and values are computed once, whatever the
/// decoding strategy does with them. Thread-local because the engine is single-threaded and
/// tests run side by side.
pub fn contexts_built() -> usize {
    CONTEXTS.with(Cell::get)
}
