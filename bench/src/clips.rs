//! Benchmark clips built from the real dev set.

use std::path::{Path, PathBuf};

use anyhow::Context;
use stt_engine::{AudioLimits, audio};

/// Dev clips joined (half a second apart) and cut to exactly `seconds`, written as 16 kHz WAV.
pub fn joined_clip(data: &Path, seconds: f64, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let order = [
        "jfk.flac",
        "ls_test-clean_1995-1837-0001.wav",
        "fleurs_en_000.ogg",
        "fleurs_en_005.ogg",
        "fleurs_en_006.ogg",
        "fleurs_en_008.ogg",
        "leopard_test_en.wav",
        "fleurs_en_009.ogg",
        "fleurs_en_001.ogg",
        "fleurs_en_003.ogg",
    ];
    let want = (seconds * 16_000.0) as usize;
    let mut pcm = Vec::with_capacity(want);
    for name in order.iter().cycle().take(order.len() * 100) {
        if pcm.len() >= want {
            break;
        }
        let path = data.join("dev").join(name);
        let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
        pcm.extend(audio::load(bytes, AudioLimits::default())?.samples);
        pcm.extend(std::iter::repeat_n(0.0, 8_000));
    }
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
