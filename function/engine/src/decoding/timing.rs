//! Word-level timestamps, after the reference's `timing.py` as faster-whisper runs it: the
//! window's text is fed again after the start-of-transcript sequence; the cross-attention
//! scores of the model's alignment heads are turned into probabilities over the window's
//! frames, standardised over tokens, median-filtered over time and averaged over heads; dynamic
//! time warping then pairs tokens with frames. Tokens are grouped into words (at spaces, or at
//! characters for languages written without them), punctuation is merged into its word, and
//! the reference's corrections for over-long words at pauses and sentence ends are applied.

use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::kernels::vmath::softmax;
use crate::model::Backend;
use crate::tokenizer::WhisperTokenizer;
use crate::transcribe::Segment;

/// Punctuation joined to the word after it (the reference's default).
pub const PREPEND_PUNCTUATIONS: &str = "\"'“¿([{-";
/// Punctuation joined to the word before it.
pub const APPEND_PUNCTUATIONS: &str = "\"'.。,，!！?？:：”)]}、";
/// Python's `string.punctuation`.
const ASCII_PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
const SENTENCE_END_MARKS: &str = ".。!！?？";
/// Encoder positions per second.
const TOKENS_PER_SECOND: f64 = 50.0;
const MEDIAN_FILTER_WIDTH: usize = 7;
/// Languages written without spaces between words.
const UNSPACED: [&str; 6] = ["zh", "ja", "th", "lo", "my", "yue"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Word {
    /// As decoded, with its leading space.
    pub word: String,
    pub start: f64,
    pub end: f64,
}

/// A word, its tokens, and its times within the window.
#[derive(Debug, Clone)]
struct Timing {
    word: String,
    tokens: Vec<u32>,
    start: f64,
    end: f64,
}

/// Python's `a in b` for strings: whether `a` is a substring of `b` (so `""` is in everything,
/// as in the reference).
fn is_in(a: &str, b: &str) -> bool {
    b.contains(a)
}

/// Splits where the tokens' bytes form whole characters.
fn split_on_unicode(tok: &WhisperTokenizer, tokens: &[u32]) -> Vec<(String, Vec<u32>)> {
    let mut out = Vec::new();
    let (mut bytes, mut current) = (Vec::new(), Vec::new());
    for &t in tokens {
        current.push(t);
        bytes.extend(tok.token_bytes(t));
        match std::str::from_utf8(&bytes) {
            Ok(s) => out.push((s.to_string(), std::mem::take(&mut current))),
            // Bytes that no continuation can make valid: kept as they decode.
            Err(e) if e.error_len().is_some() => out
                .push((String::from_utf8_lossy(&bytes).into_owned(), std::mem::take(&mut current))),
            Err(_) => continue,
        }
        bytes.clear();
    }
    if !current.is_empty() {
        out.push((String::from_utf8_lossy(&bytes).into_owned(), current));
    }
    out
}

/// Words and their tokens, as the reference's `split_to_word_tokens`.
fn split_to_word_tokens(
    tok: &WhisperTokenizer,
    tokens: &[u32],
    language: &str,
) -> Vec<(String, Vec<u32>)> {
    let subwords = split_on_unicode(tok, tokens);
    if UNSPACED.contains(&language) {
        return subwords;
    }
    let mut words: Vec<(String, Vec<u32>)> = Vec::new();
    for (subword, subword_tokens) in subwords {
        let special = subword_tokens.first().is_some_and(|&t| t >= tok.special.eot);
        let with_space = subword.starts_with(' ');
        let punctuation = is_in(subword.trim(), ASCII_PUNCTUATION);
        match words.last_mut() {
            Some(last) if !(special || with_space || punctuation) => {
                last.0.push_str(&subword);
                last.1.extend(subword_tokens);
            }
            _ => words.push((subword, subword_tokens)),
        }
    }
    words
}

/// Median of a window of `width` around each position of `row`, reflecting at the edges (as
/// CTranslate2's and the reference's filters do).
fn median_filter(row: &[f32], width: usize) -> Vec<f32> {
    let n = row.len();
    let rank = width / 2;
    if n <= rank {
        return row.to_vec();
    }
    let mut window = vec![0.0; width];
    (0..n)
        .map(|j| {
            for (k, slot) in window.iter_mut().enumerate() {
                let mut read = (j + k).abs_diff(rank);
                if read >= n {
                    read = (2 * n).saturating_sub(read + 2);
                }
                *slot = row[read.min(n - 1)];
            }
            window.select_nth_unstable_by(rank, f32::total_cmp);
            window[rank]
        })
        .collect()
}

/// Dynamic time warping of `-x` (`n × m`): the path of `(row, column)` pairs from `(0, 0)` to
/// `(n−1, m−1)` that maximises the summed `x`, ties broken as the reference breaks them.
fn negative_dtw(x: &[f32], n: usize, m: usize) -> Vec<(usize, usize)> {
    let w = m + 1;
    let mut cost = vec![f32::INFINITY; (n + 1) * w];
    let mut trace = vec![-1i8; (n + 1) * w];
    cost[0] = 0.0;
    for j in 1..=m {
        for i in 1..=n {
            let (c0, c1, c2) =
                (cost[(i - 1) * w + j - 1], cost[(i - 1) * w + j], cost[i * w + j - 1]);
            let (c, t) = if c0 < c1 && c0 < c2 {
                (c0, 0)
            } else if c1 < c0 && c1 < c2 {
                (c1, 1)
            } else {
                (c2, 2)
            };
            cost[i * w + j] = -x[(i - 1) * m + (j - 1)] + c;
            trace[i * w + j] = t;
        }
    }
    (0..=m).for_each(|k| trace[k] = 2);
    (0..=n).for_each(|k| trace[k * w] = 1);
    let (mut i, mut j) = (n, m);
    let mut path = Vec::with_capacity(n + m);
    while i > 0 || j > 0 {
        path.push((i.wrapping_sub(1), j.wrapping_sub(1)));
        match trace[i * w + j] {
            0 => (i, j) = (i - 1, j - 1),
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    path.reverse();
    path
}

/// The timing of each word of `text` (a window's text tokens) within the window.
fn find_alignment<B: Backend>(
    model: &B,
    ctx: &B::Context,
    tok: &WhisperTokenizer,
    sot_sequence: &[u32],
    text: &[u32],
    num_frames: usize,
    language: &str,
) -> Result<Vec<Timing>, EngineError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let eot = tok.special.eot;
    let mut tokens = sot_sequence.to_vec();
    tokens.push(tok.special.no_timestamps);
    tokens.extend_from_slice(text);
    tokens.push(eot);
    let heads = model.config().alignment_heads();
    let scores = model.cross_attention(ctx, &tokens, &heads)?;
    let t = tokens.len();
    let total_frames = scores.first().map_or(0, |s| s.len() / t);
    let frames = (num_frames / 2).min(total_frames);
    if frames == 0 || heads.is_empty() {
        return Ok(Vec::new());
    }
    // Per head: probabilities over the window's frames, standardised over tokens per frame,
    // median-filtered over time; then the mean over heads.
    let mut matrix = vec![0f32; t * frames];
    for s in &scores {
        let mut w: Vec<f32> =
            (0..t).flat_map(|r| s[r * total_frames..r * total_frames + frames].to_vec()).collect();
        w.chunks_mut(frames).for_each(softmax);
        for f in 0..frames {
            let mean = (0..t).map(|r| w[r * frames + f]).sum::<f32>() / t as f32;
            let var = (0..t).map(|r| (w[r * frames + f] - mean).powi(2)).sum::<f32>() / t as f32;
            let std = var.sqrt();
            (0..t).for_each(|r| w[r * frames + f] = (w[r * frames + f] - mean) / std);
        }
        for (r, row) in w.chunks(frames).enumerate() {
            let filtered = median_filter(row, MEDIAN_FILTER_WIDTH);
            matrix[r * frames..(r + 1) * frames]
                .iter_mut()
                .zip(filtered)
                .for_each(|(m, v)| *m += v / heads.len() as f32);
        }
    }
    // Rows from `<|notimestamps|>` to the last text token.
    let first = sot_sequence.len();
    let n = text.len() + 1;
    let path = negative_dtw(&matrix[first * frames..(first + n) * frames], n, frames);
    let mut jump_times = Vec::with_capacity(n);
    for (k, &(i, j)) in path.iter().enumerate() {
        if k == 0 || path[k - 1].0 != i {
            jump_times.push(j as f64 / TOKENS_PER_SECOND);
        }
    }
    let mut with_eot = text.to_vec();
    with_eot.push(eot);
    let words = split_to_word_tokens(tok, &with_eot, language);
    if words.len() <= 1 {
        return Ok(Vec::new());
    }
    let mut boundary = 0;
    let mut out = Vec::with_capacity(words.len() - 1);
    for (word, word_tokens) in words.into_iter().take_while(|(_, t)| t.first() != Some(&eot)) {
        let end = boundary + word_tokens.len();
        let (Some(&start), Some(&stop)) = (jump_times.get(boundary), jump_times.get(end)) else {
            break;
        };
        out.push(Timing { word, tokens: word_tokens, start, end: stop });
        boundary = end;
    }
    Ok(out)
}

fn merge_punctuations(alignment: &mut [Timing]) {
    if alignment.len() < 2 {
        return;
    }
    // Prepended punctuation joins the word after it.
    let mut j = alignment.len() - 1;
    for i in (0..alignment.len() - 1).rev() {
        let prev = &alignment[i];
        if prev.word.starts_with(' ') && is_in(prev.word.trim(), PREPEND_PUNCTUATIONS) {
            let (word, tokens) =
                (std::mem::take(&mut alignment[i].word), std::mem::take(&mut alignment[i].tokens));
            let following = &mut alignment[j];
            following.word = word + &following.word;
            following.tokens = [tokens, std::mem::take(&mut following.tokens)].concat();
        } else {
            j = i;
        }
    }
    // Appended punctuation joins the word before it.
    let mut i = 0;
    for j in 1..alignment.len() {
        if !alignment[i].word.ends_with(' ') && is_in(&alignment[j].word, APPEND_PUNCTUATIONS) {
            let (word, tokens) =
                (std::mem::take(&mut alignment[j].word), std::mem::take(&mut alignment[j].tokens));
            alignment[i].word.push_str(&word);
            alignment[i].tokens.extend(tokens);
        } else {
            i = j;
        }
    }
}

/// numpy's median (the mean of the middle two of an even count).
fn median(mut x: Vec<f64>) -> f64 {
    x.sort_by(f64::total_cmp);
    let n = x.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => x[n / 2],
        _ => (x[n / 2 - 1] + x[n / 2]) / 2.0,
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// What word timing needs of a window beyond its segments.
pub struct WindowAudio<'a, B: Backend> {
    pub model: &'a B,
    pub ctx: &'a B::Context,
    pub sot_sequence: &'a [u32],
    /// Mel frames of the window that hold audio.
    pub num_frames: usize,
    /// Seconds at which the window starts.
    pub time_offset: f64,
    pub language: &'a str,
}

/// Sets the words of one window's segments, and moves segment bounds to their words as the
/// reference does. `last_speech` is the end of the last segment with words so far.
pub fn add_word_timestamps<B: Backend>(
    w: &WindowAudio<'_, B>,
    tok: &WhisperTokenizer,
    segments: &mut [Segment],
    last_speech: &mut f64,
) -> Result<(), EngineError> {
    let eot = tok.special.eot;
    let text: Vec<u32> =
        segments.iter().flat_map(|s| s.tokens.iter().copied().filter(|&t| t < eot)).collect();
    let mut alignment =
        find_alignment(w.model, w.ctx, tok, w.sot_sequence, &text, w.num_frames, w.language)?;
    let durations: Vec<f64> =
        alignment.iter().map(|t| t.end - t.start).filter(|&d| d != 0.0).collect();
    let has_durations = !durations.is_empty();
    let median_duration = median(durations).min(0.7);
    let max_duration = median_duration * 2.0;
    // Words at sentence boundaries are not longer than twice the median word.
    if has_durations {
        for i in 1..alignment.len() {
            if alignment[i].end - alignment[i].start > max_duration {
                if is_in(&alignment[i].word, SENTENCE_END_MARKS) {
                    alignment[i].end = alignment[i].start + max_duration;
                } else if is_in(&alignment[i - 1].word, SENTENCE_END_MARKS) {
                    alignment[i].start = alignment[i].end - max_duration;
                }
            }
        }
    }
    merge_punctuations(&mut alignment);
    let mut timings = alignment.into_iter().peekable();
    for segment in segments.iter_mut() {
        let segment_tokens = segment.tokens.iter().filter(|&&t| t < eot).count();
        let mut saved = 0;
        let mut words: Vec<Word> = Vec::new();
        while saved < segment_tokens {
            let Some(t) = timings.next() else { break };
            if !t.word.is_empty() {
                words.push(Word {
                    word: t.word,
                    start: round2(w.time_offset + t.start),
                    end: round2(w.time_offset + t.end),
                });
            }
            saved += t.tokens.len();
        }
        if let Some(first) = words.first() {
            // The first (and second) word after a pause are not longer than twice the median.
            let second_long =
                words.get(1).is_some_and(|second| second.end - first.start > max_duration * 2.0);
            if first.end - *last_speech > median_duration * 4.0
                && (first.end - first.start > max_duration || second_long)
            {
                if words.len() > 1 && words[1].end - words[1].start > max_duration {
                    let boundary = (words[1].end / 2.0).max(words[1].end - max_duration);
                    words[0].end = boundary;
                    words[1].start = boundary;
                }
                words[0].start = (words[0].end - max_duration).max(0.0);
            }
            // The segment's own start when the first word is too long, else the word's.
            if segment.start < words[0].end && segment.start - 0.5 > words[0].start {
                words[0].start = (words[0].end - median_duration).min(segment.start).max(0.0);
            } else {
                segment.start = words[0].start;
            }
            let last = words.len() - 1;
            if segment.end > words[last].start && segment.end + 0.5 < words[last].end {
                words[last].end = (words[last].start + median_duration).max(segment.end);
            } else {
                segment.end = words[last].end;
            }
            *last_speech = segment.end;
        }
        segment.words = words;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtw_follows_the_largest_values() {
        // A path of ones in a 3 × 4 matrix of −1: every cell off it costs.
        let x = [1.0, -1.0, -1.0, -1.0, -1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0, 1.0];
        assert_eq!(negative_dtw(&x, 3, 4), vec![(0, 0), (1, 1), (1, 2), (2, 3)]);
    }

    #[test]
    fn median_filter_reflects_at_the_edges() {
        let row = [5.0, 1.0, 9.0, 2.0, 7.0];
        // Position 0 sees 9 1 5 1 9 (reflected) → 5; position 4 sees 9 2 7 2 9 → 7.
        let f = median_filter(&row, 5);
        assert_eq!((f[0], f[4]), (5.0, 7.0));
        assert_eq!(median_filter(&[1.0, 2.0], 7), vec![1.0, 2.0]);
    }

    #[test]
    fn punctuation_joins_its_word() {
        let t = |w: &str| Timing { word: w.into(), tokens: vec![1], start: 0.0, end: 0.0 };
        let mut a = vec![t(" \""), t("Hello"), t(","), t(" world"), t(".")];
        merge_punctuations(&mut a);
        let words: Vec<&str> = a.iter().map(|t| t.word.as_str()).collect();
        assert_eq!(words, ["", " \"Hello,", "", " world.", ""]);
        assert_eq!(a[1].tokens.len(), 3);
    }
}
