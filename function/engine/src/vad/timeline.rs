//! Speech spans laid end to end, and the way back: a time in the joined speech → the time in
//! the recording (faster-whisper's `collect_chunks` and `SpeechTimestampsMap`).

use super::spans::SpeechSpan;
use crate::audio::SAMPLE_RATE;
use crate::transcribe::Segment;

/// The samples of `spans`, joined.
pub fn gather(pcm: &[f32], spans: &[SpeechSpan]) -> Vec<f32> {
    let mut out = Vec::with_capacity(spans.iter().map(SpeechSpan::len).sum());
    for s in spans {
        out.extend_from_slice(pcm.get(s.start..s.end.min(pcm.len())).unwrap_or_default());
    }
    out
}

/// Keeps only the samples of `spans` (in order, not overlapping, as the detector gives them),
/// joined at the front of `pcm` itself: no second copy of a long recording, which in wasm would
/// raise the instance's memory for good.
pub fn keep_only(pcm: &mut Vec<f32>, spans: &[SpeechSpan]) {
    let mut at = 0;
    for s in spans {
        let (start, end) = (s.start.max(at), s.end.min(pcm.len()));
        if start < end {
            pcm.copy_within(start..end, at);
            at += end - start;
        }
    }
    pcm.truncate(at);
}

