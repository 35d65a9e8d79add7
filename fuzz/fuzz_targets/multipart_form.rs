//! Any body as `multipart/form-data` (the boundary taken from the input's first line), then its
//! options checked as a request would: an `ApiError` or a plan, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stt_component::api::FunctionConfig;
use stt_component::api::form;
use stt_component::api::params::Route;

fuzz_target!(|data: &[u8]| {
    let (first, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"x"[..], data),
    };
    let boundary = String::from_utf8_lossy(first);
    let content_type = format!("multipart/form-data; boundary={boundary}");
    if let Ok(f) = form::parse(&content_type, body.to_vec()) {
        let _ = f.params.plan(&FunctionConfig::default(), &["tiny.en", "base"], Route::Transcriptions);
    }
});
