//! HTTP for tests and benchmarks: a client that returns 4xx/5xx instead of failing on them,
//! multipart bodies, OpenAI's error shape, Prometheus text.

use std::path::Path;

use serde_json::Value;

/// A client that returns 4xx/5xx responses instead of failing on them.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// A `multipart/form-data` body with `fields` and, if given, a `file` part: (content type, body).
pub fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    stt_contract::multipart::form(fields, file)
}

/// POSTs `body` as `content_type`: the status and the body's text.
pub fn post(agent: &ureq::Agent, url: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let mut r = agent.post(url).header("content-type", content_type).send(body).expect("POST");
    (r.status().as_u16(), r.body_mut().read_to_string().expect("body"))
}

/// GETs `url`: the status and the body's text.
pub fn get(agent: &ureq::Agent, url: &str) -> (u16, String) {
    let mut r = agent.get(url).call().expect("GET");
    (r.status().as_u16(), r.body_mut().read_to_string().expect("body"))
}

/// POSTs a file to `{base}/transcribe` as `content_type`: the status and body.
pub fn post_audio(
    agent: &ureq::Agent,
    base: &str,
    file: &Path,
    content_type: &str,
) -> (u16, String) {
    post(agent, &format!("{base}/transcribe"), content_type, &crate::paths::read(file))
}

/// The OpenAI error object of a JSON error body, checked for its shape.
pub fn openai_error(body: &str) -> Value {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{body}: {e}"));
    let e = v["error"].clone();
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty())
            && e["type"].is_string()
            && e.get("param").is_some()
            && e.get("code").is_some(),
        "not an OpenAI error: {v}"
    );
    e
}

/// One value of a Prometheus text exposition (the first series whose name and labels start so).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()))
}

/// An admin listener's `/metrics` text, or "" when it does not answer.
pub fn scrape(admin: &str) -> String {
    ureq::get(format!("{admin}/metrics"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .unwrap_or_default()
}

/// Lower-case words, punctuation dropped: for comparing transcripts loosely.
pub fn words(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() || c.is_whitespace() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
