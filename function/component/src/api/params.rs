//! A request's options with one set of rules for every route: read from the multipart form's
//! text fields (OpenAI's routes) or the percent-decoded query string (`/transcribe`), and checked
//! before any audio is decoded.

use stt_engine::format::{Granularities, ResponseFormat};
use stt_engine::{MAX_BEAMS, Task, TranscribeOptions, VadOptions};

use super::FunctionConfig;
use super::error::ApiError;
use crate::models::Needs;

/// The `model` value OpenAI's clients send; here it means the function's choice.
pub const DEFAULT_ALIAS: &str = "whisper-1";

/// Longest `prompt` accepted, bytes. The decoder reads only its last 223 tokens (about a
/// thousand characters of English); this bounds what a request can make the tokenizer read.
pub const MAX_PROMPT_BYTES: usize = 16 * 1024;

/// The option fields as sent (names as OpenAI's form has them).
#[derive(Debug, Default, Clone)]
pub struct Params {
    pub model: Option<String>,
    pub language: Option<String>,
    pub prompt: Option<String>,
    pub response_format: Option<String>,
    pub temperature: Option<String>,
    pub timestamp_granularities: Vec<String>,
    /// Not OpenAI's: beams at temperature 0 (1 is greedy).
    pub beam_size: Option<String>,
    /// `true`: Server-Sent Events as segments are decoded.
    pub stream: Option<String>,
    /// Not OpenAI's (faster-whisper's name): transcribe only the speech Silero VAD finds.
    pub vad_filter: Option<String>,
}

impl Params {
    /// The options of a query string (`a=b&c=d`, percent- and `+`-decoded).
    pub fn from_query(query: &str) -> Self {
        let mut p = Self::default();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            p.set(&k, v.into_owned());
        }
        p
    }

    /// Records one field; OpenAI ignores fields it does not know, and so do we.
    pub fn set(&mut self, name: &str, value: String) {
        match name {
            "model" => self.model = Some(value),
            "language" => self.language = Some(value),
            "prompt" => self.prompt = Some(value),
            "response_format" => self.response_format = Some(value),
            "temperature" => self.temperature = Some(value),
            "timestamp_granularities[]" | "timestamp_granularities" => {
                self.timestamp_granularities.push(value)
            }
            "beam_size" => self.beam_size = Some(value),
            "stream" => self.stream = Some(value),
            "vad_filter" => self.vad_filter = Some(value),
            _ => {}
        }
    }
}

impl Params {
    /// The fields of a request for one chunk of a long recording: this request's options with
    /// the model and language it resolved to, answered as verbose JSON (segments, and words if
    /// asked for) for the parent to put back together; never streamed, never filtered again.
    pub fn for_chunk(&self, model: &str, language: Option<&str>, words: bool) -> Self {
        let mut granularities = vec!["segment".to_string()];
        if words {
            granularities.push("word".into());
        }
        Self {
            model: Some(model.into()),
            language: Some(language.unwrap_or_default().into()),
            prompt: self.prompt.clone(),
            response_format: Some("verbose_json".into()),
            temperature: self.temperature.clone(),
            timestamp_granularities: granularities,
            beam_size: self.beam_size.clone(),
            stream: None,
            vad_filter: Some("false".into()),
        }
    }

    /// The fields that are set, named as [`Params::set`] reads them.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        let one = [
            ("model", &self.model),
            ("language", &self.language),
            ("prompt", &self.prompt),
            ("response_format", &self.response_format),
            ("temperature", &self.temperature),
            ("beam_size", &self.beam_size),
            ("stream", &self.stream),
            ("vad_filter", &self.vad_filter),
        ];
        let mut fields: Vec<(&'static str, &str)> =
            one.into_iter().filter_map(|(k, v)| Some((k, v.as_deref()?))).collect();
        fields.extend(
            self.timestamp_granularities.iter().map(|g| ("timestamp_granularities[]", g.as_str())),
        );
        fields
    }
}

/// What the response body will be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    OpenAi(ResponseFormat, Granularities),
    /// `stream=true`: text deltas as Server-Sent Events.
    Events,
    /// `/transcribe` without a `response_format`: the guide's JSON.
    TranscribeJson,
}

