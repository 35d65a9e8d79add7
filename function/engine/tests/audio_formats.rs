//! Compressed uploads decode in line with their source: what the codec adds (Opus's pre-skip,
//! AAC's priming and padding in an MP4 edit list) is removed, as ffmpeg removes it, so every
//! timestamp means the same in any format.

mod common;

use common::*;
use stt_engine::AudioLimits;
use stt_testkit::media::reencode;

fn load(path: &std::path::Path) -> Vec<f32> {
    stt_engine::audio::load(read(path), AudioLimits::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .samples
}

/// The shift of `b` against `a` (samples, within ±`max`) that lines them up best.
fn lag(a: &[f32], b: &[f32], max: i64) -> i64 {
    let n = a.len().min(b.len()) as i64 - max;
    let score = |l: i64| -> f64 {
        (max..n).map(|i| f64::from(a[i as usize]) * f64::from(b[(i + l) as usize])).sum()
    };
    (-max..=max).max_by(|&x, &y| score(x).total_cmp(&score(y))).unwrap_or(0)
}

fn source() -> std::path::PathBuf {
    reencode(
        &data_dir().join("jfk.flac"),
        "jfk_16k_mono.wav",
        &["-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", "-bitexact"],
    )
}

#[test]
fn opus_decodes_in_line_with_its_source() {
    let source = source();
    let reference = load(&source);
    let opus = ["-c:a", "libopus", "-b:a", "64k"];
    for name in ["jfk.opus", "jfk_opus.webm"] {
        let pcm = load(&reencode(&source, name, &opus));
        // Five seconds are plenty to line up on; the pre-skip alone is 104 samples at 16 kHz.
        let l = lag(&reference[..80_000], &pcm[..80_000], 400);
        assert!(l.abs() <= 1, "{name}: {l} samples late");
        // Ogg's last granule position trims the end padding exactly; WebM keeps it (symphonia
        // does not read Matroska's DiscardPadding): at most one 20 ms frame.
        let extra = pcm.len() as i64 - reference.len() as i64;
        let allowed = if name.ends_with(".opus") { 0..=1 } else { 0..=320 };
        assert!(allowed.contains(&extra), "{name}: {extra} samples more than the source");
    }
}

#[test]
fn m4a_decodes_in_line_with_its_source() {
    let source = source();
    let reference = load(&source);
    let pcm = load(&reencode(&source, "jfk.m4a", &["-c:a", "aac", "-b:a", "64k"]));
    // ffmpeg's AAC encoder primes with 1024 samples, which its edit list skips.
    let l = lag(&reference[..80_000], &pcm[..80_000], 1500);
    assert!(l.abs() <= 1, "{l} samples late");
    let extra = pcm.len() as i64 - reference.len() as i64;
    assert!((0..=1).contains(&extra), "{extra} samples more than the source");
}
