//! WAV files whose writer never went back to fill in their sizes: written to a pipe, or by a
//! recorder that stopped early, they carry 0, 0xFFFFFFFF or a guess where the RIFF and `data`
//! lengths belong. ffmpeg (and so OpenAI's API and faster-whisper) reads such a `data` chunk to
//! the end of the file; symphonia refuses it ("invalid riff length", "chunk length exceeds
//! parent"). The two sizes are set from the file before symphonia probes it: a small fix-up of
//! a header symphonia parses, which no crate offers on its own.

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

/// In a RIFF/WAVE file: a `data` chunk sized 0 or past the end of the file becomes the rest of
/// the file, and a RIFF size too small to hold it grows to the file's. Anything else is left as
/// it is (a chunk before `data` that runs past the end is for symphonia to refuse).
pub fn fill_in_unwritten_sizes(bytes: &mut [u8]) {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return;
    }
    let len = bytes.len();
    let mut at = 12;
    while at + CHUNK_HEAD <= len {
        let Some(size) = u32_at(bytes, at + 4) else { return };
        let body = at + CHUNK_HEAD;
        if &bytes[at..at + 4] == b"data" {
            let rest = len - body;
            let size = if size == 0 || size > rest {
                set_u32(bytes, at + 4, rest);
                rest
            } else {
                size
            };
            let needed = body + size - CHUNK_HEAD;
            if u32_at(bytes, 4).is_some_and(|riff| riff < needed) {
                set_u32(bytes, 4, len - CHUNK_HEAD);
            }
            return;
        }
        // Chunks are padded to an even length.
        match body.checked_add(size).and_then(|e| e.checked_add(size & 1)) {
            Some(next) if next <= len => at = next,
            _ => return,
        }
    }
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
