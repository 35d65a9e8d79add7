//! Long-form transcription: 30 s windows, each starting where the previous one's last complete
//! timestamp ended (so no window cuts through a word), as the reference `transcribe()` does.

use serde::{Deserialize, Serialize};

use crate::decoding::timing::{self, Word};
use crate::decoding::{
    LogitFilters, TIME_PRECISION, Task, TranscribeOptions, Window, WindowPrompt, WindowResult,
    decode_with_fallback, detect_language, sot_sequence,
};
use crate::error::EngineError;
use crate::mel::{HOP_LENGTH, N_FRAMES, N_SAMPLES, log_mel_spectrogram};
use crate::model::{Backend, Whisper, WithBackend};
use crate::tokenizer::WhisperTokenizer;

/// Encoder frames per mel frame pair (3000 mel frames → 1500 positions).
const INPUT_STRIDE: usize = 2;
/// Below this peak amplitude (−80 dBFS) a window is digital silence: Whisper can only
/// hallucinate there, so it is skipped without running the model.
const SILENCE_PEAK: f32 = 1e-4;
/// Uncovered audio after a window's final timestamp worth a window of its own (2 s).
const TAIL_FRAMES: usize = 200;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Segment {
    pub id: usize,
    /// Mel frame at which the window that produced this segment started.
    pub seek: usize,
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub tokens: Vec<u32>,
    pub temperature: f32,
    pub avg_logprob: f32,
    pub compression_ratio: f32,
    pub no_speech_prob: f32,
    /// Word-level timings, when asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Word>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Transcript {
    pub text: String,
    pub language: String,
    pub task: Task,
    /// Seconds of audio.
    pub duration: f64,
    pub segments: Vec<Segment>,
}

impl Transcript {
    /// The transcript of `segments`: its text is theirs, joined.
    pub(crate) fn of_segments(
        segments: Vec<Segment>,
        language: String,
        task: Task,
        duration: f64,
    ) -> Self {
        let text = segments.iter().map(|s| s.text.as_str()).collect::<String>().trim().to_string();
        Self { text, language, task, duration, segments }
    }
}

/// Transcribes `pcm`, telling `on_segment` each segment as soon as its window is decoded.
pub fn transcribe(
    model: &Whisper,
    tok: &WhisperTokenizer,
    pcm: Vec<f32>,
    o: &TranscribeOptions,
    on_segment: &mut dyn FnMut(&Segment),
) -> Result<Transcript, EngineError> {
    model.with_backend(Transcription { tok, pcm, o, on_segment })
}

struct Transcription<'a> {
    tok: &'a WhisperTokenizer,
    pcm: Vec<f32>,
    o: &'a TranscribeOptions,
    on_segment: &'a mut dyn FnMut(&Segment),
}

impl WithBackend for Transcription<'_> {
    type Output = Result<Transcript, EngineError>;

    fn run<B: Backend>(self, model: &B) -> Self::Output {
        run(model, self.tok, self.pcm, self.o, self.on_segment)
    }
}

/// The spoken language of `pcm`'s first 30 s as the transcription loop detects it (from the
/// first window's audio context); English for a model that is not multilingual.
pub fn detect(model: &Whisper, tok: &WhisperTokenizer, pcm: &[f32]) -> Result<String, EngineError> {
    model.with_backend(Detection { tok, pcm })
}

struct Detection<'a> {
    tok: &'a WhisperTokenizer,
    pcm: &'a [f32],
}

impl WithBackend for Detection<'_> {
    type Output = Result<String, EngineError>;

    fn run<B: Backend>(self, model: &B) -> Self::Output {
        let config = model.config();
        if !config.is_multilingual() {
            return Ok("en".into());
        }
        let head = &self.pcm[..self.pcm.len().min(N_SAMPLES)];
        let mel = log_mel_spectrogram(head, config.num_mel_bins);
        let frames = mel.n_frames.saturating_sub(N_FRAMES).min(N_FRAMES);
        let ctx = model.encode(&mel.window(0, frames))?;
        detect_language(model, &ctx, self.tok).map(|(code, _)| code)
    }
}

