//! Compressed uploads decode in line with their source (AAC's priming and padding, as an MP4
//! edit list states them, are removed as ffmpeg removes them), and the formats clients record
//! decode.

mod common;

use common::*;
use stt_engine::{AudioLimits, TranscribeOptions};
use stt_testkit::media::{encode, reencode};

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

/// Opus decodes without its encoder's pre-skip, as FFmpeg decodes it (RFC 7845): in line with
/// its source. Ogg's end trim applies; WebM keeps its end padding (symphonia does not read
/// Matroska's DiscardPadding): at most one 20 ms frame more.
#[test]
fn opus_decodes_in_line_with_its_source() {
    let source = source();
    let reference = load(&source);
    let opus = ["-c:a", "libopus", "-b:a", "64k"];
    for name in ["jfk.opus", "jfk_opus.webm"] {
        let pcm = load(&reencode(&source, name, &opus));
        let l = lag(&reference[..80_000], &pcm[..80_000], 400);
        assert!(l.abs() <= 1, "{name}: {l} samples late");
        let extra = pcm.len() as i64 - reference.len() as i64;
        let allowed = if name.ends_with(".opus") { -1..=1 } else { -1..=320 };
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

/// jfk.flac's sound with a test picture, as `args` encode them.
fn video(name: &str, args: &[&str]) -> std::path::PathBuf {
    let jfk = data_dir().join("jfk.flac").display().to_string();
    let input = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=5", "-i", jfk.as_str()];
    let mut all = vec!["-shortest"];
    all.extend_from_slice(args);
    encode(name, &input, &all)
}

/// Formats phones, browsers and desktop tools record beyond the shared data's: MPEG-1 Layer II
/// (OpenAI's `mpga`), Apple Lossless in M4A and CAF, CAF PCM, and MP4 and WebM video, whose
/// sound is transcribed.
#[test]
fn uploads_in_the_formats_clients_record_transcribe() {
    let jfk = data_dir().join("jfk.flac");
    let files = [
        reencode(&jfk, "jfk.mp2", &["-c:a", "mp2"]),
        reencode(&jfk, "jfk_alac.m4a", &["-c:a", "alac"]),
        reencode(&jfk, "jfk_alac.caf", &["-c:a", "alac"]),
        reencode(&jfk, "jfk_pcm.caf", &["-c:a", "pcm_s16le"]),
        video("jfk_h264.mp4", &["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"]),
        video("jfk_vp8.webm", &["-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libopus"]),
    ];
    for f in &files {
        let t = tiny_en()
            .transcribe_bytes(read(f), AudioLimits::default(), &TranscribeOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(norm(&t.text), norm(JFK), "{}", f.display());
    }
}

/// MPEG program and transport streams (video `.mpg`, `.ts`) have no reader here: a clear 415,
/// not the first few frames of their MPEG audio transcribed as if they were all of it.
#[test]
fn mpeg_program_and_transport_streams_are_refused_by_name() {
    for (name, args, what) in [
        ("jfk.mpg", ["-c:v", "mpeg2video", "-c:a", "mp2"], "program stream"),
        ("jfk.ts", ["-c:v", "mpeg2video", "-c:a", "mp2"], "transport stream"),
    ] {
        let err = stt_engine::audio::load(read(&video(name, &args)), AudioLimits::default())
            .expect_err(name);
        assert!(
            matches!(err, stt_engine::audio::AudioError::UnsupportedFormat(_))
                && err.to_string().contains(what),
            "{name}: {err}"
        );
    }
}
