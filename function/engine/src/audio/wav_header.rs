//! What the engine reads from a WAV header itself, beside symphonia:
//!
//! - Sizes the writer never went back to fill in: written to a pipe, or by a recorder that
//!   stopped early, a file carries 0, 0xFFFFFFFF or a guess where the RIFF and `data` lengths
//!   belong. ffmpeg (and so OpenAI's API and faster-whisper) reads such a `data` chunk to the end
//!   of the file; symphonia refuses it ("invalid riff length", "chunk length exceeds parent").
//!   The two sizes are set from the file before symphonia probes it.
//! - Whether the file names its channels: symphonia gives a plain header's channels the first
//!   N positions of the WAVE mask, indistinguishable from an extensible header whose mask is
//!   those positions; FFmpeg gives the first its default layout and the second its mask, and the
//!   mono mix follows the layout.
//!
//! Small readings of a header symphonia parses, which no crate offers on their own.

/// Bytes of a chunk's id and size.
const CHUNK_HEAD: usize = 8;

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(b)).ok()
}

fn set_u32(bytes: &mut [u8], at: usize, value: usize) {
    let v = u32::try_from(value).unwrap_or(u32::MAX);
    if let Some(b) = bytes.get_mut(at..at + 4) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

/// The chunks of a RIFF/WAVE file up to and including `data`: id, body offset and size as
/// written. Ends at `data`, or at a chunk whose size runs past the end of the file (yielded, for
/// a caller to bound its reads); nothing for other files.
fn chunks(bytes: &[u8]) -> impl Iterator<Item = ([u8; 4], usize, usize)> + '_ {
    let wave = bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE";
    let len = bytes.len();
    let mut at = if wave { 12 } else { len };
    std::iter::from_fn(move || {
        let id: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        let size = u32_at(bytes, at + 4)?;
        let body = at + CHUNK_HEAD;
        // Chunks are padded to an even length.
        at = match body.checked_add(size).and_then(|e| e.checked_add(size & 1)) {
            Some(next) if next <= len && &id != b"data" => next,
            _ => len,
        };
        Some((id, body, size))
    })
}

/// In a RIFF/WAVE file: a `data` chunk sized 0 or past the end of the file becomes the rest of
/// the file, and a RIFF size too small to hold it grows to the file's. Anything else is left as
/// it is (a chunk before `data` that runs past the end is for symphonia to refuse).
pub fn fill_in_unwritten_sizes(bytes: &mut [u8]) {
    let len = bytes.len();
    let Some((_, body, size)) = chunks(bytes).find(|(id, ..)| id == b"data") else { return };
    let rest = len - body;
    let size = if size == 0 || size > rest {
        set_u32(bytes, body - 4, rest);
        rest
    } else {
        size
    };
    let needed = body + size - CHUNK_HEAD;
    if u32_at(bytes, 4).is_some_and(|riff| riff < needed) {
        set_u32(bytes, 4, len - CHUNK_HEAD);
    }
}

/// `WAVE_FORMAT_EXTENSIBLE`.
const EXTENSIBLE: u16 = 0xFFFE;

