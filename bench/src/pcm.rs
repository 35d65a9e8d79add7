//! The engine's own decoding of audio files (16 kHz mono f32, little-endian), so that a
//! reference implementation can be run on exactly the samples the engine transcribes.

use std::path::PathBuf;

use anyhow::Context;
use stt_engine::AudioLimits;

#[derive(clap::Args)]
pub struct Args {
    /// Folder for `<file name>.f32` files.
    #[arg(long)]
    pub out: PathBuf,
    pub files: Vec<PathBuf>,
}

pub fn run(a: &Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.out)?;
    for f in &a.files {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let pcm = stt_engine::audio::load(bytes, AudioLimits::default())
            .with_context(|| format!("decoding {}", f.display()))?;
        let name = f.file_name().context("a file name")?.to_string_lossy().into_owned();
        let data: Vec<u8> = pcm.samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        std::fs::write(a.out.join(format!("{name}.f32")), data)?;
    }
    Ok(())
}
