//! Word-level timestamps against faster-whisper 1.2.1 (`word_timestamps=True`, greedy, float32,
//! the same tiny.en weights) over every dev clip: `bench/reference/faster_whisper_words.json`,
//! made by `bench/scripts/faster_whisper_words.py` on the samples our decoder produces (`stt-bench
//! pcm`), so that both transcribe one signal. In f32 the words must be the reference's on every
//! clip; int8 decodes a few words differently (its WER is held within half a point of f32 by
//! `transcribe_english.rs`), so its timings are compared on the words both transcripts share.

mod common;

use common::*;
use serde_json::Value;
use stt_engine::{AudioLimits, Engine, TranscribeOptions, Word};

fn options() -> TranscribeOptions {
    TranscribeOptions { word_timestamps: true, language: Some("en".into()), ..Default::default() }
}

/// Index pairs of a longest common subsequence of `a` and `b`.
fn common_words(a: &[&str], b: &[&str]) -> Vec<(usize, usize)> {
    let (n, m) = (a.len(), b.len());
    let mut l = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            l[i][j] = if a[i] == b[j] { l[i + 1][j + 1] + 1 } else { l[i + 1][j].max(l[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n && j < m {
        if a[i] == b[j] {
            out.push((i, j));
            (i, j) = (i + 1, j + 1);
        } else if l[i + 1][j] >= l[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Per clip: our words and the reference's; `exact`: they must be the same words.
fn compare(engine: &Engine, exact: bool) {
    let reference = faster_whisper_reference();
    let clips = reference["clips"].as_object().expect("clips");
    assert_eq!(clips.len(), 20, "every dev clip");
    let (mut starts, mut ends, mut differing) = (Vec::new(), Vec::new(), Vec::new());
    let (mut matched, mut total) = (0, 0);
    for (file, want) in clips {
        let t = engine
            .transcribe_bytes(
                read(&data_dir().join("dev").join(file)),
                AudioLimits::default(),
                &options(),
            )
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let got: Vec<&Word> = t.segments.iter().flat_map(|s| &s.words).collect();
        let want: Vec<&Value> = want["segments"]
            .as_array()
            .expect("segments")
            .iter()
            .flat_map(|s| s["words"].as_array().expect("words"))
            .collect();
        let got_words: Vec<&str> = got.iter().map(|w| w.word.trim()).collect();
        let want_words: Vec<&str> =
            want.iter().map(|w| w["word"].as_str().expect("word").trim()).collect();
        if got_words != want_words {
            differing.push(format!("{file}:\n  ours: {got_words:?}\n  ref:  {want_words:?}"));
        }
        let pairs = common_words(&got_words, &want_words);
        (matched, total) = (matched + pairs.len(), total + want_words.len());
        for (g, w) in pairs.into_iter().map(|(i, j)| (got[i], want[j])) {
            let (ws, we) = (w["start"].as_f64().expect("start"), w["end"].as_f64().expect("end"));
            starts.push((g.start - ws).abs());
            ends.push((g.end - we).abs());
            if (g.start - ws).abs() > 0.1 || (g.end - we).abs() > 0.1 {
                eprintln!(
                    "{file} {:?}: ours {:.2}–{:.2}, ref {ws:.2}–{we:.2}",
                    g.word, g.start, g.end
                );
            }
        }
    }
    let all: Vec<f64> = starts.iter().chain(&ends).copied().collect();
    eprintln!(
        "{} {}: {} words; |Δstart| median {:.3} p90 {:.3}; |Δend| median {:.3} p90 {:.3}",
        engine.name,
        engine.model.precision,
        starts.len(),
        percentile(&starts, 0.5),
        percentile(&starts, 0.9),
        percentile(&ends, 0.5),
        percentile(&ends, 0.9),
    );
    eprintln!("{matched} of {total} reference words matched");
    if exact {
        assert!(differing.is_empty(), "words differ from the reference:\n{}", differing.join("\n"));
    } else {
        eprintln!("clips whose words differ:\n{}", differing.join("\n"));
        assert!(matched * 100 >= total * 95, "{matched} of {total} words in common");
    }
    for (what, d) in [("start", &starts), ("end", &ends)] {
        let (median, p90) = (percentile(d, 0.5), percentile(d, 0.9));
        assert!(median <= 0.020, "|Δ{what}| median {median:.3} s > 20 ms");
        assert!(p90 <= 0.100, "|Δ{what}| p90 {p90:.3} s > 100 ms");
    }
    assert!(all.len() >= 300, "{} timings compared", all.len());
}

#[test]
fn word_timestamps_match_faster_whisper_in_f32() {
    compare(tiny_en_f32(), true);
}

#[test]
fn word_timestamps_match_faster_whisper_in_int8() {
    compare(tiny_en(), false);
}

/// Greedy decoding is unchanged by the seams: JFK's tokens are faster-whisper's in the same
/// precision (float32's in f32, int8's in int8: the two differ in two timestamps).
#[test]
fn jfk_greedy_tokens_are_faster_whispers() {
    let reference = faster_whisper_reference();
    let clip = &reference["clips"]["jfk.flac"];
    let ids = |v: &Value| -> Vec<u64> {
        v.as_array().expect("tokens").iter().map(|t| t.as_u64().expect("id")).collect()
    };
    let float32: Vec<u64> = clip["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .flat_map(|s| ids(&s["tokens"]))
        .collect();
    let int8 = ids(&clip["int8_tokens"]);
    for (engine, want) in [(tiny_en_f32(), float32), (tiny_en(), int8)] {
        let t = engine
            .transcribe_bytes(
                read(&data_dir().join("jfk.flac")),
                AudioLimits::default(),
                &TranscribeOptions::default(),
            )
            .expect("transcribe");
        let got: Vec<u64> =
            t.segments.iter().flat_map(|s| s.tokens.iter().map(|&t| u64::from(t))).collect();
        assert_eq!(got, want, "{} tokens", engine.model.precision);
    }
}

/// Words sit inside their segments, in order, and `verbose_json` carries them as OpenAI does.
#[test]
fn words_are_ordered_within_their_segments_and_rendered() {
    use stt_engine::format::{Granularities, ResponseFormat, render};
    for engine in [tiny_en(), base()] {
        let t = engine
            .transcribe_bytes(
                read(&data_dir().join("jfk.flac")),
                AudioLimits::default(),
                &TranscribeOptions { word_timestamps: true, ..Default::default() },
            )
            .expect("transcribe");
        let mut last = 0.0;
        for s in &t.segments {
            assert!(!s.words.is_empty(), "{s:?}");
            for w in &s.words {
                assert!(w.start >= last - 1e-9 && w.end >= w.start, "{w:?} after {last}");
                assert!(w.start >= s.start - 1e-9 && w.end <= s.end + 1e-9, "{w:?} in {s:?}");
                last = w.end;
            }
        }
        let words_only = Granularities { segment: false, word: true };
        let r = render(&t, ResponseFormat::VerboseJson, words_only);
        let v: Value = serde_json::from_slice(&r.body).expect("JSON");
        assert_eq!(v["language"], "english");
        assert_eq!(v["usage"], serde_json::json!({ "type": "duration", "seconds": 11 }));
        assert!(v.get("segments").is_none(), "words only: {v}");
        let words: Vec<&str> = v["words"]
            .as_array()
            .expect("words")
            .iter()
            .filter_map(|w| w["word"].as_str())
            .collect();
        assert_eq!(words.first(), Some(&"And"), "no leading space: {words:?}");
        assert_eq!(norm(&words.join(" ")), norm(JFK));
    }
}