/// A checked request: what to run and how to answer.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The model named by the request; `None` lets the function choose (see [`Plan::needs`]).
    pub model: Option<String>,
    /// The fields as sent, for the requests of a long recording's chunks.
    pub fields: Params,
    pub options: TranscribeOptions,
    pub output: Output,
}

/// Which route asked, for its defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Transcriptions,
    Translations,
    Transcribe,
}

impl Params {
    /// Checks every field and builds the plan; `served` are the served models' names.
    pub fn plan(
        self,
        config: &FunctionConfig,
        served: &[&str],
        route: Route,
    ) -> Result<Plan, ApiError> {
        let fields = self.clone();
        let model = match self.model.as_deref() {
            None | Some("") | Some(DEFAULT_ALIAS) => None,
            Some(m) if served.contains(&m) => Some(m.to_string()),
            Some(m) => {
                return Err(ApiError::new(
                    400,
                    format!(
                        "model `{m}` is not served here; use `{DEFAULT_ALIAS}` or one of: {}",
                        served.join(", ")
                    ),
                )
                .param("model")
                .code("model_not_found"));
            }
        };
        let format = match self.response_format.as_deref() {
            None => None,
            Some(f) => Some(f.parse::<ResponseFormat>().map_err(|e| {
                ApiError::new(400, format!("response_format {e}")).param("response_format")
            })?),
        };
        // Segments unless only words are asked for, as OpenAI answers.
        let mut granularities = Granularities { segment: false, word: false };
        for g in &self.timestamp_granularities {
            match g.as_str() {
                "segment" => granularities.segment = true,
                "word" if format != Some(ResponseFormat::VerboseJson) => {
                    return Err(ApiError::new(
                        400,
                        "timestamp_granularities[]=word requires response_format=verbose_json",
                    )
                    .param("timestamp_granularities"));
                }
                "word" => granularities.word = true,
                other => {
                    return Err(ApiError::new(
                        400,
                        format!("unknown timestamp granularity `{other}`"),
                    )
                    .param("timestamp_granularities"));
                }
            }
        }
        if !granularities.word {
            granularities.segment = true;
        }
        let stream = flag(self.stream.as_deref(), "stream")?.unwrap_or(false);
        let vad_filter =
            flag(self.vad_filter.as_deref(), "vad_filter")?.unwrap_or(config.vad_filter);
        let output = match (format, route) {
            _ if stream => {
                // The events carry text: formats with timestamps cannot be streamed.
                if !matches!(format, None | Some(ResponseFormat::Json | ResponseFormat::Text))
                    || granularities.word
                {
                    return Err(ApiError::new(
                        400,
                        "stream=true gives text events: response_format must be json or text, without word timestamps",
                    )
                    .param("stream"));
                }
                Output::Events
            }
            (None, Route::Transcribe) => Output::TranscribeJson,
            (f, _) => Output::OpenAi(f.unwrap_or_default(), granularities),
        };
        let beam_size = match self.beam_size.as_deref() {
            None | Some("") => config.beam_size,
            Some(b) => b.parse::<usize>().ok().filter(|b| (1..=MAX_BEAMS).contains(b)).ok_or_else(
                || {
                    ApiError::new(
                        400,
                        format!("beam_size must be a whole number from 1 to {MAX_BEAMS}"),
                    )
                    .param("beam_size")
                },
            )?,
        };
        let temperature = match self.temperature.as_deref() {
            None | Some("") => 0.0,
            Some(t) => {
                t.parse::<f32>().ok().filter(|t| (0.0..=1.0).contains(t)).ok_or_else(|| {
                    ApiError::new(400, "temperature must be a number from 0 to 1")
                        .param("temperature")
                })?
            }
        };
        if self.prompt.as_ref().is_some_and(|p| p.len() > MAX_PROMPT_BYTES) {
            return Err(ApiError::new(
                400,
                format!("the prompt exceeds {MAX_PROMPT_BYTES} bytes; only its end is used"),
            )
            .param("prompt")
            .code("prompt_too_long"));
        }
        let translate = route == Route::Translations;
        // An empty `language` means "detect", as on OpenAI's API; translation's source language
        // is always detected unless given.
        let language = match self.language {
            Some(l) => Some(l),
            None if translate => None,
            None => config.default_language.clone(),
        };
        let options = TranscribeOptions {
            task: if translate { Task::Translate } else { Task::Transcribe },
            language: language.filter(|l| !l.is_empty()),
            initial_prompt: self.prompt,
            beam_size,
            word_timestamps: granularities.word,
            vad: vad_filter.then(VadOptions::default),
            ..TranscribeOptions::default()
        }
        .with_temperature(temperature);
        Ok(Plan { model, fields, options, output })
    }
}

