//! Audio files the shared data does not have, made from it with a real encoder: the ffmpeg that
//! the `imageio-ffmpeg` package ships (`make pydeps`). Each file is made once per test process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Numbers the files being written, so that no two writers share one.
static NEXT: AtomicUsize = AtomicUsize::new(0);

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
    let n = NEXT.fetch_add(1, Relaxed);
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

/// AAC-LC at 24 kHz mono: what [`signalled_as_he_aac`] takes.
pub const AAC_LC_24K: [&str; 8] = ["-ar", "24000", "-ac", "1", "-c:a", "aac", "-b:a", "48k"];

/// `lc` (ffmpeg's AAC-LC M4A made with [`AAC_LC_24K`]) beside itself with its AudioSpecificConfig
/// rewritten to signal HE-AAC explicitly over the same core (object type `aot`: 5 SBR, 29 SBR
/// and parametric stereo; output 48 kHz): a file FFmpeg reads as HE-AAC, with the core's frames
/// and no SBR data in them. (No HE-AAC encoder is at hand.)
pub fn signalled_as_he_aac(lc: &Path, aot: u8) -> PathBuf {
    let m4a = std::fs::read(lc).expect("the AAC-LC file");
    let out = lc.with_extension(format!("he{aot}.m4a"));
    // Written aside and renamed, as `encode` writes: tests of one process may read it meanwhile.
    let partial = lc.with_extension(format!("he{aot}.{}.partial", NEXT.fetch_add(1, Relaxed)));
    std::fs::write(&partial, he_aac_config(&m4a, aot)).expect("write");
    std::fs::rename(&partial, &out).expect("rename");
    out
}

/// FFmpeg writes each descriptor length in four bytes and the movie box after the media, so only
/// lengths and box sizes change, not chunk offsets.
fn he_aac_config(m4a: &[u8], aot: u8) -> Vec<u8> {
    let find = |pat: &[u8], end: usize| m4a[..end].windows(pat.len()).rposition(|w| w == pat);
    let info = find(&[0x05, 0x80, 0x80, 0x80, 0x05, 0x13, 0x08], m4a.len()).expect("LC config");
    // aot, core 24 kHz (index 6), mono, output 48 kHz (index 3), AAC-LC, GASpecificConfig 0.
    let config = [(aot << 3) | 0b011, 0x09, 0x88, 0x00];
    let delta = config.len() as i64 - 5;
    let mut out = m4a.to_vec();
    out.splice(info + 4..info + 10, std::iter::once(config.len() as u8).chain(config));
    for tag in [0x04, 0x03] {
        let at = find(&[tag, 0x80, 0x80, 0x80], info).expect("descriptor") + 4;
        out[at] = (i64::from(out[at]) + delta) as u8;
    }
    // Every box around the config grows by `delta` (header sizes of the boxes on the way).
    let (mut at, mut end) = (0, m4a.len());
    let mut media_before = false;
    while at < end {
        let size = u32::from_be_bytes(m4a[at..at + 4].try_into().expect("size")) as usize;
        let kind = &m4a[at + 4..at + 8];
        media_before |= kind == b"mdat";
        if (at..at + size).contains(&info) {
            assert!(media_before, "the media must come before the config");
            out[at..at + 4].copy_from_slice(&((size as i64 + delta) as u32).to_be_bytes());
            let header = match kind {
                b"stsd" => 16,
                b"mp4a" => 36,
                b"esds" => break,
                _ => 8,
            };
            (at, end) = (at + header, at + size);
        } else {
            at += size;
        }
    }
    out
}
