//! The function's configuration from Spin variables (`spin.toml`, `SPIN_VARIABLE_*`), read the
//! same way by each request and by the build-time preload.

use crate::api::auth::ApiKeys;
use crate::api::{FunctionConfig, model_list};
use stt_contract::cors::{self, Origins};

/// A Spin variable, or `None` when it is unset or the host has none.
fn var(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok().filter(|v| !v.trim().is_empty())
}

pub(crate) fn config() -> FunctionConfig {
    let d = FunctionConfig::default();
    FunctionConfig {
        models: var("models").map(|m| model_list(&m)).filter(|m| !m.is_empty()).unwrap_or(d.models),
        upload_limit: var("upload_limit_bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(d.upload_limit),
        max_duration_s: var("max_duration_seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(d.max_duration_s),
        default_language: var("default_language"),
        precision: var("precision").and_then(|v| v.parse().ok()).unwrap_or(d.precision),
        api_keys: var("api_keys").map(|k| ApiKeys::parse(&k)).unwrap_or(d.api_keys),
        beam_size: var("beam_size")
            .and_then(|v| v.parse().ok())
            .filter(|b| (1..=stt_engine::MAX_BEAMS).contains(b))
            .unwrap_or(d.beam_size),
        vad_filter: var("vad_filter").and_then(|v| v.parse().ok()).unwrap_or(d.vad_filter),
        cors: var(cors::VARIABLE).map(|o| Origins::parse(&o)).unwrap_or(d.cors),
        chunk_above_s: var("chunk_above_seconds")
            .and_then(|v| v.parse().ok())
            .filter(|s: &f64| !s.is_nan())
            .unwrap_or(d.chunk_above_s),
        fanout_width: var("fanout_width")
            .and_then(|v| v.parse().ok())
            .filter(|w| *w >= 1)
            .unwrap_or(d.fanout_width),
        ..d
    }
}