/// A boolean field: `true`/`false` (any case); absent or empty is `None`.
fn flag(value: Option<&str>, name: &'static str) -> Result<Option<bool>, ApiError> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(ApiError::new(400, format!("{name} must be true or false")).param(name)),
    }
}

impl Plan {
    /// What the model must do, for a request that names none.
    pub fn needs(&self) -> Needs {
        let other_language = self.options.language.as_deref().is_some_and(|l| l != "en");
        if self.options.task == Task::Translate || other_language {
            Needs::Multilingual
        } else {
            Needs::Any
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_percent_decoded_and_unknown_keys_ignored() {
        let p = Params::from_query("language=&response_format=verbose%5Fjson&prompt=a+b%20c&x=1");
        assert_eq!(p.language.as_deref(), Some(""));
        assert_eq!(p.response_format.as_deref(), Some("verbose_json"));
        assert_eq!(p.prompt.as_deref(), Some("a b c"));
    }

    #[test]
    fn an_empty_language_means_detect_even_with_a_default() {
        let config = FunctionConfig { default_language: Some("en".into()), ..Default::default() };
        let p = Params { language: Some(String::new()), ..Default::default() };
        let plan = p.plan(&config, &["tiny.en"], Route::Transcribe).expect("plan");
        assert_eq!(plan.options.language, None);
        assert_eq!(plan.output, Output::TranscribeJson);
        let plan =
            Params::default().plan(&config, &["tiny.en"], Route::Transcriptions).expect("plan");
        assert_eq!(plan.options.language.as_deref(), Some("en"));
        assert_eq!((plan.model.clone(), plan.needs()), (None, Needs::Any));
    }

    #[test]
    fn the_model_is_a_served_one_or_the_functions_choice() {
        let config = FunctionConfig::default();
        let served = ["tiny.en", "base"];
        let with = |model: &str, language: &str, route| {
            let p = Params {
                model: Some(model.into()),
                language: Some(language.into()),
                ..Default::default()
            };
            p.plan(&config, &served, route)
        };
        let plan = with("base", "", Route::Transcriptions).expect("served");
        assert_eq!(plan.model.as_deref(), Some("base"));
        let plan = with("whisper-1", "de", Route::Transcriptions).expect("alias");
        assert_eq!((plan.model.clone(), plan.needs()), (None, Needs::Multilingual));
        let plan = with("", "en", Route::Translations).expect("translation");
        assert_eq!(plan.needs(), Needs::Multilingual);
        let e = with("large-v3", "", Route::Transcriptions).expect_err("not served");
        assert_eq!((e.status, e.param, e.code), (400, Some("model"), Some("model_not_found")));
    }

    #[test]
    fn a_chunks_fields_plan_the_same_options_for_one_chunk() {
        let config = FunctionConfig { beam_size: 3, ..Default::default() };
        let served = ["tiny.en", "base"];
        let mut p = Params::default();
        for (k, v) in [
            ("prompt", "Names: Ana, Ivo."),
            ("temperature", "0.4"),
            ("timestamp_granularities[]", "word"),
            ("response_format", "verbose_json"),
            ("vad_filter", "true"),
        ] {
            p.set(k, v.into());
        }
        let parent = p.clone().plan(&config, &served, Route::Translations).expect("parent");
        let mut child = Params::default();
        for (k, v) in parent.fields.for_chunk("base", Some("de"), true).fields() {
            child.set(k, v.to_string());
        }
        let child = child.plan(&config, &served, Route::Translations).expect("child");
        assert_eq!(child.model.as_deref(), Some("base"));
        assert_eq!(child.options.language.as_deref(), Some("de"));
        assert_eq!(child.options.vad, None);
        let same = |o: &TranscribeOptions| {
            (
                o.task,
                o.beam_size,
                o.temperatures.clone(),
                o.initial_prompt.clone(),
                o.word_timestamps,
            )
        };
        assert_eq!(same(&child.options), same(&parent.options));
        let words = Granularities { segment: true, word: true };
        assert_eq!(child.output, Output::OpenAi(ResponseFormat::VerboseJson, words));
    }
}
