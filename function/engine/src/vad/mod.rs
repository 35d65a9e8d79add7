//! Voice activity detection: Silero VAD (the `silero-vad` package's model, `network.rs`) gives
//! each 32 ms window a speech probability; `spans.rs` turns those into speech spans with the
//! package's rules; `timeline.rs` joins the spans and maps times in the joined speech back.
//! Transcribing only the speech keeps Whisper from inventing text on silence and noise.

mod network;
mod spans;
mod timeline;

use std::path::Path;

pub use spans::{SpeechSpan, VadOptions};
pub use timeline::{SpeechTimeline, cover, gather, groups, keep_only, loudest};

use crate::error::EngineError;
use crate::mel::HOP_LENGTH;
use crate::model::tensor_file::TensorFile;
use crate::transcribe::Segment;

/// The file a VAD model folder holds (`stt-models fetch silero-vad`).
pub const VAD_MODEL_FILE: &str = "model.safetensors";

pub struct Vad {
    network: network::Network,
}

impl Vad {
    pub fn load_dir(dir: &Path) -> Result<Self, EngineError> {
        let file = TensorFile::open(&dir.join(VAD_MODEL_FILE))?;
        Ok(Self { network: network::Network::load(&file)? })
    }

    /// The speech probability of each 512-sample window of 16 kHz `pcm`.
    pub fn probabilities(&self, pcm: &[f32]) -> Result<Vec<f32>, EngineError> {
        self.network.probabilities(pcm)
    }

    /// Where `pcm` holds speech.
    pub fn speech(
        &self,
        pcm: &[f32],
        options: &VadOptions,
    ) -> Result<Vec<SpeechSpan>, EngineError> {
        options.validate().map_err(EngineError::InvalidOption)?;
        Ok(spans::speech_spans(&self.probabilities(pcm)?, pcm.len(), options))
    }

    /// The speech of `pcm` in chunks of at most [`CHUNK_SECONDS`] to transcribe on their own,
    /// as faster-whisper's `BatchedInferencePipeline` makes them with `vad_filter`: speech
    /// spans (split at silences of 160 ms; speech longer than a chunk at its longest silence)
    /// joined while they fit, the rest dropped. A whole recording is cut one chunk at a time
    /// instead ([`Self::next_chunk`]), keeping what the detector misses.
    pub fn speech_chunks(&self, pcm: &[f32]) -> Result<Vec<Chunk>, EngineError> {
        let spans = self.speech(pcm, &VadOptions::for_chunks(CHUNK_SECONDS))?;
        Ok(groups(&spans, seconds_to_samples(CHUNK_SECONDS)).into_iter().map(Chunk::new).collect())
    }

    /// The chunk of `pcm` that starts at `from`, ending at the end of the recording or at a
    /// pause found by looking only a little past the chunk's limit (so that each chunk can be on
    /// its way before the rest is looked at). The `first` chunk with sound is at most
    /// [`FIRST_CHUNK_SECONDS`], so that its text comes back soon; the others at most
    /// [`CHUNK_SECONDS`]. Silence (no frame within [`SILENCE_BELOW_LOUDEST`] of `loudest`, the
    /// energy of the recording's loudest frame) of at least [`SILENCE_SPLIT_SECONDS`] before a
    /// chunk's first sound or after its last is cut off into a chunk of its own, marked silent:
    /// nobody transcribes it, where in a chunk with sound Whisper takes a window for it and may
    /// invent words there ("Thank you."). Sound, not speech: speech too quiet for the detector
    /// is still sound.
    pub fn next_chunk(
        &self,
        pcm: &[f32],
        from: usize,
        first: bool,
        loudest: f32,
    ) -> Result<Chunk, EngineError> {
        let silent = |end: usize| Chunk { silent: true, ..Chunk::whole(from, from + end) };
        let max = seconds_to_samples(if first { FIRST_CHUNK_SECONDS } else { CHUNK_SECONDS });
        let rest = pcm.len() - from;
        let window = &pcm[from..pcm.len().min(from + max + seconds_to_samples(LOOKAHEAD_SECONDS))];
        let (threshold, min_silence) =
            (loudest * SILENCE_BELOW_LOUDEST, seconds_to_samples(SILENCE_SPLIT_SECONDS));
        // Silence up to the first sound (all of the chunk when it has none).
        let limit = rest.min(max);
        match timeline::sound(&window[..limit], threshold) {
            None => return Ok(silent(limit)),
            Some((start, _)) if start >= min_silence => return Ok(silent(start)),
            Some(_) => {}
        }
        let cut = if rest <= max {
            rest
        } else {
            let spans = self.speech(window, &VadOptions::for_chunks(CHUNK_SECONDS))?;
            cover(&spans, window, max).first().map_or(max, |c| c.end).clamp(1, max)
        };
        // Silence from the last sound up to the cut.
        let end = match timeline::sound(&window[..cut], threshold) {
            Some((_, end)) if end + min_silence <= cut => end,
            _ => cut,
        };
        Ok(Chunk::whole(from, from + end))
    }
}