fn check(o: &TranscribeOptions) -> Result<(), EngineError> {
    if !(1..=MAX_BEAMS).contains(&o.beam_size) {
        return Err(EngineError::InvalidOption(format!(
            "beam_size must be between 1 and {MAX_BEAMS}"
        )));
    }
    if !(o.patience.is_finite() && o.patience > 0.0) {
        return Err(EngineError::InvalidOption("patience must be a positive number".into()));
    }
    if o.length_penalty.is_some_and(|a| !(0.0..=1.0).contains(&a)) {
        return Err(EngineError::InvalidOption("length_penalty must be between 0 and 1".into()));
    }
    Ok(())
}

/// Checks options against the model before any audio is touched; the language's token, if
/// one is given.
pub(crate) fn validate(
    config: &crate::model::Config,
    tok: &WhisperTokenizer,
    o: &TranscribeOptions,
) -> Result<Option<u32>, EngineError> {
    check(o)?;
    let multilingual = config.is_multilingual();
    if o.task == Task::Translate && !multilingual {
        return Err(EngineError::NeedsMultilingual("translation"));
    }
    match (&o.language, multilingual) {
        (Some(code), true) => Ok(Some(
            tok.language_token(code).ok_or_else(|| EngineError::UnknownLanguage(code.clone()))?,
        )),
        (Some(code), false) if code != "en" => {
            Err(EngineError::NeedsMultilingual("a language other than English"))
        }
        _ => Ok(None),
    }
}

/// Most beams a request may ask for: each costs a sequence's step and its cache.
pub const MAX_BEAMS: usize = 16;

