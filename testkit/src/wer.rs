//! Word error rate after a Whisper-style English normalisation, and the long-form clip the
//! tests and benchmarks join from the dev set.
//!
//! The normaliser follows the spirit of Whisper's `EnglishTextNormalizer` where it matters for
//! scoring plain speech: lower case, bracketed asides dropped, punctuation and symbols removed
//! (apostrophes of contractions kept, hyphens split words), a few spelled-out number words
//! collapsed to digits, and British spellings mapped to American for the common endings.

fn number_word(w: &str) -> Option<u64> {
    Some(match w {
        "zero" => 0,
        "one" => 1,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "thirteen" => 13,
        "fourteen" => 14,
        "fifteen" => 15,
        "sixteen" => 16,
        "seventeen" => 17,
        "eighteen" => 18,
        "nineteen" => 19,
        "twenty" => 20,
        "thirty" => 30,
        "forty" => 40,
        "fifty" => 50,
        "sixty" => 60,
        "seventy" => 70,
        "eighty" => 80,
        "ninety" => 90,
        _ => return None,
    })
}

/// British stems and their American spelling (a small part of Whisper's spelling map).
const SPELLINGS: &[(&str, &str)] = &[
    ("colour", "color"),
    ("favour", "favor"),
    ("honour", "honor"),
    ("splendour", "splendor"),
    ("behaviour", "behavior"),
    ("labour", "labor"),
    ("neighbour", "neighbor"),
    ("centre", "center"),
    ("metre", "meter"),
    ("theatre", "theater"),
    ("organis", "organiz"),
    ("realis", "realiz"),
    ("recognis", "recogniz"),
];

fn americanize(w: &str) -> String {
    for (uk, us) in SPELLINGS {
        if let Some(rest) = w.strip_prefix(uk) {
            return format!("{us}{rest}");
        }
    }
    w.to_string()
}

/// Normalises English text into comparable words.
pub fn normalize_english(text: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len());
    let mut depth = 0i32;
    for c in text.to_lowercase().chars() {
        match c {
            '[' | '(' | '<' => depth += 1,
            ']' | ')' | '>' => depth = (depth - 1).max(0),
            _ if depth > 0 => {}
            '\'' | '’' => cleaned.push('\''),
            c if c.is_alphanumeric() => cleaned.push(c),
            '.' | ',' => cleaned.push(c),
            _ => cleaned.push(' '),
        }
    }
    let mut words: Vec<String> = Vec::new();
    for raw in cleaned.split_whitespace() {
        // Keep decimal points and thousands separators inside numbers only.
        let w: String = raw
            .char_indices()
            .filter(|&(i, c)| {
                if c == '.' || c == ',' {
                    let prev = raw[..i].chars().last().is_some_and(|p| p.is_ascii_digit());
                    let next = raw[i + 1..].chars().next().is_some_and(|n| n.is_ascii_digit());
                    prev && next
                } else {
                    true
                }
            })
            .map(|(_, c)| c)
            .collect();
        let w = w.replace(',', "");
        let w = w.trim_matches('\'').to_string();
        if w.is_empty() {
            continue;
        }
        words.push(americanize(&w));
    }
    // Spelled numbers: "twenty five" → "25", "seven" → "7".
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if let Some(n) = number_word(&words[i]) {
            let mut value = n;
            if n >= 20
                && n % 10 == 0
                && let Some(u) =
                    words.get(i + 1).and_then(|w| number_word(w)).filter(|&u| (1..10).contains(&u))
            {
                value += u;
                i += 1;
            }
            out.push(value.to_string());
        } else {
            out.push(words[i].clone());
        }
        i += 1;
    }
    out
}

/// Edit distance (substitutions + deletions + insertions) between two sequences: of words for
/// WER, of characters for CER.
pub fn edit_distance<T: PartialEq>(reference: &[T], hypothesis: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut cur = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(r != h)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[hypothesis.len()]
}

/// Corpus WER over (reference, hypothesis) pairs: total errors over total reference words.
pub fn corpus_wer<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> (usize, usize) {
    pairs.into_iter().fold((0, 0), |(errors, words), (r, h)| {
        let (r, h) = (normalize_english(r), normalize_english(h));
        (errors + edit_distance(&r, &h), words + r.len())
    })
}

/// The characters of `text` a character error rate counts, in any language: letters and digits
/// in lower case, without spaces or punctuation (which scripts such as Chinese and Japanese do
/// not use between words, and transcribers place differently).
pub fn normalize_chars(text: &str) -> Vec<char> {
    text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Corpus CER over (reference, hypothesis) pairs: total character errors over total reference
/// characters, after [`normalize_chars`].
pub fn corpus_cer<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> (usize, usize) {
    pairs.into_iter().fold((0, 0), |(errors, chars), (r, h)| {
        let (r, h) = (normalize_chars(r), normalize_chars(h));
        (errors + edit_distance(&r, &h), chars + r.len())
    })
}

/// Fewest edits that turn `needle` into some contiguous run of `haystack` (free start and end).
pub fn substring_edit_distance(needle: &[String], haystack: &[String]) -> usize {
    let mut prev = vec![0usize; haystack.len() + 1];
    for (i, n) in needle.iter().enumerate() {
        let mut cur = vec![i + 1; haystack.len() + 1];
        for (j, h) in haystack.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(n != h)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev.into_iter().min().unwrap_or(needle.len())
}

/// Dev clips that, joined half a second apart, make the 83 s long-form clip of the tests and
/// benchmarks (clips tiny.en transcribes well alone, so misses come from long-form handling).
pub const LONG_FORM_CLIPS: &[&str] = &[
    "jfk.flac",
    "ls_test-clean_1995-1837-0001.wav",
    "fleurs_en_000.ogg",
    "fleurs_en_005.ogg",
    "fleurs_en_006.ogg",
    "fleurs_en_008.ogg",
    "leopard_test_en.wav",
    "fleurs_en_009.ogg",
];

/// Decodes the named clips of `dir` and joins them, half a second of silence after each.
pub fn join_clips(
    dir: &std::path::Path,
    names: &[&str],
) -> Result<Vec<f32>, stt_engine::EngineError> {
    let mut pcm = Vec::new();
    for name in names {
        let bytes = crate::paths::read(&dir.join(name));
        pcm.extend(stt_engine::audio::load(bytes, stt_engine::AudioLimits::default())?.samples);
        pcm.extend(std::iter::repeat_n(0.0, 8_000));
    }
    Ok(pcm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_errors_ignore_case_spaces_and_punctuation() {
        assert_eq!(normalize_chars("Hong Kong, 1961!"), "hongkong1961".chars().collect::<Vec<_>>());
        assert_eq!(corpus_cer([("Für die Insel.", "fur die insel")]), (1, 11));
        assert_eq!(corpus_cer([("東京へ行く。", "東京に行く")]), (1, 5));
    }

    #[test]
    fn normalises_case_punctuation_and_numbers() {
        assert_eq!(
            normalize_english("Mr. Quilter's [laughs] twenty-five, colours!"),
            vec!["mr", "quilter's", "25", "colors"]
        );
        assert_eq!(
            normalize_english("lag behind by 25 to 30 year"),
            normalize_english("Lag behind by twenty five to thirty year.")
        );
        assert_eq!(normalize_english("3.5 million, 1,000"), vec!["3.5", "million", "1000"]);
    }

    #[test]
    fn wer_counts_edits() {
        let (e, n) = corpus_wer([("the cat sat", "the cat sat"), ("a b c d", "a x c")]);
        assert_eq!((e, n), (2, 7));
    }
}
