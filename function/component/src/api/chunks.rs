//! Long recordings: cut at pauses into chunks of at most 30 s ([`Engine::chunk`]), each chunk
//! transcribed by another instance through a request to the app itself (an ordinary OpenAI
//! request on the chunk's audio) or, when no request can be sent, here; the segments come back
//! in order, placed in the recording.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;
use stt_contract::fanout::ChunkCounts;
use stt_contract::routes;
use stt_engine::{ChunkedTranscription, Engine, Segment, Task, TranscribeOptions, Word};

use super::error::ApiError;
use super::params::Params;

/// A chunk's request, as the other instance receives it.
#[derive(Debug, Clone)]
pub struct ChunkRequest {
    pub path: &'static str,
    pub content_type: String,
    /// The parent's `Authorization` header: a chunk passes the same key check.
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

/// A chunk's answer.
#[derive(Debug, Clone)]
pub struct ChunkResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Builds the request for chunk `i`, or `None` past the last chunk.
pub type MakeRequest<'a> = dyn FnMut(usize) -> Result<Option<ChunkRequest>, ApiError> + 'a;
/// Takes chunk `i`'s answer (`None`: it could not be sent).
pub type TakeAnswer<'a> = dyn FnMut(usize, Option<ChunkResponse>) -> Result<(), ApiError> + 'a;

/// Sends requests to other instances of the app (Spin's outbound HTTP to itself).
pub trait Dispatch {
    /// Sends the requests `make` builds for 0, 1, … until it has no more (`None`), at most
    /// `width` in flight (the next is made as soon as there is room, so the first is on its way
    /// while the later ones are still being cut), and tells `done` each answer as it arrives:
    /// `None` when that request could not be sent at all (the app may not call itself, or the
    /// host has no room for another waiting parent), which the caller handles by transcribing
    /// the chunk itself. The first error from `make` or `done` stops the sending and is
    /// returned.
    fn send_all(
        &self,
        width: usize,
        make: &mut MakeRequest<'_>,
        done: &mut TakeAnswer<'_>,
    ) -> Result<(), ApiError>;
}

/// How a long recording is transcribed.
pub struct LongAudio<'a> {
    pub engine: &'a Engine,
    /// The model's name, which every chunk's request names.
    pub model: &'a str,
    /// The request's fields and options.
    pub fields: &'a Params,
    pub options: &'a TranscribeOptions,
    pub dispatch: Option<Rc<dyn Dispatch>>,
    pub width: usize,
    pub authorization: Option<String>,
}

/// A finished long transcription: the transcript and how its chunks were run.
pub struct Chunked {
    pub transcript: stt_engine::Transcript,
    pub counts: ChunkCounts,
}