fn run<B: Backend>(
    model: &B,
    tok: &WhisperTokenizer,
    pcm: Vec<f32>,
    o: &TranscribeOptions,
    on_segment: &mut dyn FnMut(&Segment),
) -> Result<Transcript, EngineError> {
    let language_token = validate(model.config(), tok, o)?;
    let config = model.config();
    let multilingual = config.is_multilingual();
    let duration = crate::audio::seconds(pcm.len());
    let mel = log_mel_spectrogram(&pcm, config.num_mel_bins);
    // The loudest sample of each hop (mel frame), for the digital-silence check below: the
    // samples themselves (4 bytes per 1/16 000 s, 38 MB for ten minutes) are freed here
    // instead of staying in the instance's memory for the whole request. NaN counts as loud.
    let hop_peaks: Vec<f32> = pcm
        .chunks(HOP_LENGTH)
        .map(|c| {
            c.iter().fold(0f32, |m, s| m.max(if s.is_nan() { f32::INFINITY } else { s.abs() }))
        })
        .collect();
    drop(pcm);
    let content_frames = mel.n_frames.saturating_sub(N_FRAMES);
    let filters = LogitFilters::new(
        &tok.special,
        &config.suppress_tokens,
        &config.begin_suppress_tokens,
        !o.without_timestamps,
        o.max_initial_timestamp,
    );
    let mut rng = fastrand::Rng::with_seed(o.seed);

    let mut language = if multilingual { o.language.clone() } else { Some("en".to_string()) };
    let mut language_token = language_token;
    let mut all_tokens: Vec<u32> = match &o.initial_prompt {
        Some(p) if !p.trim().is_empty() => tok.encode(&format!(" {}", prompt_tail(p.trim())))?,
        _ => Vec::new(),
    };
    let mut prompt_reset_since = 0;
    let mut last_speech = 0.0;
    let mut segments: Vec<Segment> = Vec::new();
    let mut seek = 0usize;
    while seek < content_frames {
        let segment_size = N_FRAMES.min(content_frames - seek);
        let time_offset = (seek * HOP_LENGTH) as f64 / 16_000.0;
        let segment_duration = (segment_size * HOP_LENGTH) as f64 / 16_000.0;
        let hops =
            &hop_peaks[seek.min(hop_peaks.len())..(seek + segment_size).min(hop_peaks.len())];
        if hops.iter().all(|&p| p < SILENCE_PEAK) {
            seek += segment_size;
            continue;
        }
        // The window's audio context: its cross-attention keys and values, computed here once
        // for every strategy, temperature and candidate below.
        let ctx = model.encode(&mel.window(seek, segment_size))?;
        if language.is_none() {
            let (code, _) = detect_language(model, &ctx, tok)?;
            language_token = tok.language_token(&code);
            language = Some(code);
        }
        let previous =
            if o.condition_on_previous_text { &all_tokens[prompt_reset_since..] } else { &[][..] };
        let w = Window { model, ctx: &ctx, tok, filters: &filters };
        let start = w.prefill(&WindowPrompt {
            task: o.task,
            language_token,
            previous,
            without_timestamps: o.without_timestamps,
        })?;
        let r = decode_with_fallback(&w, &start, o, &mut rng)?;

        let skip = o.no_speech_threshold.is_some_and(|t| r.no_speech_prob > t)
            && !o.logprob_threshold.is_some_and(|t| r.avg_logprob > t);
        if skip {
            seek += segment_size;
            continue;
        }
        let window_end = time_offset + segment_duration;
        let Split { segments: mut current, mut advance, resumed_tail, single_timestamp_ending } =
            split_segments(
                tok,
                &r,
                seek,
                time_offset,
                segment_size,
                segment_duration,
                o.recover_trailing_speech,
            )?;
        if o.word_timestamps {
            let sot = sot_sequence(model, tok, o.task, language_token);
            let audio = timing::WindowAudio {
                model,
                ctx: &ctx,
                sot_sequence: &sot,
                num_frames: segment_size,
                time_offset,
                language: language.as_deref().unwrap_or("en"),
            };
            timing::add_word_timestamps(&audio, tok, &mut current, &mut last_speech)?;
            // The next window starts at the last word's end, as the reference's does.
            if !single_timestamp_ending {
                let last_word_end = current
                    .iter()
                    .rev()
                    .find_map(|s| s.words.last().map(|w| w.end))
                    .or_else(|| current.last().map(|s| s.end));
                if let Some(end) = last_word_end.filter(|&e| e > time_offset) {
                    advance = ((end * 100.0).round() as usize).saturating_sub(seek);
                }
            }
        }
        for s in &mut current {
            s.end = s.end.min(window_end).min(duration);
            s.start = s.start.min(s.end);
            // An instantaneous or textless segment is kept empty, as the reference does.
            if s.start == s.end || s.text.trim().is_empty() {
                s.text.clear();
                s.tokens.clear();
                s.words.clear();
            }
        }
        // A window always moves forward, whatever the timestamps said.
        seek += advance.clamp(1, segment_size);
        for s in current {
            all_tokens.extend_from_slice(&s.tokens);
            if !s.text.is_empty() {
                let s = Segment { id: segments.len(), ..s };
                on_segment(&s);
                segments.push(s);
            }
        }
        // A resumed tail is decoded without the text before it, which the model would
        // otherwise tend to repeat into the uncertain remainder.
        if !o.condition_on_previous_text || r.temperature > 0.5 || resumed_tail {
            prompt_reset_since = all_tokens.len();
        }
    }
    Ok(Transcript::of_segments(segments, language.unwrap_or_else(|| "en".into()), o.task, duration))
}

/// A window's segments and where the next window starts.
struct Split {
    segments: Vec<Segment>,
    /// Mel frames the next window skips.
    advance: usize,
    /// Whether the next window resumes an ended window's tail (see [`tail_resume`]).
    resumed_tail: bool,
    /// The tokens end with text and then one timestamp.
    single_timestamp_ending: bool,
}

