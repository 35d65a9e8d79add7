//! An MP4/M4A file's edit list: where the audio a player presents starts in the decoded
//! samples, and how long it lasts. AAC encoders put priming samples before the audio (1024 from
//! ffmpeg, 2112 from Apple's) and padding after it, and say so here; symphonia reads the list
//! but does not apply it, which left every timestamp of an M4A upload 64–130 ms late. ffmpeg
//! (and so faster-whisper) applies it. Read with mp4parse, Firefox's MP4 parser.

use std::io::Cursor;

/// The presented part of the first audio track, in seconds of its decoded samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edit {
    pub start_s: f64,
    pub duration_s: Option<f64>,
}

/// The first audio track's edit, when `bytes` is an MP4 file that has one; `None` otherwise
/// (or when mp4parse cannot read the file, which symphonia then decodes untrimmed).
pub fn audio_edit(bytes: &[u8]) -> Option<Edit> {
    if bytes.get(4..8) != Some(b"ftyp".as_slice()) {
        return None;
    }
    let ctx = mp4parse::read_mp4(&mut Cursor::new(bytes)).ok()?;
    let track = ctx.tracks.iter().find(|t| t.track_type == mp4parse::TrackType::Audio)?;
    let scale = track.timescale.filter(|s| s.0 > 0)?.0;
    let start_s = track.media_time?.0 as f64 / scale as f64;
    // A zero-length edit means "to the end" in files some writers make.
    let duration_s = match (track.edited_duration, ctx.timescale) {
        (Some(d), Some(movie)) if d.0 > 0 && movie.0 > 0 => Some(d.0 as f64 / movie.0 as f64),
        _ => None,
    };
    Some(Edit { start_s, duration_s })
}