fn seconds_to_samples(s: f32) -> usize {
    (s * crate::audio::SAMPLE_RATE as f32) as usize
}

/// The longest first chunk of a recording cut to cover it (see [`Vad::next_chunk`]): short, so
/// that its transcript comes back soon; it costs a whole window like any chunk.
pub const FIRST_CHUNK_SECONDS: f32 = 10.0;
/// The shortest silence cut off from a chunk's speech into a chunk of its own
/// ([`Vad::next_chunk`]).
pub const SILENCE_SPLIT_SECONDS: f32 = 2.0;
/// How far past a chunk's limit the detector looks for its cut, so that a pause near the limit
/// is seen whole.
const LOOKAHEAD_SECONDS: f32 = 4.0;

/// Longest chunk of joined speech transcribed on its own: one Whisper window.
pub const CHUNK_SECONDS: f32 = 30.0;

/// How far below the recording's loudest frame a piece must stay throughout to count as
/// silent: 60 dB in energy. Whisper's log-mel spectrogram keeps 80 dB below the recording's
/// maximum, so what is quieter than this sits in the bottom of its range, where it makes no
/// words; speech that Silero misses for being quiet (fleurs_en_006, −59 dB mean against a loud
/// neighbour) is far above it.
pub const SILENCE_BELOW_LOUDEST: f32 = 1e-6;

/// A piece of a recording transcribed on its own: speech spans joined up to [`CHUNK_SECONDS`].
#[derive(Debug, Clone)]
pub struct Chunk {
    pub spans: Vec<SpeechSpan>,
    timeline: SpeechTimeline,
    silent: bool,
}

impl Chunk {
    fn new(spans: Vec<SpeechSpan>) -> Self {
        let timeline = SpeechTimeline::new(&spans);
        Self { spans, timeline, silent: false }
    }

    /// The recording's samples `start..end`, whole.
    pub fn whole(start: usize, end: usize) -> Self {
        Self::new(vec![SpeechSpan { start, end }])
    }

    /// Whether the chunk holds nothing to transcribe ([`Vad::next_chunk`]).
    pub fn is_silent(&self) -> bool {
        self.silent
    }

    /// Where the chunk ends in the recording: the end of its last span, samples.
    pub fn end(&self) -> usize {
        self.spans.last().map_or(0, |s| s.end)
    }

    /// Where the chunk is in the recording: the start of its first span and the end of its
    /// last, seconds.
    pub fn span_seconds(&self) -> (f64, f64) {
        let (first, last) = (self.spans.first(), self.spans.last());
        (
            first.map_or(0.0, |s| crate::audio::seconds(s.start)),
            last.map_or(0.0, |s| crate::audio::seconds(s.end)),
        )
    }

    /// The chunk's samples of the recording `pcm`.
    pub fn samples(&self, pcm: &[f32]) -> Vec<f32> {
        gather(pcm, &self.spans)
    }

    /// A segment of the chunk's transcript, placed in the recording; its `seek` becomes the
    /// chunk's first mel frame there.
    pub fn restore(&self, segment: &mut Segment) {
        self.timeline.restore(segment);
        segment.seek = self.spans.first().map_or(0, |s| s.start / HOP_LENGTH);
    }
}
