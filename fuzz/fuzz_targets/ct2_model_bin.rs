//! Any bytes as a CTranslate2 `model.bin`: a parsed model or a `Ct2Error`, never a panic or an
//! allocation larger than the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = stt_models::ct2::parse(data) {
        let _ = m.setting("num_heads");
    }
});