/// Consecutive spans whose joined length stays within `max_samples` (a span longer than that
/// is a group of its own), as faster-whisper's `collect_chunks(max_duration=…)` groups them.
pub fn groups(spans: &[SpeechSpan], max_samples: usize) -> Vec<Vec<SpeechSpan>> {
    let mut out: Vec<Vec<SpeechSpan>> = Vec::new();
    let mut current: Vec<SpeechSpan> = Vec::new();
    let mut len = 0;
    for s in spans {
        if len + s.len() > max_samples && !current.is_empty() {
            out.push(std::mem::take(&mut current));
            len = 0;
        }
        len += s.len();
        current.push(*s);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `pcm` cut into consecutive pieces of at most `max_samples`, each cut in a pause between
/// `spans`: the longest pause in the piece's second half (so pieces are not needlessly short:
/// each costs a whole window), else the longest in the piece, else at the limit when the speech
/// has no pause at all. A cut inside a sentence can cost the words around it, so the longest
/// pause (most likely between sentences) wins over the latest; within the pause the cut goes
/// to its quietest 20 ms, because speech too quiet for the detector reads as a pause to it but
/// is still louder than the silence around it.
pub fn cover(spans: &[SpeechSpan], pcm: &[f32], max_samples: usize) -> Vec<SpeechSpan> {
    let max_samples = max_samples.max(2);
    let len = pcm.len();
    // (where the pause starts, where it ends)
    let pauses: Vec<(usize, usize)> =
        spans.windows(2).map(|w| (w[0].end, w[1].start.max(w[0].end))).collect();
    // The longest pause that starts after the piece's start (the pause it was cut in is not
    // a place to cut again) and reaches into `from..to`, cut at its quietest point before `to`.
    // Pauses are disjoint and in order, so among equally long ones the latest wins.
    let longest = |start: usize, from: usize, to: usize| {
        let &(a, b) = pauses
            .iter()
            .filter(|&&(a, b)| a > start && a < b && b > from && a < to)
            .max_by_key(|&&(a, b)| (b - a, a))?;
        quietest(pcm, a, b.min(to))
    };
    let mut out = Vec::new();
    let mut start = 0;
    while len - start > max_samples {
        let limit = start + max_samples;
        let cut = longest(start, start + max_samples / 2, limit)
            .or_else(|| longest(start, start, limit))
            .filter(|&c| c > start)
            .unwrap_or(limit);
        out.push(SpeechSpan { start, end: cut });
        start = cut;
    }
    if start < len {
        out.push(SpeechSpan { start, end: len });
    }
    out
}

/// Samples per frame when looking for the quietest point of a pause (20 ms), and the step.
const QUIET_FRAME: usize = 320;
const QUIET_STEP: usize = 160;

/// The middle of the quietest frame of `pcm[from..to]` (the one nearest the range's middle
/// among equals, e.g. in digital silence); `None` for an empty range.
fn quietest(pcm: &[f32], from: usize, to: usize) -> Option<usize> {
    let to = to.min(pcm.len());
    if from >= to {
        return None;
    }
    let mid = from.midpoint(to);
    let energy =
        |a: usize| -> f32 { pcm[a..(a + QUIET_FRAME).min(to)].iter().map(|x| x * x).sum() };
    let frames = (from..to).step_by(QUIET_STEP);
    frames
        .map(|a| (energy(a), (a + QUIET_FRAME / 2).min(to - 1)))
        .min_by(|(e1, c1), (e2, c2)| e1.total_cmp(e2).then(c1.abs_diff(mid).cmp(&c2.abs_diff(mid))))
        .map(|(_, c)| c)
}

/// The energy of the loudest frame of `pcm` (sum of squares over [`QUIET_FRAME`] samples, in
/// steps of [`QUIET_STEP`]); 0 for empty or all-zero audio.
pub fn loudest(pcm: &[f32]) -> f32 {
    (0..pcm.len())
        .step_by(QUIET_STEP)
        .map(|a| pcm[a..(a + QUIET_FRAME).min(pcm.len())].iter().map(|x| x * x).sum::<f32>())
        .filter(|e| e.is_finite())
        .fold(0.0, f32::max)
}

/// Where `pcm` has sound: from the start of its first frame with more energy than `threshold`
/// to the end of its last such frame (frames as in [`loudest`]); `None` if it has none.
pub fn sound(pcm: &[f32], threshold: f32) -> Option<(usize, usize)> {
    let loud = |&a: &usize| {
        let e: f32 = pcm[a..(a + QUIET_FRAME).min(pcm.len())].iter().map(|x| x * x).sum();
        e > threshold && e.is_finite()
    };
    let first = (0..pcm.len()).step_by(QUIET_STEP).find(loud)?;
    let last = (0..pcm.len()).step_by(QUIET_STEP).rev().find(loud).unwrap_or(first);
    Some((first, (last + QUIET_FRAME).min(pcm.len())))
}

/// Maps times in the joined speech of some spans back to the recording they came from.
#[derive(Debug, Clone)]
pub struct SpeechTimeline {
    /// Where each span ends in the joined speech, in samples.
    ends: Vec<usize>,
    /// Seconds of the recording left out before each span.
    silence_before: Vec<f64>,
}

impl SpeechTimeline {
    pub fn new(spans: &[SpeechSpan]) -> Self {
        let (mut previous_end, mut silent) = (0usize, 0usize);
        let mut ends = Vec::with_capacity(spans.len());
        let mut silence_before = Vec::with_capacity(spans.len());
        for s in spans {
            silent += s.start.saturating_sub(previous_end);
            previous_end = s.end;
            ends.push(s.end - silent);
            silence_before.push(crate::audio::seconds(silent));
        }
        Self { ends, silence_before }
    }

    /// The span a joined-speech time falls in; an end exactly at a span's end stays in it.
    fn span_of(&self, t: f64, is_end: bool) -> usize {
        let sample = (t * SAMPLE_RATE as f64) as usize;
        if is_end && let Some(i) = self.ends.iter().position(|&e| e == sample) {
            return i;
        }
        self.ends.partition_point(|&e| e <= sample).min(self.ends.len().saturating_sub(1))
    }

    fn original(&self, t: f64, span: usize) -> f64 {
        let shifted = self.silence_before.get(span).copied().unwrap_or(0.0) + t;
        (shifted * 100.0).round() / 100.0
    }

    /// Where span `i` lies in the joined speech, in seconds.
    fn joined(&self, i: usize) -> (f64, f64) {
        let start = i.checked_sub(1).and_then(|p| self.ends.get(p)).copied().unwrap_or(0);
        let end = self.ends.get(i).copied().unwrap_or(start);
        (crate::audio::seconds(start), crate::audio::seconds(end))
    }

    /// A segment of the joined speech, placed in the recording. A word is placed by the span
    /// its middle falls in (so its start and end move together), and a segment with words
    /// then spans its words, as faster-whisper's `restore_speech_timestamps` does. A word is
    /// also kept within its span: one the alignment stretched across the junction of two spans
    /// (a pause the speech had on each side of the silence left out) starts where its span
    /// does, not in that silence, where faster-whisper leaves it.
    pub fn restore(&self, segment: &mut Segment) {
        if self.ends.is_empty() {
            return;
        }
        if segment.words.is_empty() {
            segment.start = self.original(segment.start, self.span_of(segment.start, false));
            segment.end = self.original(segment.end, self.span_of(segment.end, true));
            return;
        }
        for w in &mut segment.words {
            let span = self.span_of((w.start + w.end) / 2.0, false);
            // max/min rather than clamp, which would panic were a span ever to end before
            // it starts.
            let (from, to) = self.joined(span);
            w.start = self.original(w.start.max(from).min(to), span);
            w.end = self.original(w.end.max(from).min(to), span);
        }
        if let (Some(first), Some(last)) = (segment.words.first(), segment.words.last()) {
            segment.start = first.start;
            segment.end = last.end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoding::timing::Word;

    const S: usize = SAMPLE_RATE as usize;

    fn span(a: f64, b: f64) -> SpeechSpan {
        SpeechSpan { start: (a * S as f64) as usize, end: (b * S as f64) as usize }
    }

    #[test]
    fn joined_times_map_back_past_the_silences_left_out() {
        // Speech at 1–3 s and 10–12 s: joined, 0–2 s and 2–4 s.
        let map = SpeechTimeline::new(&[span(1.0, 3.0), span(10.0, 12.0)]);
        assert_eq!(map.original(0.5, map.span_of(0.5, false)), 1.5);
        assert_eq!(map.original(2.5, map.span_of(2.5, false)), 10.5);
        // 2.0 is the first span's end when it ends a segment, the second's start otherwise.
        assert_eq!(map.original(2.0, map.span_of(2.0, true)), 3.0);
        assert_eq!(map.original(2.0, map.span_of(2.0, false)), 10.0);
        // Past the last span: still the last span's offset.
        assert_eq!(map.original(5.0, map.span_of(5.0, false)), 13.0);
    }

    #[test]
    fn a_word_across_a_junction_stays_in_the_span_of_its_middle() {
        // Speech at 1–3 s and 10–12 s: joined, 0–2 s and 2–4 s.
        let map = SpeechTimeline::new(&[span(1.0, 3.0), span(10.0, 12.0)]);
        let word = |start, end| Word { word: " and".into(), start, end };
        let mut segment = Segment {
            id: 0,
            seek: 0,
            start: 1.5,
            end: 3.0,
            text: " so and".into(),
            tokens: Vec::new(),
            temperature: 0.0,
            avg_logprob: 0.0,
            compression_ratio: 1.0,
            no_speech_prob: 0.0,
            words: vec![word(1.5, 1.8), word(1.6, 2.8), word(1.2, 2.6)],
        };
        map.restore(&mut segment);
        let placed: Vec<(f64, f64)> = segment.words.iter().map(|w| (w.start, w.end)).collect();
        // The second word's middle (2.2) is in the second span: it starts where that span does
        // (10 s), not at 9.6 s, inside the 7 s left out. The third's (1.9) is in the first: it
        // ends where that span ends (3 s).
        assert_eq!(placed, vec![(2.5, 2.8), (10.0, 10.8), (2.2, 3.0)]);
        assert_eq!((segment.start, segment.end), (2.5, 3.0));
    }

    #[test]
    fn groups_stay_within_the_limit_in_order() {
        let spans = [span(0.0, 10.0), span(11.0, 25.0), span(26.0, 40.0), span(41.0, 80.0)];
        let g = groups(&spans, 30 * S);
        assert_eq!(g, vec![vec![spans[0], spans[1]], vec![spans[2]], vec![spans[3]]]);
        assert_eq!(gather(&vec![1.0; 100], &[SpeechSpan { start: 10, end: 20 }]).len(), 10);
        let pcm: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let spans = [SpeechSpan { start: 2, end: 5 }, SpeechSpan { start: 90, end: 120 }];
        let mut kept = pcm.clone();
        keep_only(&mut kept, &spans);
        assert_eq!(kept, gather(&pcm, &spans));
    }

    #[test]
    fn a_cover_is_cut_in_pauses_and_leaves_nothing_out() {
        let spans = [
            span(0.5, 10.0),
            span(13.0, 20.0),
            span(20.4, 25.0),
            span(26.0, 40.0),
            span(40.0, 95.0),
        ];
        // Speech is a tone; the pauses are silent.
        let mut pcm = vec![0.0f32; 100 * S];
        for s in &spans {
            for (i, x) in pcm[s.start..s.end].iter_mut().enumerate() {
                *x = (i as f32 * 0.1).sin() * 0.5;
            }
        }
        let c = cover(&spans, &pcm, 30 * S);
        // Pauses: 3 s at 10 s, 0.4 s at 20 s, 1 s at 25 s, none at 40 s. In 0–30 s the longest
        // of the second half (25 s) wins over the longer one in the first, and is cut in its
        // middle (all of it is silent); 26 → 95 s has no pause past 40 s, so it is cut at the
        // limits.
        let at = |s: f64| (s * S as f64) as usize;
        let bounds: Vec<(usize, usize)> = c.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(
            bounds,
            [(0, at(25.5)), (at(25.5), at(55.5)), (at(55.5), at(85.5)), (at(85.5), at(100.0))]
        );
        // Only a pause in the first half: taken rather than cutting speech at the limit.
        let c = cover(&[span(0.0, 5.0), span(6.0, 40.0)], &vec![0.0; 40 * S], 30 * S);
        assert_eq!(c[0].end.abs_diff(at(5.5)), 0);
        // Quiet speech inside a pause: the cut goes to the silence beside it.
        let mut pcm = vec![0.0f32; 40 * S];
        for (i, x) in pcm[at(12.0)..at(18.0)].iter_mut().enumerate() {
            *x = (i as f32 * 0.1).sin() * 0.001;
        }
        let c = cover(&[span(0.0, 10.0), span(20.0, 40.0)], &pcm, 30 * S);
        let silent =
            |x: usize| (at(10.0)..at(12.0)).contains(&x) || (at(18.0)..at(20.0)).contains(&x);
        assert!(silent(c[0].end), "cut at {}", c[0].end);
        assert_eq!(cover(&[], &vec![0.0; 10 * S], 30 * S), [SpeechSpan { start: 0, end: 10 * S }]);
        assert!(cover(&[], &[], 30 * S).is_empty());
    }
}
