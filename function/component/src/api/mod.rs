//! The HTTP API as a plain function of a buffered request, so that it is tested natively and
//! served unchanged by the Spin component.

pub mod auth;
pub mod chunks;
pub mod cors;
pub mod error;
pub mod form;
pub mod params;

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::json;
use stt_contract::{defaults, headers, routes};
use stt_engine::format::{self, Granularities, Rendered, events};
use stt_engine::{AudioLimits, Precision};

use crate::models::{Model, Models};
use auth::ApiKeys;
use chunks::{Dispatch, LongAudio};
use error::ApiError;
use params::{Output, Params, Plan, Route};
use stt_contract::cors::Origins;

/// Settings, from Spin variables in the component.
#[derive(Debug, Clone)]
pub struct FunctionConfig {
    /// Where the model folders are (mounted read-only).
    pub models_root: PathBuf,
    /// The served models, folders under `models_root`; the first is the default.
    pub models: Vec<String>,
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
    /// Voice activity detection when a request does not say (`vad_filter`).
    pub vad_filter: bool,
    /// Origins browsers may call the API from.
    pub cors: Origins,
    /// Audio longer than this, seconds (and than a chunk, 30 s), is transcribed in chunks cut at
    /// pauses.
    pub chunk_above_s: f64,
    /// Chunk requests a long recording keeps in flight at once.
    pub fanout_width: usize,
}

/// A comma- or whitespace-separated list of model names.
pub fn model_list(s: &str) -> Vec<String> {
    stt_contract::variables::items(s).map(str::to_string).collect()
}

