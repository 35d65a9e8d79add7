//! Audio files the shared data does not have, made from it with a real encoder: the ffmpeg that
//! the `imageio-ffmpeg` package ships (`make pydeps`). Each file is made once per test process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The ffmpeg binary of the installed `imageio-ffmpeg`.
pub fn ffmpeg() -> PathBuf {
    static FFMPEG: OnceLock<PathBuf> = OnceLock::new();
    FFMPEG
        .get_or_init(|| {
            let out = Command::new("python3")
                .args(["-c", "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"])
                .output()
                .expect("python3");
            assert!(
                out.status.success(),
                "imageio-ffmpeg is not installed (make pydeps): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        })
        .clone()
}

/// `ffmpeg -i input <args> out` into the test process's media folder, once per name.
pub fn encode(name: &str, input: &[&str], args: &[&str]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stt-media-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("media dir");
    let out = dir.join(name);
    if out.is_file() {
        return out;
    }
    // Tests of one process may make the same file at once: each writes its own, and the last
    // rename wins (the files are the same).
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let partial = dir.join(format!("partial-{n}-{name}"));
    let status = Command::new(ffmpeg())
        .args(["-y", "-loglevel", "error"])
        .args(input)
        .args(args)
        .arg(&partial)
        .status()
        .expect("ffmpeg");
    assert!(status.success(), "ffmpeg {input:?} {args:?} {name} failed");
    std::fs::rename(&partial, &out).expect("rename");
    out
}

/// A real recording re-encoded: `-i source` then `args`.
pub fn reencode(source: &Path, name: &str, args: &[&str]) -> PathBuf {
    let src = source.display().to_string();
    encode(name, &["-i", &src], args)
}
