//! Reader for CTranslate2's `model.bin` (format version 6).
//!
//! Layout: u32 version, string spec name, u32 revision, u32 variable count, then per variable
//! a string name, u8 rank, rank × u32 dims, u8 dtype, u32 byte count and the raw bytes; then
//! u32 alias count and alias pairs. Strings are a u16 length and bytes ending in a NUL.
//! Nothing is copied: variables borrow the file's bytes.

use thiserror::Error;

/// The only format version this reader understands (the one the pinned packages use).
pub const SUPPORTED_VERSION: u32 = 6;

#[derive(Debug, Error, PartialEq)]
pub enum Ct2Error {
    #[error("model.bin is truncated at byte {offset}: expected {what}")]
    Truncated { offset: usize, what: &'static str },
    #[error("model.bin has format version {0}; only version {SUPPORTED_VERSION} is supported")]
    UnsupportedVersion(u32),
    #[error("model.bin variable `{name}` has unknown dtype code {code}")]
    UnknownDtype { name: String, code: u8 },
    #[error(
        "model.bin variable `{name}`: shape {shape:?} of {dtype:?} needs {expected} bytes, file says {actual}"
    )]
    SizeMismatch { name: String, shape: Vec<usize>, dtype: Dtype, expected: usize, actual: usize },
    #[error("model.bin string at byte {offset} is not UTF-8 or lacks its trailing NUL")]
    BadString { offset: usize },
    #[error("model.bin has {0} trailing bytes after the alias table")]
    TrailingBytes(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl Dtype {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::Bf16,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::Bf16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Variable<'a> {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: Dtype,
    pub data: &'a [u8],
}

impl Variable<'_> {
    /// Rank-0 variables are settings (e.g. `encoder/num_heads`), read as an integer.
    pub fn scalar_i64(&self) -> Option<i64> {
        if !self.shape.is_empty() {
            return None;
        }
        let d = self.data;
        Some(match (self.dtype, d.len()) {
            (Dtype::I8, 1) => d[0] as i8 as i64,
            (Dtype::I16, 2) => i16::from_le_bytes([d[0], d[1]]) as i64,
            (Dtype::I32, 4) => i32::from_le_bytes([d[0], d[1], d[2], d[3]]) as i64,
            _ => return None,
        })
    }
}

#[derive(Debug)]
pub struct Ct2Model<'a> {
    pub spec: String,
    pub revision: u32,
    pub variables: Vec<Variable<'a>>,
    pub aliases: Vec<(String, String)>,
}

impl<'a> Ct2Model<'a> {
    pub fn get(&self, name: &str) -> Option<&Variable<'a>> {
        self.variables.iter().find(|v| v.name == name)
    }

    pub fn setting(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(Variable::scalar_i64)
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Ct2Error> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(Ct2Error::Truncated { offset: self.pos, what }),
        }
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, Ct2Error> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, Ct2Error> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, Ct2Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self, what: &'static str) -> Result<String, Ct2Error> {
        let offset = self.pos;
        let len = self.u16(what)? as usize;
        let bytes = self.take(len, what)?;
        match bytes.split_last() {
            Some((0, text)) => std::str::from_utf8(text)
                .map(str::to_owned)
                .map_err(|_| Ct2Error::BadString { offset }),
            _ => Err(Ct2Error::BadString { offset }),
        }
    }
}

/// Parses a whole `model.bin`. Every length is checked against the bytes that are there,
/// so a truncated or corrupted file is an error, never a panic or a huge allocation.
pub fn parse(buf: &[u8]) -> Result<Ct2Model<'_>, Ct2Error> {
    let mut c = Cursor { buf, pos: 0 };
    let version = c.u32("format version")?;
    if version != SUPPORTED_VERSION {
        return Err(Ct2Error::UnsupportedVersion(version));
    }
    let spec = c.string("spec name")?;
    let revision = c.u32("spec revision")?;
    let count = c.u32("variable count")? as usize;
    // Each variable takes at least 8 bytes, which bounds the allocation by the file size.
    let mut variables = Vec::with_capacity(count.min(buf.len() / 8));
    for _ in 0..count {
        let name = c.string("variable name")?;
        let rank = c.u8("variable rank")? as usize;
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(c.u32("dimension")? as usize);
        }
        let code = c.u8("dtype")?;
        let dtype = Dtype::from_code(code)
            .ok_or_else(|| Ct2Error::UnknownDtype { name: name.clone(), code })?;
        let actual = c.u32("byte count")? as usize;
        let expected =
            shape.iter().try_fold(dtype.size(), |acc, &d| acc.checked_mul(d)).unwrap_or(usize::MAX);
        if expected != actual {
            return Err(Ct2Error::SizeMismatch { name, shape, dtype, expected, actual });
        }
        let data = c.take(actual, "variable data")?;
        variables.push(Variable { name, shape, dtype, data });
    }
    let alias_count = c.u32("alias count")? as usize;
    let mut aliases = Vec::with_capacity(alias_count.min(buf.len() / 8));
    for _ in 0..alias_count {
        let alias = c.string("alias name")?;
        let target = c.string("alias target")?;
        aliases.push((alias, target));
    }
    if c.pos != buf.len() {
        return Err(Ct2Error::TrailingBytes(buf.len() - c.pos));
    }
    Ok(Ct2Model { spec, revision, variables, aliases })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    fn tiny_file() -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&6u32.to_le_bytes());
        string(&mut f, "WhisperSpec");
        f.extend_from_slice(&3u32.to_le_bytes());
        f.extend_from_slice(&2u32.to_le_bytes());
        string(&mut f, "encoder/num_heads");
        f.push(0);
        f.push(2);
        f.extend_from_slice(&2u32.to_le_bytes());
        f.extend_from_slice(&6i16.to_le_bytes());
        string(&mut f, "w");
        f.push(2);
        f.extend_from_slice(&2u32.to_le_bytes());
        f.extend_from_slice(&3u32.to_le_bytes());
        f.push(4);
        f.extend_from_slice(&12u32.to_le_bytes());
        f.extend_from_slice(&[0u8; 12]);
        f.extend_from_slice(&1u32.to_le_bytes());
        string(&mut f, "a");
        string(&mut f, "w");
        f
    }

    #[test]
    fn parses_settings_tensors_and_aliases() {
        let f = tiny_file();
        let m = parse(&f).expect("valid file");
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(m.revision, 3);
        assert_eq!(m.setting("encoder/num_heads"), Some(6));
        assert_eq!(m.get("w").map(|v| v.shape.clone()), Some(vec![2, 3]));
        assert_eq!(m.aliases, vec![("a".to_string(), "w".to_string())]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let f = tiny_file();
        for len in 0..f.len() {
            assert!(parse(&f[..len]).is_err(), "prefix of {len} bytes parsed");
        }
    }

    #[test]
    fn corrupted_byte_count_is_a_size_mismatch() {
        let mut f = tiny_file();
        // The alias table is 12 bytes, `w`'s data 12, and its byte count the 4 before them.
        let at = f.len() - 12 - 12 - 4;
        f[at] = 13;
        assert!(matches!(parse(&f), Err(Ct2Error::SizeMismatch { .. })));
    }

    #[test]
    fn wrong_version_is_named() {
        let mut f = tiny_file();
        f[0] = 5;
        assert_eq!(parse(&f).err(), Some(Ct2Error::UnsupportedVersion(5)));
    }
}
