//! Benchmark clips built from the real dev set.

use std::path::{Path, PathBuf};

/// The engine benchmarks' two clips, `jfk.flac` and 60 s of joined dev clips, in one temporary
/// folder: `(folder, [jfk, 60 s])`.
pub fn jfk_and_60s(data: &Path) -> anyhow::Result<(PathBuf, [PathBuf; 2])> {
    let dir = std::env::temp_dir().join("stt-bench-clips");
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(data.join("jfk.flac"), dir.join("jfk.flac"))?;
    let long = joined_clip(data, 60.0, &dir)?;
    Ok((dir.clone(), [dir.join("jfk.flac"), long]))
}

/// The long-form dev clips joined (repeated when `seconds` is longer than all of them) and cut
/// to exactly `seconds`, written as 16 kHz WAV.
pub fn joined_clip(data: &Path, seconds: f64, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let want = (seconds * 16_000.0) as usize;
    let once = stt_testkit::wer::join_clips(&data.join("dev"), stt_testkit::wer::LONG_FORM_CLIPS)?;
    anyhow::ensure!(!once.is_empty(), "no long-form clips");
    let mut pcm: Vec<f32> = once.iter().copied().cycle().take(want).collect();
    pcm.truncate(want);
    std::fs::create_dir_all(out_dir)?;
    let path = out_dir.join(format!("dev_joined_{}s.wav", seconds as u64));
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec)?;
    for s in pcm {
        w.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)?;
    }
    w.finalize()?;
    Ok(path)
}
