//! The engine: a loaded model and tokenizer, and the one call that turns audio into text.

use std::path::Path;
use std::sync::Arc;

use crate::audio::{self, AudioLimits};
use crate::chunked::ChunkedTranscription;
use crate::decoding::TranscribeOptions;
use crate::error::EngineError;
use crate::model::{Config, Precision, Whisper};
use crate::tokenizer::WhisperTokenizer;
use crate::transcribe::{Segment, Transcript, transcribe};
use crate::vad::{self, Chunk, SpeechTimeline, Vad};

pub const MODEL_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

pub struct Engine {
    /// The model folder's name (`tiny.en`, `base`).
    pub name: String,
    pub model: Whisper,
    pub tokenizer: WhisperTokenizer,
    /// The voice activity detector `TranscribeOptions::vad` runs, when one is attached.
    vad: Option<Arc<Vad>>,
}

/// Reads a small file (config, tokenizer) whole.
fn read_file(path: &Path) -> Result<Vec<u8>, EngineError> {
    std::fs::read(path).map_err(|e| EngineError::ModelFiles {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn read_config(dir: &Path) -> Result<Config, EngineError> {
    let config = read_file(&dir.join(CONFIG_FILE))?;
    serde_json::from_slice(&config).map_err(|e| EngineError::Config(e.to_string()))
}

impl Engine {
    /// Loads `model.safetensors`, `config.json` and `tokenizer.json` from a model folder, in the
    /// default precision (int8).
    pub fn load_dir(dir: &Path) -> Result<Self, EngineError> {
        Self::load_dir_with(dir, Precision::default())
    }

    /// Whether the model in `dir` is multilingual, from its `config.json` alone (no weights read).
    pub fn dir_is_multilingual(dir: &Path) -> Result<bool, EngineError> {
        Ok(read_config(dir)?.is_multilingual())
    }

    /// The weights are read tensor by tensor, never whole (see `model::tensor_file`).
    pub fn load_dir_with(dir: &Path, precision: Precision) -> Result<Self, EngineError> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "whisper".into());
        let config = read_config(dir)?;
        let tokenizer = WhisperTokenizer::from_bytes(&read_file(&dir.join(TOKENIZER_FILE))?)?;
        let model = Whisper::from_file(&dir.join(MODEL_FILE), config, precision)?;
        Ok(Self { name, model, tokenizer, vad: None })
    }

    /// The languages the model transcribes (codes such as `en`, `de`): every language token of
    /// a multilingual model, only English for an English-only one.
    pub fn languages(&self) -> Vec<&str> {
        if !self.model.config.is_multilingual() {
            return vec!["en"];
        }
        self.tokenizer.special.languages.iter().map(|(c, _)| c.as_str()).collect()
    }

    /// Attaches the voice activity detector that requests with `TranscribeOptions::vad` use
    /// (one loaded model can serve every engine).
    pub fn with_vad(mut self, vad: Arc<Vad>) -> Self {
        self.vad = Some(vad);
        self
    }

    pub fn vad(&self) -> Option<&Arc<Vad>> {
        self.vad.as_ref()
    }

    /// Transcribes 16 kHz mono samples, freeing them as soon as the mel spectrogram is computed.
    pub fn transcribe_pcm(
        &self,
        pcm: Vec<f32>,
        options: &TranscribeOptions,
    ) -> Result<Transcript, EngineError> {
        self.run(pcm, options, &mut |_| {})
    }

    /// With `options.vad`, only the speech the detector finds is transcribed (joined, as
    /// faster-whisper's `vad_filter` does) and the segments are placed back in the recording's
    /// time; audio without speech gives an empty transcript without running Whisper.
    fn run(
        &self,
        pcm: Vec<f32>,
        options: &TranscribeOptions,
        on_segment: &mut dyn FnMut(&Segment),
    ) -> Result<Transcript, EngineError> {
        let Some(vad_options) = &options.vad else {
            return transcribe(&self.model, &self.tokenizer, pcm, options, on_segment);
        };
        let detector = self.vad.as_ref().ok_or(EngineError::NoVad)?;
        let duration = audio::seconds(pcm.len());
        let spans = detector.speech(&pcm, vad_options)?;
        let mut speech = pcm;
        vad::keep_only(&mut speech, &spans);
        let timeline = SpeechTimeline::new(&spans);
        let mut restored = |s: &Segment| {
            let mut s = s.clone();
            timeline.restore(&mut s);
            on_segment(&s);
        };
        let mut t = transcribe(&self.model, &self.tokenizer, speech, options, &mut restored)?;
        t.segments.iter_mut().for_each(|s| timeline.restore(s));
        t.duration = duration;
        Ok(t)
    }

    /// Audio cut at speech pauses into chunks of at most 30 s ([`Self::chunk`]: the whole
    /// recording, or with `options.vad` only its speech), each transcribed on its own and
    /// placed back in the recording. Unlike the sequential long-form loop no window ends early
    /// and loses what follows, and the chunks do not depend on each other: they are what a
    /// fan-out sends to other instances ([`Self::chunk`], [`Self::chunk_options`],
    /// [`Self::transcribe_chunk`] are its steps).
    pub fn transcribe_chunked(
        &self,
        pcm: Vec<f32>,
        options: &TranscribeOptions,
        on_segment: &mut dyn FnMut(&Segment),
    ) -> Result<Transcript, EngineError> {
        let mut job = self.chunk(&pcm, options)?;
        let o = self.chunk_options(&pcm, &job, options)?;
        let mut from = 0;
        while let Some((i, samples)) = self.next_chunk_with_sound(&pcm, &mut job, from)? {
            let t = self.transcribe_chunk(samples, &o)?;
            job.complete(i, t.segments, on_segment);
            from = i + 1;
        }
        Ok(job.finish(o.language.unwrap_or_else(|| "en".into()), options.task))
    }

    /// `pcm` cut into chunks to transcribe on their own (speech only with `options.vad`, all
    /// at once). The whole recording is cut chunk by chunk: the first here, each next one by
    /// [`Self::cut_next`], so that a chunk can be transcribed (elsewhere) while the next is cut.
    pub fn chunk(
        &self,
        pcm: &[f32],
        options: &TranscribeOptions,
    ) -> Result<ChunkedTranscription, EngineError> {
        let detector = self.vad.as_ref().ok_or(EngineError::NoVad)?;
        let duration = audio::seconds(pcm.len());
        if options.vad.is_some() {
            // Speech only: no chunk is silent, nothing is measured against the loudest frame.
            let chunks = detector.speech_chunks(pcm)?;
            return Ok(ChunkedTranscription::new(chunks, None, duration, 0.0));
        }
        let loudest = vad::loudest(pcm);
        let mut job = ChunkedTranscription::new(Vec::new(), Some(0), duration, loudest);
        self.cut_next(pcm, &mut job)?;
        Ok(job)
    }

    /// Cuts the next chunk of `job`, if the recording has more; whether it had.
    pub fn cut_next(
        &self,
        pcm: &[f32],
        job: &mut ChunkedTranscription,
    ) -> Result<bool, EngineError> {
        let Some(from) = job.rest_from() else { return Ok(false) };
        if from >= pcm.len() {
            job.extend(Vec::new(), None);
            return Ok(false);
        }
        let detector = self.vad.as_ref().ok_or(EngineError::NoVad)?;
        let first = job.chunks().iter().all(Chunk::is_silent);
        let chunk = detector.next_chunk(pcm, from, first, job.loudest())?;
        let end = chunk.end();
        job.extend(vec![chunk], (end < pcm.len()).then_some(end));
        Ok(true)
    }

    /// The first chunk of `job` from index `from` on that has sound, with its index and
    /// samples, cutting the next chunks when it needs them; `None` past the last chunk. Silent
    /// chunks are done already ([`ChunkedTranscription::new`]): nobody transcribes them.
    pub fn next_chunk_with_sound(
        &self,
        pcm: &[f32],
        job: &mut ChunkedTranscription,
        from: usize,
    ) -> Result<Option<(usize, Vec<f32>)>, EngineError> {
        let mut i = from;
        loop {
            while i >= job.chunks().len() && self.cut_next(pcm, job)? {}
            match job.chunks().get(i) {
                None => return Ok(None),
                Some(c) if c.is_silent() => i += 1,
                Some(c) => return Ok(Some((i, c.samples(pcm)))),
            }
        }
    }

    /// The options every chunk of `job` is transcribed with: no voice activity detection (the
    /// chunks are cut already) and one language, the request's or the one spoken at the start
    /// of the first chunk.
    pub fn chunk_options(
        &self,
        pcm: &[f32],
        job: &ChunkedTranscription,
        options: &TranscribeOptions,
    ) -> Result<TranscribeOptions, EngineError> {
        self.validate(&TranscribeOptions { vad: None, ..options.clone() })?;
        let language = match (&options.language, job.chunks().first()) {
            (Some(l), _) => Some(l.clone()),
            (None, Some(first)) => {
                Some(crate::transcribe::detect(&self.model, &self.tokenizer, &first.samples(pcm))?)
            }
            (None, None) => None,
        };
        Ok(TranscribeOptions { vad: None, language, ..options.clone() })
    }

    /// One chunk's transcript, timed within the chunk.
    pub fn transcribe_chunk(
        &self,
        samples: Vec<f32>,
        options: &TranscribeOptions,
    ) -> Result<Transcript, EngineError> {
        let o = TranscribeOptions { vad: None, ..options.clone() };
        transcribe(&self.model, &self.tokenizer, samples, &o, &mut |_| {})
    }

    /// Whether this model can run `options` (beam size, task, language): the errors
    /// [`Self::transcribe_pcm`] would give before any work.
    pub fn validate(&self, options: &TranscribeOptions) -> Result<(), EngineError> {
        if let Some(v) = &options.vad {
            v.validate().map_err(EngineError::InvalidOption)?;
            if self.vad.is_none() {
                return Err(EngineError::NoVad);
            }
        }
        crate::transcribe::validate(&self.model.config, &self.tokenizer, options).map(|_| ())
    }

    /// As [`Self::transcribe_pcm`], telling `on_segment` each segment as soon as it is decoded
    /// (in order; the transcript's segments are the same).
    pub fn transcribe_pcm_streaming(
        &self,
        pcm: Vec<f32>,
        options: &TranscribeOptions,
        on_segment: &mut dyn FnMut(&Segment),
    ) -> Result<Transcript, EngineError> {
        self.run(pcm, options, on_segment)
    }

    /// Decodes an uploaded file of any supported format and transcribes it.
    pub fn transcribe_bytes(
        &self,
        bytes: Vec<u8>,
        limits: AudioLimits,
        options: &TranscribeOptions,
    ) -> Result<Transcript, EngineError> {
        let pcm = audio::load(bytes, limits)?;
        self.transcribe_pcm(pcm.samples, options)
    }
}
