//! The HTTP API as a plain function of a buffered request, so that it is tested natively and
//! served unchanged by the Spin component.

pub mod auth;
pub mod error;
pub mod form;
pub mod params;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use stt_contract::{defaults, routes};
use stt_engine::format::{self, Granularities, Rendered};
use stt_engine::{AudioLimits, Engine, Precision, TranscribeOptions};

use auth::ApiKeys;
use error::ApiError;
use params::{Output, Params, Route};

/// Settings, from Spin variables in the component.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// Model folder (mounted read-only); its name is the served model's name.
    pub model_dir: PathBuf,
    /// Largest accepted upload, bytes (OpenAI's is 25 MiB).
    pub upload_limit: usize,
    /// Longest accepted audio, seconds.
    pub max_duration_s: f64,
    pub default_language: Option<String>,
    /// How the model computes: int8 (default) or f32.
    pub precision: Precision,
    /// When any are set, every route but the health check needs one of them.
    pub api_keys: ApiKeys,
    /// Beams at temperature 0 when a request does not say.
    pub beam_size: usize,
}

impl Default for FunctionConfig {
    fn default() -> Self {
        Self {
            model_dir: PathBuf::from(defaults::model_dir()),
            upload_limit: defaults::UPLOAD_LIMIT_BYTES,
            max_duration_s: defaults::MAX_DURATION_SECONDS,
            default_language: None,
            precision: Precision::default(),
            api_keys: ApiKeys::default(),
            beam_size: defaults::BEAM_SIZE,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl From<ApiError> for Response {
    fn from(e: ApiError) -> Self {
        Self { status: e.status, content_type: "application/json", body: e.body() }
    }
}

fn ok((content_type, body): (&'static str, Vec<u8>)) -> Response {
    Response { status: 200, content_type, body }
}

/// One function instance: its configuration and, once needed, its model.
pub struct Function {
    pub config: FunctionConfig,
    engine: Option<Arc<Engine>>,
    /// Whether the engine came with the instance (a build-time snapshot) or was read from the
    /// model folder by this request.
    preloaded: bool,
    /// Told the seconds decoded so far every minute of audio, then the audio's duration once it
    /// is decoded, before the model runs (the component logs each, which lets a host scale the
    /// instance's CPU budget to the audio's length while a long file decodes).
    audio_observer: fn(f64),
}

impl Function {
    pub fn new(config: FunctionConfig) -> Self {
        Self { config, engine: None, preloaded: false, audio_observer: |_| {} }
    }

    pub fn with_engine(config: FunctionConfig, engine: impl Into<Arc<Engine>>) -> Self {
        Self { config, engine: Some(engine.into()), preloaded: true, audio_observer: |_| {} }
    }

    pub fn observe_audio(mut self, observer: fn(f64)) -> Self {
        self.audio_observer = observer;
        self
    }

    fn engine(&mut self) -> Result<&Engine, ApiError> {
        if self.engine.is_none() {
            let e = Engine::load_dir_with(&self.config.model_dir, self.config.precision)
                .map_err(|e| ApiError::new(503, format!("model unavailable: {e}")))?;
            self.engine = Some(Arc::new(e));
        }
        self.engine.as_deref().ok_or_else(|| ApiError::new(503, "model unavailable"))
    }

    fn model_name(&self) -> String {
        self.config
            .model_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "whisper".into())
    }

    pub fn handle(&mut self, req: Request) -> Response {
        self.route(req).unwrap_or_else(Response::from)
    }

    fn route(&mut self, req: Request) -> Result<Response, ApiError> {
        if req.path != routes::HEALTHZ {
            self.config.api_keys.check(req.authorization.as_deref())?;
        }
        let Some(method) = routes::method(&req.path) else {
            return Err(ApiError::new(404, format!("no route for {} {}", req.method, req.path))
                .code("not_found"));
        };
        if req.method != method {
            return Err(ApiError::new(
                405,
                format!("{} is not allowed on {}", req.method, req.path),
            )
            .code("method_not_allowed"));
        }
        if req.body.len() > self.config.upload_limit {
            return Err(ApiError::new(
                413,
                format!("the upload exceeds the limit of {} bytes", self.config.upload_limit),
            )
            .param("file")
            .code("file_too_large"));
        }
        match req.path.as_str() {
            routes::HEALTHZ => Ok(ok(("application/json", br#"{"status":"ok"}"#.to_vec()))),
            routes::MODELS => {
                let (name, preloaded) = (self.model_name(), self.preloaded);
                let e = self.engine()?;
                let body = json!({ "object": "list", "data": [{
                    "id": name, "object": "model", "owned_by": "stt-edge",
                    "parameters": e.model.parameter_count(),
                    "multilingual": e.model.config.is_multilingual(),
                    "weights": if preloaded { "preloaded" } else { "loaded_per_request" },
                    "precision": e.model.precision.to_string(),
                }]});
                Ok(ok(("application/json", body.to_string().into_bytes())))
            }
            routes::TRANSCRIBE => self.transcribe_endpoint(req),
            path => {
                let route = if path == routes::TRANSLATIONS {
                    Route::Translations
                } else {
                    Route::Transcriptions
                };
                self.openai(req.content_type.as_deref(), req.body, route)
            }
        }
    }

    fn run(
        &mut self,
        audio: Vec<u8>,
        o: TranscribeOptions,
    ) -> Result<stt_engine::Transcript, ApiError> {
        let limits = AudioLimits { max_duration_s: self.config.max_duration_s };
        let observer = self.audio_observer;
        let pcm = stt_engine::audio::load_observed(audio, limits, &mut |s| observer(s))
            .map_err(stt_engine::EngineError::from)?;
        (self.audio_observer)(pcm.duration_s());
        Ok(self.engine()?.transcribe_pcm(pcm.samples, &o)?)
    }

    fn openai(
        &mut self,
        content_type: Option<&str>,
        body: Vec<u8>,
        route: Route,
    ) -> Result<Response, ApiError> {
        let ct =
            content_type.filter(|c| c.starts_with("multipart/form-data")).ok_or_else(|| {
                ApiError::new(400, "the request must be multipart/form-data with a `file` field")
            })?;
        let f = form::parse(ct, body)?;
        let file = f
            .file
            .ok_or_else(|| ApiError::new(400, "the `file` field is required").param("file"))?;
        let plan = f.params.plan(&self.config, &self.model_name(), route)?;
        let t = self.run(file, plan.options)?;
        Ok(ok(render_output(&t, plan.output)))
    }

    fn transcribe_endpoint(&mut self, req: Request) -> Result<Response, ApiError> {
        let ct = req.content_type.as_deref().unwrap_or("application/octet-stream");
        if ct.starts_with("multipart/form-data") {
            return self.openai(Some(ct), req.body, Route::Transcribe);
        }
        if !(ct.starts_with("audio/") || ct.starts_with("application/octet-stream")) {
            return Err(ApiError::new(
                415,
                format!("content type `{ct}` is not audio/* or application/octet-stream"),
            ));
        }
        // The options are checked before the audio is touched.
        let plan = Params::from_query(&req.query).plan(
            &self.config,
            &self.model_name(),
            Route::Transcribe,
        )?;
        let t = self.run(req.body, plan.options)?;
        Ok(ok(render_output(&t, plan.output)))
    }
}

fn render_output(t: &stt_engine::Transcript, output: Output) -> (&'static str, Vec<u8>) {
    match output {
        Output::OpenAi(f, g) => {
            let Rendered { content_type, body } = format::render(t, f, g);
            (content_type, body)
        }
        // The guide's `/transcribe` body: the verbose JSON without `task`.
        Output::TranscribeJson => {
            let mut v = format::verbose_json(t, Granularities::default());
            if let Some(o) = v.as_object_mut() {
                o.remove("task");
            }
            ("application/json", v.to_string().into_bytes())
        }
    }
}
