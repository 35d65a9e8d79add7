//! The reference's gzip-style repetition check: bytes of text over bytes of its zlib stream.

use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;

pub fn compression_ratio(text: &str) -> f32 {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return 0.0;
    }
    let mut enc = ZlibEncoder::new(Vec::new(), Compression::default());
    // Writing to a Vec cannot fail.
    let compressed =
        enc.write_all(bytes).and_then(|_| enc.finish()).map(|v| v.len()).unwrap_or(bytes.len());
    bytes.len() as f32 / compressed.max(1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_close_to_cpython_zlib() {
        // (text, len(text) / len(zlib.compress(text))) from CPython 3.11.
        let jfk = " And so my fellow Americans ask not what your country can do for you ask what you can do for your country";
        let looped = " I am going to the store.".repeat(5);
        let cases = [
            ("hello ".repeat(50), 300.0 / 18.0),
            (jfk.to_string(), 105.0 / 76.0),
            (looped, 125.0 / 36.0),
        ];
        for (text, want) in cases {
            let got = compression_ratio(&text);
            assert!((got - want).abs() <= 0.15 * want, "{got} vs {want} for {text:?}");
        }
        assert!((compression_ratio(jfk) - 105.0 / 76.0).abs() < 1e-6);
        assert_eq!(compression_ratio(""), 0.0);
    }
}
