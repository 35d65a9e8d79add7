//! Any bytes through the audio front end (probe, demux, decode, resample): an answer or an
//! `AudioError`, never a panic, a hang or an allocation the duration limit does not bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stt_engine::AudioLimits;

fuzz_target!(|data: &[u8]| {
    // A short limit keeps each run fast (a valid file stops at 8 s with TooLong); the limit's
    // checks are the same at any length.
    let limits = AudioLimits { max_duration_s: 8.0 };
    if let Ok(pcm) = stt_engine::audio::load(data.to_vec(), limits) {
        assert!(pcm.duration_s() <= 8.0 + 0.1);
        assert!(pcm.samples.iter().all(|s| s.is_finite()));
    }
});