impl Default for FunctionConfig {
    fn default() -> Self {
        Self {
            models_root: PathBuf::from(defaults::MODELS_MOUNT),
            models: model_list(defaults::MODELS),
            upload_limit: defaults::UPLOAD_LIMIT_BYTES,
            max_duration_s: defaults::MAX_DURATION_SECONDS,
            default_language: None,
            precision: Precision::default(),
            api_keys: ApiKeys::default(),
            beam_size: defaults::BEAM_SIZE,
            vad_filter: defaults::VAD_FILTER,
            cors: Origins::None,
            chunk_above_s: defaults::CHUNK_ABOVE_SECONDS,
            fanout_width: defaults::FANOUT_WIDTH,
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
    /// The `Origin` header (browsers), if any.
    pub origin: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    /// Headers beyond the content type (metering, CORS).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// A body written while the model runs, after `body` (`stream=true`).
    pub stream: Option<EventStream>,
}

/// The events of a streamed transcription: the model runs when the stream is written, and each
/// event goes to the writer as soon as it exists.
pub struct EventStream(Box<dyn for<'a> FnOnce(&mut EventWriter<'a>)>);

/// Where a stream's bytes go, piece by piece; `false` once the reader is gone.
pub type EventWriter<'a> = dyn FnMut(&[u8]) -> bool + 'a;

impl EventStream {
    pub fn write_to(self, out: &mut EventWriter<'_>) {
        (self.0)(out)
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventStream")
    }
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl From<ApiError> for Response {
    fn from(e: ApiError) -> Self {
        Self {
            status: e.status,
            content_type: "application/json",
            headers: vec![],
            body: e.body(),
            stream: None,
        }
    }
}

/// A model folder that cannot be read: the deployment's fault, not the client's.
fn model_unavailable(e: stt_engine::EngineError) -> ApiError {
    ApiError::new(503, format!("model unavailable: {e}"))
}

fn ok((content_type, body): (&'static str, Vec<u8>)) -> Response {
    Response { status: 200, content_type, headers: vec![], body, stream: None }
}

/// One function instance: its configuration and its models.
pub struct Function {
    pub config: FunctionConfig,
    models: Models,
    /// `sha256:<hex>` of the function's code, when the snapshot recorded it.
    component_digest: Option<String>,
    /// Told the seconds decoded so far every minute of audio, then the audio's duration once it
    /// is decoded, before the model runs (the component logs each, which lets a host scale the
    /// instance's CPU budget to the audio's length while a long file decodes).
    audio_observer: fn(f64),
    /// Where a long recording's chunks are sent; without it they are transcribed here.
    dispatch: Option<Rc<dyn Dispatch>>,
}

impl Function {
    /// Every model read from its folder when a request first needs it.
    pub fn new(config: FunctionConfig) -> Self {
        Self::with_models(config, &[])
    }

    /// With models already loaded (a build-time snapshot's, or a test's); the configured models
    /// that are not among them are read per request.
    pub fn with_models(config: FunctionConfig, preloaded: &[Arc<Model>]) -> Self {
        let models =
            Models::new(config.models_root.clone(), &config.models, config.precision, preloaded);
        Self { config, models, component_digest: None, audio_observer: |_| {}, dispatch: None }
    }

    pub fn component_digest(mut self, digest: Option<String>) -> Self {
        self.component_digest = digest;
        self
    }

    pub fn observe_audio(mut self, observer: fn(f64)) -> Self {
        self.audio_observer = observer;
        self
    }

    /// Sends a long recording's chunks to other instances through `dispatch`.
    pub fn dispatch(mut self, dispatch: Rc<dyn Dispatch>) -> Self {
        self.dispatch = Some(dispatch);
        self
    }

    fn model(&mut self, name: &str) -> Result<Arc<Model>, ApiError> {
        self.models.get(name).map_err(model_unavailable)
    }

    pub fn handle(&mut self, req: Request) -> Response {
        let origin = req.origin.clone();
        let mut r = self.route(req).unwrap_or_else(Response::from);
        if r.header("access-control-allow-origin").is_none() {
            r.headers.extend(self.config.cors.response_headers(origin.as_deref()));
        }
        if let Some(d) = &self.component_digest {
            r.headers.push((headers::COMPONENT_DIGEST, d.clone()));
        }
        r
    }

    fn route(&mut self, req: Request) -> Result<Response, ApiError> {
        let method = routes::method(&req.path);
        // A browser's preflight carries no credentials: it is answered before the key check.
        let preflight = req.method == "OPTIONS" && method.is_some();
        if req.path != routes::HEALTHZ && !preflight {
            self.config.api_keys.check(req.authorization.as_deref())?;
        }
        let Some(method) = method else {
            return Err(ApiError::new(404, format!("no route for {} {}", req.method, req.path))
                .code("not_found"));
        };
        if preflight {
            return Ok(match req.origin.as_deref() {
                Some(origin) => Response {
                    status: 204,
                    content_type: "text/plain",
                    headers: cors::preflight(&self.config.cors, origin)?,
                    body: vec![],
                    stream: None,
                },
                None => Response {
                    status: 204,
                    content_type: "text/plain",
                    headers: vec![("allow", format!("{method}, OPTIONS"))],
                    body: vec![],
                    stream: None,
                },
            });
        }
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
                let names: Vec<String> = self.models.names().map(str::to_string).collect();
                let mut data = Vec::with_capacity(names.len());
                for (i, name) in names.iter().enumerate() {
                    let preloaded = self.models.is_preloaded(name);
                    data.push(self.model(name)?.card(preloaded, i == 0));
                }
                let body = json!({ "object": "list", "data": data });
                Ok(ok(("application/json", body.to_string().into_bytes())))
            }
            routes::TRANSCRIBE => self.transcribe_endpoint(req),
            path => {
                let route = if path == routes::TRANSLATIONS {
                    Route::Translations
                } else {
                    Route::Transcriptions
                };
                self.openai(req.content_type.as_deref(), req.body, route, req.authorization)
            }
        }
    }

    fn served(&self) -> Vec<&str> {
        self.models.names().collect()
    }

