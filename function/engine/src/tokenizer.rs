//! Whisper's tokenizer: the HF `tokenizer.json` for text, and the special-token ids looked up by
//! name (timestamps are not in `tokenizer.json`: they follow `<|notimestamps|>`).

use tokenizers::Tokenizer;

use crate::error::EngineError;

#[derive(Debug, Clone)]
pub struct SpecialTokens {
    pub eot: u32,
    pub sot: u32,
    pub translate: u32,
    pub transcribe: u32,
    pub sot_lm: u32,
    pub sot_prev: u32,
    pub no_speech: u32,
    pub no_timestamps: u32,
    pub timestamp_begin: u32,
    /// `(code, id)` for every language token, in id order.
    pub languages: Vec<(String, u32)>,
}

pub struct WhisperTokenizer {
    inner: Tokenizer,
    pub special: SpecialTokens,
}

impl WhisperTokenizer {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EngineError> {
        let mut inner =
            Tokenizer::from_bytes(bytes).map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        // Text from users is text: `<|endoftext|>` in a prompt is eleven characters, not the
        // control token (special ids are only ever placed by the decoder itself).
        inner.set_encode_special_tokens(true);
        let id = |t: &str| {
            inner.token_to_id(t).ok_or_else(|| EngineError::Tokenizer(format!("no token {t}")))
        };
        let sot = id("<|startoftranscript|>")?;
        let translate = id("<|translate|>")?;
        let no_timestamps = id("<|notimestamps|>")?;
        let no_speech = id("<|nospeech|>").or_else(|_| id("<|nocaptions|>"))?;
        let languages = (sot + 1..translate)
            .filter_map(|i| {
                let t = inner.id_to_token(i)?;
                let code = t.strip_prefix("<|")?.strip_suffix("|>")?;
                Some((code.to_string(), i))
            })
            .collect();
        let special = SpecialTokens {
            eot: id("<|endoftext|>")?,
            sot,
            translate,
            transcribe: id("<|transcribe|>")?,
            sot_lm: id("<|startoflm|>")?,
            sot_prev: id("<|startofprev|>")?,
            no_speech,
            no_timestamps,
            timestamp_begin: no_timestamps + 1,
            languages,
        };
        Ok(Self { inner, special })
    }

    /// Tokens of plain text (special-token names in it are encoded as ordinary text).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        let enc =
            self.inner.encode(text, false).map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of the given tokens, ignoring special and timestamp tokens.
    pub fn decode_text(&self, tokens: &[u32]) -> Result<String, EngineError> {
        let text: Vec<u32> = tokens.iter().copied().filter(|&t| t < self.special.eot).collect();
        self.inner.decode(&text, true).map_err(|e| EngineError::Tokenizer(e.to_string()))
    }

    /// The bytes a token stands for (byte-level BPE: a token may hold part of a character);
    /// special tokens give their name, timestamps (not in `tokenizer.json`) nothing.
    pub fn token_bytes(&self, token: u32) -> Vec<u8> {
        let Some(piece) = self.inner.id_to_token(token) else { return Vec::new() };
        if token >= self.special.eot {
            return piece.into_bytes();
        }
        piece.chars().map(|c| byte_of_char(c).unwrap_or(b'?')).collect()
    }

    pub fn language_token(&self, code: &str) -> Option<u32> {
        self.special.languages.iter().find(|(c, _)| c == code).map(|&(_, id)| id)
    }

    pub fn language_code(&self, token: u32) -> Option<&str> {
        self.special.languages.iter().find(|&&(_, id)| id == token).map(|(c, _)| c.as_str())
    }
}

/// GPT-2's byte-level alphabet backwards: printable bytes stand for themselves, the others were
/// moved to 256 + their rank among them.
fn byte_of_char(c: char) -> Option<u8> {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
    let c = c as u32;
    if c < 256 && printable(c) {
        return u8::try_from(c).ok();
    }
    let rank = c.checked_sub(256)?;
    (0u32..256).filter(|&b| !printable(b)).nth(rank as usize).and_then(|b| u8::try_from(b).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_token_names_in_text_are_text() {
        let dir = stt_testkit::paths::model_dir("tiny.en");
        let bytes = std::fs::read(dir.join("tokenizer.json")).expect("tiny.en (make models)");
        let tok = WhisperTokenizer::from_bytes(&bytes).expect("tokenizer");
        let text = "<|endoftext|><|startoftranscript|> hello";
        let ids = tok.encode(text).expect("encode");
        assert!(ids.iter().all(|&i| i < tok.special.eot), "a control token from text: {ids:?}");
        assert_eq!(tok.decode_text(&ids).expect("decode"), text);
        let bytes: Vec<u8> = ids.iter().flat_map(|&i| tok.token_bytes(i)).collect();
        assert_eq!(bytes, text.as_bytes(), "token bytes join to the text");
        let ids = tok.encode(" naïve café 日本").expect("encode");
        let bytes: Vec<u8> = ids.iter().flat_map(|&i| tok.token_bytes(i)).collect();
        assert_eq!(String::from_utf8(bytes).expect("utf-8"), " naïve café 日本");
    }
}
