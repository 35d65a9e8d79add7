//! Any text as `spin.toml` through the host's manifest reader, then routed: an error or an app,
//! never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use stt_host::manifest::App;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(app) = App::parse(text, Path::new("/app/spin.toml")) {
        for path in ["/", "/v1/models", "/hog/x", ""] {
            let _ = app.route(path);
        }
    }
});