/// Whether a RIFF/WAVE file names its channels as FFmpeg reads them: an extensible `fmt ` whose
/// channel mask has one position per channel does; a plain PCM or float header (or a mask of
/// none) does not, and FFmpeg gives it its default layout for the count. `None` for other files.
pub fn names_its_channels(bytes: &[u8]) -> Option<bool> {
    let (_, body, size) = chunks(bytes).find(|(id, ..)| id == b"fmt ")?;
    let fmt = bytes.get(body..body.saturating_add(size).min(bytes.len()))?;
    let u16_at = |at: usize| fmt.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let (tag, channels) = (u16_at(0)?, u16_at(2)?);
    if tag != EXTENSIBLE {
        return Some(false);
    }
    // After the 18 bytes of WAVEFORMATEX: valid bits (2 bytes), then the mask.
    let mask = fmt.get(20..24).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    Some(mask.is_some_and(|m| m != 0 && m.count_ones() == u32::from(channels)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(riff: u32, extra: &[u8], data_size: u32, data: &[u8]) -> Vec<u8> {
        let mut v = b"RIFF".to_vec();
        v.extend(riff.to_le_bytes());
        v.extend(b"WAVEfmt ");
        v.extend(16u32.to_le_bytes());
        v.extend([1, 0, 1, 0, 0x80, 0x3e, 0, 0, 0, 0x7d, 0, 0, 2, 0, 16, 0]);
        v.extend(extra);
        v.extend(b"data");
        v.extend(data_size.to_le_bytes());
        v.extend(data);
        v
    }

    fn sizes(v: &[u8]) -> (usize, usize) {
        let data = v.windows(4).rposition(|w| w == b"data").expect("data");
        (u32_at(v, 4).expect("riff"), u32_at(v, data + 4).expect("size"))
    }

    #[test]
    fn unwritten_sizes_become_the_files() {
        let pcm = [7u8; 100];
        for (riff, data) in [(0, 0), (u32::MAX, u32::MAX), (0, 100), (136, u32::MAX), (36, 0)] {
            let mut v = wav(riff, &[], data, &pcm);
            fill_in_unwritten_sizes(&mut v);
            let (r, d) = sizes(&v);
            assert_eq!(d, 100, "riff {riff:#x} data {data:#x}");
            assert!(r >= v.len() - 8, "riff {riff:#x} data {data:#x}: {r}");
        }
    }

    #[test]
    fn a_chunk_before_data_is_walked_with_its_pad_byte() {
        let odd = [b'j', b'u', b'n', b'k', 3, 0, 0, 0, 1, 2, 3, 0];
        let mut v = wav(0, &odd, 0, &[1u8; 50]);
        fill_in_unwritten_sizes(&mut v);
        assert_eq!(sizes(&v), (v.len() - 8, 50));
    }

    /// A header as `fmt ` bytes: plain PCM (16 bytes) or extensible (40) with `mask`.
    fn with_fmt(fmt: &[u8]) -> Vec<u8> {
        let mut v = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        v.extend((fmt.len() as u32).to_le_bytes());
        v.extend(fmt);
        v.extend(b"data\x04\0\0\0\0\0\0\0");
        v
    }

    fn extensible(channels: u16, mask: u32) -> Vec<u8> {
        let mut fmt = vec![0xFE, 0xFF];
        fmt.extend(channels.to_le_bytes());
        fmt.extend([0x80, 0x3e, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 22, 0, 16, 0]);
        fmt.extend(mask.to_le_bytes());
        fmt.extend([1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71]);
        with_fmt(&fmt)
    }

    #[test]
    fn an_extensible_mask_with_a_position_per_channel_names_them() {
        assert_eq!(names_its_channels(&extensible(3, 0b111)), Some(true));
        assert_eq!(names_its_channels(&extensible(8, 0xFF)), Some(true));
        assert_eq!(names_its_channels(&extensible(3, 0)), Some(false));
        assert_eq!(names_its_channels(&extensible(3, 0b1011_0000)), Some(true));
        assert_eq!(names_its_channels(&extensible(3, 0b11)), Some(false));
        let plain = with_fmt(&[1, 0, 3, 0, 0x80, 0x3e, 0, 0, 0, 0, 0, 0, 6, 0, 16, 0]);
        assert_eq!(names_its_channels(&plain), Some(false));
        // Cut inside the mask, or not a WAV file at all.
        assert_eq!(names_its_channels(&extensible(3, 7)[..40]), Some(false));
        assert_eq!(names_its_channels(b"fLaC\0\0\0\x22"), None);
        assert_eq!(names_its_channels(&[]), None);
    }

    #[test]
    fn written_sizes_and_other_files_are_left_alone() {
        // Right sizes are kept; a truncated upload keeps its RIFF size (its `data` becomes what
        // arrived); a chunk before `data` running past the end, and other files, are untouched.
        let right = wav(36 + 40, &[], 40, &[3u8; 40]);
        let truncated = wav(36 + 4000, &[], 4000, &[3u8; 40]);
        let mut v = right.clone();
        fill_in_unwritten_sizes(&mut v);
        assert_eq!(v, right);
        let mut v = truncated.clone();
        fill_in_unwritten_sizes(&mut v);
        assert_eq!(sizes(&v), (36 + 4000, 40));
        let long_junk = [b'j', b'u', b'n', b'k', 0xff, 0xff, 0, 0];
        let odd = wav(0, &long_junk, 0, &[1u8; 50]);
        let mut v = odd.clone();
        fill_in_unwritten_sizes(&mut v);
        assert_eq!(v, odd);
        for other in [b"fLaC\0\0\0\x22".to_vec(), b"RIFF".to_vec(), Vec::new()] {
            let mut v = other.clone();
            fill_in_unwritten_sizes(&mut v);
            assert_eq!(v, other);
        }
    }
}
