//! Compressed uploads decode in line with their source (AAC's priming and padding, as an MP4
//! edit list states them, are removed as ffmpeg removes them), and the formats clients record
//! decode.

mod common;

use common::*;
use stt_engine::{AudioLimits, TranscribeOptions};
use stt_testkit::media::{AAC_LC_24K, encode, ffmpeg, reencode, signalled_as_he_aac};

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

/// jfk.flac's Opus encodes (an MP4 of them without an edit list): one set of arguments, since
/// files are made once per name and process.
const OPUS: [&str; 6] = ["-c:a", "libopus", "-b:a", "64k", "-use_editlist", "0"];

fn source() -> std::path::PathBuf {
    reencode(
        &data_dir().join("jfk.flac"),
        "jfk_16k_mono.wav",
        &["-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", "-bitexact"],
    )
}

/// Opus decodes without its encoder's pre-skip, as FFmpeg decodes it (RFC 7845): in line with
/// its source. Ogg's end trim applies; WebM keeps its end padding (symphonia does not read
/// Matroska's DiscardPadding), and so does an MP4 without an edit list (whose `dOps` box gives
/// the pre-skip big-endian): at most one 20 ms frame more.
#[test]
fn opus_decodes_in_line_with_its_source() {
    let source = source();
    let reference = load(&source);
    for name in ["jfk.opus", "jfk_opus.webm", "jfk_opus.mp4"] {
        let pcm = load(&reencode(&source, name, &OPUS));
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

/// Channel `i` of `layout` (FFmpeg's name and its channels in FFmpeg's order) a sine of
/// 300 + 200·i Hz at 1/8, three seconds at 48 kHz, encoded with `codec` into `name`.
fn tones(name: &str, layout: &str, channels: &[&str], codec: &[&str]) -> std::path::PathBuf {
    let mut input = Vec::new();
    let mut labels = String::new();
    let mut map = Vec::new();
    for (i, ch) in channels.iter().enumerate() {
        input.extend([
            "-f".to_string(),
            "lavfi".into(),
            "-i".into(),
            format!("sine=frequency={}:sample_rate=48000:duration=3", 300 + 200 * i),
        ]);
        labels.push_str(&format!("[{i}:a]"));
        map.push(format!("{i}.0-{ch}"));
    }
    let graph = format!(
        "{labels}join=inputs={}:channel_layout={layout}:map={}[a]",
        channels.len(),
        map.join("|")
    );
    let mut args = vec!["-filter_complex", graph.as_str(), "-map", "[a]"];
    args.extend_from_slice(codec);
    let input: Vec<&str> = input.iter().map(String::as_str).collect();
    encode(name, &input, &args)
}

/// The amplitude of `hz` in 16 kHz samples, the first and last half second left out.
fn amplitude(pcm: &[f32], hz: f64) -> f64 {
    let x = &pcm[8_000..pcm.len() - 8_000];
    let (re, im) = x.iter().enumerate().fold((0.0, 0.0), |(re, im), (i, &s)| {
        let phase = 2.0 * std::f64::consts::PI * hz * i as f64 / 16_000.0;
        (re + f64::from(s) * phase.cos(), im + f64::from(s) * phase.sin())
    });
    2.0 * (re * re + im * im).sqrt() / x.len() as f64
}

/// An Opus header's output gain is applied, as FFmpeg applies it: −6 dB written into an MP4's
/// `dOps` box (big-endian there) halves the samples.
#[test]
fn opus_output_gain_is_applied() {
    let mp4 = read(&reencode(&source(), "jfk_opus.mp4", &OPUS));
    let at = mp4.windows(4).position(|w| w == b"dOps").expect("dOps box") + 4;
    let mut quieter = mp4.clone();
    // Version, channels, pre-skip, input rate, then the gain (Q7.8 dB).
    quieter[at + 8..at + 10].copy_from_slice(&(-6i16 * 256).to_be_bytes());
    let load =
        |b: Vec<u8>| stt_engine::audio::load(b, AudioLimits::default()).expect("decodes").samples;
    let (a, b) = (load(mp4), load(quieter));
    let rms =
        |x: &[f32]| (x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    let ratio = rms(&b) / rms(&a);
    assert!((ratio - 10f64.powf(-6.0 / 20.0)).abs() < 0.005, "{ratio}");
}

/// Surround Vorbis and Opus (Ogg and WebM) are mixed to mono as FFmpeg mixes them: every
/// channel is heard at swresample's weight for its position (Vorbis's and Opus's own channel
/// order read by position; symphonia's Vorbis decoder loses channels beyond two, lewton's does
/// not). Surround AAC, which no decoder here reads, is refused by name.
#[test]
fn surround_vorbis_and_opus_mix_every_channel_at_ffmpegs_weight() {
    let layouts: [(&str, &[&str], &[f64]); 4] = [
        ("3.0", &["FL", "FR", "FC"], &[0.2929, 0.2929, 0.4142]),
        ("quad", &["FL", "FR", "BL", "BR"], &[0.2929, 0.2929, 0.2071, 0.2071]),
        (
            "5.1",
            &["FL", "FR", "FC", "LFE", "BL", "BR"],
            &[0.2071, 0.2071, 0.2929, 0.0, 0.1464, 0.1464],
        ),
        (
            "7.1",
            &["FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR"],
            &[0.1602, 0.1602, 0.2265, 0.0, 0.1133, 0.1133, 0.1133, 0.1133],
        ),
    ];
    for (layout, channels, weights) in layouts {
        for (ext, codec) in [
            ("ogg", ["-c:a", "libvorbis"]),
            ("opus", ["-c:a", "libopus"]),
            ("webm", ["-c:a", "libopus"]),
        ] {
            let name = format!("tones_{layout}.{ext}");
            let pcm = load(&tones(&name, layout, channels, &codec));
            for (i, (ch, w)) in channels.iter().zip(weights).enumerate() {
                let got = amplitude(&pcm, 300.0 + 200.0 * i as f64) * 8.0;
                assert!((got - w).abs() < 0.01, "{name}: {ch} heard at {got:.4}, FFmpeg {w}");
            }
        }
        let name = format!("tones_{layout}.m4a");
        let err = stt_engine::audio::load(
            read(&tones(&name, layout, channels, &["-c:a", "aac"])),
            AudioLimits::default(),
        )
        .expect_err(&name);
        assert!(
            matches!(err, stt_engine::audio::AudioError::UnsupportedCodec(_))
                && err.to_string().contains("mono and stereo AAC-LC and HE-AAC are supported"),
            "{name}: {err}"
        );
    }
}

/// HE-AAC (v1 and v2) signalled in its config decodes as its AAC-LC core: the same samples as
/// the core alone (symphonia decodes AAC-LC only; SBR's band above the core's and PS's stereo
/// image are not heard). So does a core whose MP4 sample entry states HE-AAC's output rate, as
/// where SBR is signalled only in the frames: the config's rate is the one decoded.
#[test]
fn he_aac_decodes_as_its_aac_lc_core() {
    let lc = reencode(&source(), "jfk_lc_24k.m4a", &AAC_LC_24K);
    let core = load(&lc);
    let same_as_core = |path: &std::path::Path| {
        let pcm = load(path);
        assert!(
            pcm == core,
            "{}: {} samples, not the core's {}",
            path.display(),
            pcm.len(),
            core.len()
        );
    };
    for aot in [5, 29] {
        let path = signalled_as_he_aac(&lc, aot);
        same_as_core(&path);
        // FFmpeg reads it as HE-AAC: output at SBR's rate.
        let probe = std::process::Command::new(ffmpeg())
            .arg("-hide_banner")
            .arg("-i")
            .arg(&path)
            .output()
            .expect("ffmpeg");
        let info = String::from_utf8_lossy(&probe.stderr);
        assert!(info.contains("aac") && info.contains("48000 Hz"), "{}: {info}", path.display());
    }
    let mut m4a = read(&lc);
    let entry = m4a.windows(4).position(|w| w == b"mp4a").expect("sample entry");
    // The entry's rate, 16.16 fixed point, 28 bytes after its type.
    m4a[entry + 28..entry + 32].copy_from_slice(&(48_000u32 << 16).to_be_bytes());
    let path = lc.with_file_name("jfk_lc_entry_48k.m4a");
    std::fs::write(&path, m4a).expect("write");
    same_as_core(&path);
}