    /// Runs a checked plan on `audio`; the response carries the metering headers.
    fn run(
        &mut self,
        audio: Vec<u8>,
        plan: Plan,
        authorization: Option<String>,
    ) -> Result<Response, ApiError> {
        let limits = AudioLimits { max_duration_s: self.config.max_duration_s };
        let observer = self.audio_observer;
        let pcm = stt_engine::audio::load_observed(audio, limits, &mut |s| observer(s))
            .map_err(stt_engine::EngineError::from)?;
        let seconds = pcm.duration_s();
        (self.audio_observer)(seconds);
        // After the audio: a model read per request is not read for a file that is not audio.
        let name = match &plan.model {
            Some(m) => m.clone(),
            None => self.models.choose(plan.needs()).map_err(model_unavailable)?,
        };
        let model = self.model(&name)?;
        let metering = [
            (headers::MODEL, model.name.clone()),
            (headers::MODEL_DIGEST, model.digest()),
            (headers::AUDIO_SECONDS, format!("{seconds:.3}")),
        ];
        model.engine.validate(&plan.options)?;
        // A long recording goes in chunks when the detector that cuts them is there. Never a
        // chunk itself (at most 30 s): a chunk's request must not fan out again.
        let above = self.config.chunk_above_s.max(f64::from(stt_engine::vad::CHUNK_SECONDS));
        let chunked = seconds > above && model.engine.vad().is_some();
        let (dispatch, width) = (self.dispatch.clone(), self.config.fanout_width);
        // `gone`: the reader of a stream has left (a long recording's chunks then stop).
        let transcribe =
            move |samples: Vec<f32>,
                  on_segment: &mut dyn FnMut(&stt_engine::Segment),
                  gone: &dyn Fn() -> bool|
                  -> Result<(stt_engine::Transcript, Option<String>), ApiError> {
                if !chunked {
                    let t = model.engine.transcribe_pcm_streaming(
                        samples,
                        &plan.options,
                        on_segment,
                    )?;
                    return Ok((t, None));
                }
                let long = LongAudio {
                    engine: &model.engine,
                    model: &model.name,
                    fields: &plan.fields,
                    options: &plan.options,
                    dispatch,
                    width,
                    authorization,
                };
                let done = long.transcribe(samples, on_segment, gone)?;
                let header = done.counts.header();
                Ok((done.transcript, Some(header)))
            };
        if plan.output == Output::Events {
            // Everything a client can get wrong has been checked: from here on, a failure is an
            // event in the stream.
            let samples = pcm.samples;
            let stream = EventStream(Box::new(move |out| {
                let mut deltas = events::Deltas::default();
                let gone = std::cell::Cell::new(false);
                let r = transcribe(
                    samples,
                    &mut |s| {
                        if let Some(d) = deltas.next(&s.text)
                            && !out(&events::delta(d))
                        {
                            gone.set(true);
                        }
                    },
                    &|| gone.get(),
                );
                match r {
                    Ok((t, _)) => out(&events::done(&t)),
                    Err(e) => out(&events::error(&e.json())),
                };
            }));
            let mut r = ok((events::CONTENT_TYPE, vec![]));
            r.headers.extend(metering);
            r.headers.push(("cache-control", "no-cache".into()));
            r.stream = Some(stream);
            return Ok(r);
        }
        let output = plan.output;
        let (t, chunks) = transcribe(pcm.samples, &mut |_| {}, &|| false)?;
        let mut r = ok(render_output(&t, output));
        r.headers.extend(metering);
        r.headers.extend(chunks.map(|c| (headers::CHUNKS, c)));
        Ok(r)
    }

    fn openai(
        &mut self,
        content_type: Option<&str>,
        body: Vec<u8>,
        route: Route,
        authorization: Option<String>,
    ) -> Result<Response, ApiError> {
        let ct =
            content_type.filter(|c| c.starts_with("multipart/form-data")).ok_or_else(|| {
                ApiError::new(400, "the request must be multipart/form-data with a `file` field")
            })?;
        let f = form::parse(ct, body)?;
        let file = f
            .file
            .ok_or_else(|| ApiError::new(400, "the `file` field is required").param("file"))?;
        let plan = f.params.plan(&self.config, &self.served(), route)?;
        self.run(file, plan, authorization)
    }

    fn transcribe_endpoint(&mut self, req: Request) -> Result<Response, ApiError> {
        let ct = req.content_type.as_deref().unwrap_or("application/octet-stream");
        if ct.starts_with("multipart/form-data") {
            return self.openai(Some(ct), req.body, Route::Transcribe, req.authorization);
        }
        if !(ct.starts_with("audio/") || ct.starts_with("application/octet-stream")) {
            return Err(ApiError::new(
                415,
                format!("content type `{ct}` is not audio/* or application/octet-stream"),
            ));
        }
        // The options are checked before the audio is touched.
        let plan =
            Params::from_query(&req.query).plan(&self.config, &self.served(), Route::Transcribe)?;
        self.run(req.body, plan, req.authorization)
    }
}

fn render_output(t: &stt_engine::Transcript, output: Output) -> (&'static str, Vec<u8>) {
    match output {
        // Written as a stream by `run`; a whole transcript is its last event.
        Output::Events => (events::CONTENT_TYPE, events::done(t)),
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
