//! Any query string through `/transcribe`'s option parsing and checks, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stt_component::api::FunctionConfig;
use stt_component::api::params::{Params, Route};

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);
    let _ = Params::from_query(&query).plan(&FunctionConfig::default(), &["tiny.en", "base"], Route::Transcribe);
});