impl LongAudio<'_> {
    /// Transcribes `pcm` chunk by chunk, telling `on_segment` each segment in order as soon as
    /// every chunk before it is done.
    /// `gone` says the stream's reader has left: the chunks still to come are not worth it.
    pub fn transcribe(
        &self,
        pcm: Vec<f32>,
        on_segment: &mut dyn FnMut(&Segment),
        gone: &dyn Fn() -> bool,
    ) -> Result<Chunked, ApiError> {
        let left =
            || ApiError::new(499, "the client closed the request").code("client_closed_request");
        let job = self.engine.chunk(&pcm, self.options)?;
        let options = self.engine.chunk_options(&pcm, &job, self.options)?;
        // `make` cuts each next chunk when it needs it; `done` records the answers: both use the
        // job, one at a time.
        let job = RefCell::new(job);
        let mut sent = 0;
        match &self.dispatch {
            Some(dispatch) => {
                let fields = self.fields.for_chunk(
                    self.model,
                    options.language.as_deref(),
                    options.word_timestamps,
                );
                let path = match options.task {
                    Task::Translate => routes::TRANSLATIONS,
                    Task::Transcribe => routes::TRANSCRIPTIONS,
                };
                // Request r is for chunk sent_chunk[r]: silent chunks are not sent.
                let sent_chunk = RefCell::new(Vec::new());
                let mut make = |_: usize| {
                    if gone() {
                        return Err(left());
                    }
                    let from = sent_chunk.borrow().last().map_or(0, |&c| c + 1);
                    let Some((i, samples)) = self.next(&job, &pcm, from)? else { return Ok(None) };
                    sent_chunk.borrow_mut().push(i);
                    let wav = stt_engine::audio::wav_f32(&samples)
                        .ok_or_else(|| ApiError::new(500, "a chunk is too long for a WAV file"))?;
                    let (content_type, body) =
                        stt_contract::multipart::form(&fields.fields(), Some(("chunk.wav", &wav)));
                    let authorization = self.authorization.clone();
                    Ok(Some(ChunkRequest { path, content_type, authorization, body }))
                };
                let mut done = |r: usize, answer: Option<ChunkResponse>| {
                    let i = sent_chunk.borrow().get(r).copied().ok_or_else(|| {
                        ApiError::new(500, "an answer came for a chunk that was not sent")
                    })?;
                    let segments = match answer {
                        Some(r) => {
                            sent += 1;
                            chunk_segments(&r).map_err(|e| chunk_error(e, i, &job.borrow()))?
                        }
                        None => {
                            let samples = job.borrow().chunks().get(i).map(|c| c.samples(&pcm));
                            let samples = samples.unwrap_or_default();
                            self.engine.transcribe_chunk(samples, &options)?.segments
                        }
                    };
                    job.borrow_mut().complete(i, segments, on_segment);
                    if gone() { Err(left()) } else { Ok(()) }
                };
                dispatch.send_all(self.width.max(1), &mut make, &mut done)?;
            }
            None => {
                let mut from = 0;
                while let Some((i, samples)) = self.next(&job, &pcm, from)? {
                    if gone() {
                        return Err(left());
                    }
                    let t = self.engine.transcribe_chunk(samples, &options)?;
                    job.borrow_mut().complete(i, t.segments, on_segment);
                    from = i + 1;
                }
            }
        }
        let job = job.into_inner();
        if !job.is_complete() {
            return Err(ApiError::new(500, "a chunk of the recording was never transcribed"));
        }
        let (chunks, silent) = (job.chunks().len(), job.silent());
        let language = options.language.unwrap_or_else(|| "en".into());
        let counts = ChunkCounts { chunks, sent, silent };
        Ok(Chunked { transcript: job.finish(language, options.task), counts })
    }

    /// The next chunk with sound from `from` on ([`Engine::next_chunk_with_sound`]).
    fn next(
        &self,
        job: &RefCell<ChunkedTranscription>,
        pcm: &[f32],
        from: usize,
    ) -> Result<Option<(usize, Vec<f32>)>, ApiError> {
        Ok(self.engine.next_chunk_with_sound(pcm, &mut job.borrow_mut(), from)?)
    }
}

/// A chunk's answer that is not a transcript: its status, and the message and code of the
/// error body it carries.
struct ChunkFailure {
    status: u16,
    message: String,
}

/// The parent's error for chunk `i`'s failure: the chunk's status (a client error there is the
/// parent's fault, so 500) and its message, with where the chunk is.
fn chunk_error(f: ChunkFailure, i: usize, job: &ChunkedTranscription) -> ApiError {
    let span = job.chunks().get(i).map(|c| c.span_seconds()).unwrap_or_default();
    let status = if (400..500).contains(&f.status) { 500 } else { f.status };
    ApiError::new(
        status,
        format!(
            "chunk {} of {} ({:.1}-{:.1} s) failed with {}: {}",
            i + 1,
            job.chunks().len(),
            span.0,
            span.1,
            f.status,
            f.message
        ),
    )
    .code("chunk_failed")
}

/// The segments of a chunk's verbose JSON answer, timed within the chunk, each with its words.
fn chunk_segments(r: &ChunkResponse) -> Result<Vec<Segment>, ChunkFailure> {
    #[derive(Deserialize)]
    struct Verbose {
        #[serde(default)]
        segments: Vec<Segment>,
        #[serde(default)]
        words: Vec<Word>,
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        error: ErrorFields,
    }
    #[derive(Deserialize)]
    struct ErrorFields {
        message: String,
        code: Option<String>,
    }
    if r.status != 200 {
        let message = match serde_json::from_slice::<ErrorBody>(&r.body) {
            Ok(b) => match b.error.code {
                Some(code) => format!("{code}: {}", b.error.message),
                None => b.error.message,
            },
            Err(_) => String::from_utf8_lossy(&r.body).chars().take(200).collect(),
        };
        return Err(ChunkFailure { status: r.status, message });
    }
    let v: Verbose = serde_json::from_slice(&r.body).map_err(|e| ChunkFailure {
        status: 502,
        message: format!("the chunk's answer is not a verbose JSON transcript: {e}"),
    })?;
    let mut segments = v.segments;
    // Verbose JSON lists the words apart from the segments: each goes back to the last segment
    // that starts at or before it (a segment with words spans them).
    for w in v.words {
        let at = segments.iter().rposition(|s| s.start <= w.start + 1e-6).unwrap_or(0);
        if let Some(s) = segments.get_mut(at) {
            s.words.push(w);
        }
    }
    Ok(segments)
}