/// Cuts a window's tokens at consecutive timestamp pairs into segments, and says how many mel
/// frames the next window should skip.
fn split_segments(
    tok: &WhisperTokenizer,
    r: &WindowResult,
    seek: usize,
    time_offset: f64,
    segment_size: usize,
    segment_duration: f64,
    recover_tail: bool,
) -> Result<Split, EngineError> {
    let tb = tok.special.timestamp_begin;
    let tokens = &r.tokens;
    let is_ts: Vec<bool> = tokens.iter().map(|&t| t >= tb).collect();
    let n = tokens.len();
    let single_timestamp_ending = n >= 2 && !is_ts[n - 2] && is_ts[n - 1];
    let mut slices: Vec<usize> = (1..n).filter(|&i| is_ts[i - 1] && is_ts[i]).collect();
    let make = |toks: &[u32], start: f64, end: f64| -> Result<Segment, EngineError> {
        Ok(Segment {
            id: 0,
            seek,
            start,
            end,
            text: tok.decode_text(toks)?,
            tokens: toks.to_vec(),
            temperature: r.temperature,
            avg_logprob: r.avg_logprob,
            compression_ratio: r.compression_ratio,
            no_speech_prob: r.no_speech_prob,
            words: Vec::new(),
        })
    };
    let done = |segments, advance, resumed_tail| Split {
        segments,
        advance,
        resumed_tail,
        single_timestamp_ending,
    };
    let ts_time = |t: u32| (t - tb) as f64 * TIME_PRECISION;
    let mut out = Vec::new();
    if !slices.is_empty() {
        if single_timestamp_ending {
            slices.push(n);
        }
        let mut last = 0;
        for &cur in &slices {
            let s = &tokens[last..cur];
            if let (Some(&a), Some(&b)) = (s.first(), s.last())
                && a >= tb
                && b >= tb
            {
                out.push(make(s, time_offset + ts_time(a), time_offset + ts_time(b))?);
            }
            last = cur;
        }
        if single_timestamp_ending {
            let end = ((tokens[n - 1] - tb) as usize) * INPUT_STRIDE;
            let tail = tail_resume(end, segment_size, recover_tail);
            Ok(done(out, tail.unwrap_or(segment_size), tail.is_some()))
        } else {
            Ok(done(out, ((tokens[last - 1] - tb) as usize) * INPUT_STRIDE, false))
        }
    } else {
        let mut duration = segment_duration;
        let mut tail = None;
        if let Some(&t) = tokens.iter().rev().find(|&&t| t >= tb)
            && t != tb
        {
            duration = ts_time(t);
            tail = tail_resume((t - tb) as usize * INPUT_STRIDE, segment_size, recover_tail);
        }
        out.push(make(tokens, time_offset, time_offset + duration)?);
        Ok(done(out, tail.unwrap_or(segment_size), tail.is_some()))
    }
}

/// Where to resume when a window ended (end of text) at frame `end`. The reference skips the
/// rest of the window; when over two seconds of audio follow, we resume at `end` instead,
/// because small models often end a window early and would silently drop the speech after it.
fn tail_resume(end: usize, segment_size: usize, recover_tail: bool) -> Option<usize> {
    (recover_tail && end > 0 && segment_size.saturating_sub(end) > TAIL_FRAMES).then_some(end)
}

/// Characters of a prompt kept for tokenizing: the decoder only ever sees its last 223 tokens,
/// which text of this length holds many times over (tokens average a few characters), so a
/// huge prompt costs no more than this.
const PROMPT_TAIL_CHARS: usize = 8 * 1024;

fn prompt_tail(prompt: &str) -> &str {
    match prompt.char_indices().rev().nth(PROMPT_TAIL_CHARS - 1) {
        Some((i, _)) => &prompt[i..],
        None => prompt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_end_of_a_huge_prompt_is_tokenized() {
        let huge = "é".repeat(3 * PROMPT_TAIL_CHARS);
        let tail = prompt_tail(&huge);
        assert_eq!(tail.chars().count(), PROMPT_TAIL_CHARS);
        assert_eq!(prompt_tail("short"), "short");
    }
}
