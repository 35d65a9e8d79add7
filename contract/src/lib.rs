//! stt-contract: the facts the function and its hosts share (see README.md). Dependency-free.

pub mod defaults {
    /// The model a request gets by default (`whisper-1`): the first of [`MODELS`].
    pub const MODEL: &str = "tiny.en";
    /// The models served, comma-separated, default first (`spin.toml`'s `models`): each is a
    /// folder under [`MODELS_MOUNT`], and the shipped snapshot holds them all.
    pub const MODELS: &str = "tiny.en,base";
    /// Where the model folders are mounted in the component.
    pub const MODELS_MOUNT: &str = "/models";
    /// The voice activity detector's folder under [`MODELS_MOUNT`] (mounted beside the served
    /// models; the snapshot holds it too).
    pub const VAD_MODEL: &str = "silero-vad";
    /// Whether a request that does not send `vad_filter` gets voice activity detection
    /// (`spin.toml`'s `vad_filter`; off, as on OpenAI's API and in faster-whisper).
    pub const VAD_FILTER: bool = false;
    /// Largest accepted upload, bytes: OpenAI's 25 MiB.
    pub const UPLOAD_LIMIT_BYTES: usize = 25 << 20;
    /// Longest accepted audio, seconds.
    pub const MAX_DURATION_SECONDS: f64 = 1800.0;
    /// The default precision's name (`int8` or `f32`).
    pub const PRECISION: &str = "int8";
    /// Beams at temperature 0 when a request does not say (1: greedy; see docs/PERFORMANCE_REPORT.md
    /// for the measurement behind the choice).
    pub const BEAM_SIZE: usize = 1;
    /// Audio longer than this (seconds) is cut at pauses into chunks of at most 30 s that are
    /// transcribed independently, by other instances when the function may send requests to
    /// itself (`spin.toml`'s `chunk_above_seconds`).
    pub const CHUNK_ABOVE_SECONDS: f64 = 60.0;
    /// Chunk requests one long request keeps in flight at once (`spin.toml`'s `fanout_width`).
    pub const FANOUT_WIDTH: usize = 8;
}

/// Requests the function sends to its own app: the chunks of a long recording.
pub mod fanout {
    /// The authority of a request to the app itself: Spin's self request (`http://self.alt/…`,
    /// allowed by [`ALLOWED_HOST`]); `stt-host` admits it to its own slots. A constant, never
    /// taken from the client's request (CVE-2024-32980).
    pub const SELF_AUTHORITY: &str = "self.alt";
    /// The `allowed_outbound_hosts` entry that lets a component send requests to its own app.
    pub const ALLOWED_HOST: &str = "http://self";

    /// How a long recording's chunks were run, as [`crate::headers::CHUNKS`] says it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ChunkCounts {
        /// Chunks the recording was cut into.
        pub chunks: usize,
        /// Chunks other instances transcribed.
        pub sent: usize,
        /// Chunks nobody transcribed, being silent.
        pub silent: usize,
    }

    impl ChunkCounts {
        /// The header's value: `N; sent=M; silent=K`.
        pub fn header(&self) -> String {
            format!("{}; sent={}; silent={}", self.chunks, self.sent, self.silent)
        }

        pub fn parse(header: &str) -> Option<Self> {
            let mut parts = header.split("; ");
            let chunks = parts.next()?.parse().ok()?;
            let sent = parts.next()?.strip_prefix("sent=")?.parse().ok()?;
            let silent = parts.next()?.strip_prefix("silent=")?.parse().ok()?;
            parts.next().is_none().then_some(Self { chunks, sent, silent })
        }
    }
}

pub mod variables {
    /// The items of a list-valued Spin variable (`models`, `api_keys`, `cors_allowed_origins`):
    /// separated by commas or whitespace, empty items skipped.
    pub fn items(value: &str) -> impl Iterator<Item = &str> {
        value.split(|c: char| c == ',' || c.is_whitespace()).filter(|i| !i.is_empty())
    }
}

pub mod model_files {
    /// Written by `stt-models` beside the weights: where they came from (packages, sha256) and
    /// the digest of the converted weights, which the function reports with each transcript.
    pub const SOURCE: &str = "source.json";
}

pub mod snapshot {
    /// The environment variable through which `stt-host snapshot` tells the function's
    /// build-time initialiser the sha256 of the component being pre-initialised.
    pub const DIGEST_ENV: &str = "STT_COMPONENT_SHA256";
}

/// Extension headers: what a response says about the work behind it, and what a request may
/// ask of its instance.
pub mod headers {
    /// Response: the model that answered.
    pub const MODEL: &str = "x-stt-model";
    /// Response: `sha256:<hex>` of the model's weights file.
    pub const MODEL_DIGEST: &str = "x-stt-model-digest";
    /// Response: `sha256:<hex>` of the function's code (the component before pre-initialisation).
    pub const COMPONENT_DIGEST: &str = "x-stt-component-digest";
    /// Response: seconds of audio decoded.
    pub const AUDIO_SECONDS: &str = "x-stt-audio-seconds";
    /// Response (`stt-host`): CPU milliseconds the instance had used when it answered.
    pub const CPU_MS: &str = "x-stt-cpu-ms";
    /// Request (`stt-host`): CPU milliseconds the caller allows; lowers, never raises, the
    /// instance's budget.
    pub const CPU_BUDGET_MS: &str = "x-stt-cpu-budget-ms";
    /// Response: how many chunks a long recording was cut into, how many of them other
    /// instances transcribed and how many were silent (`5; sent=4; silent=1`,
    /// [`crate::fanout::ChunkCounts`]); absent when the audio was transcribed whole.
    pub const CHUNKS: &str = "x-stt-chunks";
    /// The metering headers, which a browser may read (CORS `Access-Control-Expose-Headers`).
    pub const METERING: [&str; 6] =
        [MODEL, MODEL_DIGEST, COMPONENT_DIGEST, AUDIO_SECONDS, CPU_MS, CHUNKS];
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_model_is_the_first_served() {
        assert_eq!(super::defaults::MODELS.split(',').next(), Some(super::defaults::MODEL));
    }

    #[test]
    fn chunk_counts_read_back_from_their_header() {
        use super::fanout::ChunkCounts;
        let c = ChunkCounts { chunks: 5, sent: 3, silent: 1 };
        assert_eq!(c.header(), "5; sent=3; silent=1");
        assert_eq!(ChunkCounts::parse(&c.header()), Some(c));
        for bad in ["5; sent=3", "5; sent=3; silent=1; x", "five; sent=3; silent=1", ""] {
            assert_eq!(ChunkCounts::parse(bad), None, "{bad}");
        }
    }
}

pub mod routes {
    pub const TRANSCRIPTIONS: &str = "/v1/audio/transcriptions";
    pub const TRANSLATIONS: &str = "/v1/audio/translations";
    pub const TRANSCRIBE: &str = "/transcribe";
    pub const MODELS: &str = "/v1/models";
    pub const HEALTHZ: &str = "/healthz";

    /// Every path the function answers, each with its one method.
    pub const ALL: [(&str, &str); 5] = [
        (TRANSCRIPTIONS, "POST"),
        (TRANSLATIONS, "POST"),
        (TRANSCRIBE, "POST"),
        (MODELS, "GET"),
        (HEALTHZ, "GET"),
    ];

    /// The method `path` takes, or `None` for a path the function does not answer.
    pub fn method(path: &str) -> Option<&'static str> {
        ALL.iter().find(|(p, _)| *p == path).map(|(_, m)| *m)
    }
}

/// Cross-origin requests from browsers: one policy for the function's answers and the host's own
/// errors, so that a page can read a 503 or 504 as well as a transcript.
pub mod cors {
    use crate::headers;

    /// The Spin variable that lists the allowed origins.
    pub const VARIABLE: &str = "cors_allowed_origins";
    /// Methods a browser may use on any route.
    pub const METHODS: &str = "GET, POST, OPTIONS";
    /// Request headers a browser may send: `Authorization` for API keys, `Content-Type` for the
    /// form, the caller's CPU budget.
    pub const REQUEST_HEADERS: &str = "authorization, content-type, x-stt-cpu-budget-ms";
    /// How long a browser may cache a preflight's answer, seconds.
    pub const MAX_AGE_S: &str = "600";

    /// Allowed origins: none (the default), any (`*`), or a list (`https://app.example.com`,
    /// …, compared exactly, case-insensitively, without a trailing slash).
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub enum Origins {
        #[default]
        None,
        Any,
        List(Vec<String>),
    }

    impl Origins {
        /// A comma- or space-separated list; `*` alone allows any origin.
        pub fn parse(s: &str) -> Self {
            let list: Vec<String> = crate::variables::items(s)
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .filter(|o| !o.is_empty())
                .collect();
            if list.iter().any(|o| o == "*") {
                Self::Any
            } else if list.is_empty() {
                Self::None
            } else {
                Self::List(list)
            }
        }

        pub fn allows(&self, origin: &str) -> bool {
            match self {
                Self::None => false,
                Self::Any => true,
                Self::List(l) => l.iter().any(|o| o.eq_ignore_ascii_case(origin)),
            }
        }

        /// The headers of any response to `origin` (none when it is not allowed: the browser
        /// then keeps the response from the page).
        pub fn response_headers(&self, origin: Option<&str>) -> Vec<(&'static str, String)> {
            match origin {
                Some(o) if self.allows(o) => vec![
                    ("access-control-allow-origin", o.to_string()),
                    ("vary", "Origin".into()),
                    ("access-control-expose-headers", expose_headers()),
                ],
                _ => vec![],
            }
        }

        /// The headers of a preflight's 204, or `None` when `origin` is not allowed.
        pub fn preflight_headers(&self, origin: &str) -> Option<Vec<(&'static str, String)>> {
            self.allows(origin).then(|| {
                vec![
                    ("access-control-allow-origin", origin.to_string()),
                    ("vary", "Origin".into()),
                    ("access-control-allow-methods", METHODS.into()),
                    ("access-control-allow-headers", REQUEST_HEADERS.into()),
                    ("access-control-max-age", MAX_AGE_S.into()),
                ]
            })
        }
    }

    fn expose_headers() -> String {
        let mut h: Vec<&str> = headers::METERING.to_vec();
        h.push("x-request-id");
        h.join(", ")
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn origins_parse_and_match_exactly() {
            assert_eq!(Origins::parse(""), Origins::None);
            assert_eq!(Origins::parse(" * "), Origins::Any);
            let o = Origins::parse("https://App.example.com/, http://localhost:5173");
            assert!(o.allows("https://app.example.com"));
            assert!(o.allows("http://localhost:5173"));
            assert!(!o.allows("https://app.example.com.evil.test"));
            assert!(!o.allows("http://localhost:5174"));
            assert!(!Origins::None.allows("http://localhost:5173"));
            assert!(o.preflight_headers("https://evil.test").is_none());
            let h = o.preflight_headers("http://localhost:5173").unwrap_or_default();
            assert!(h.iter().any(|(k, v)| *k == "access-control-allow-headers"
                && v.contains("authorization")
                && v.contains(headers::CPU_BUDGET_MS)));
        }
    }
}

/// Streamed responses (`stream=true`): Server-Sent Events.
pub mod events {
    pub const CONTENT_TYPE: &str = "text/event-stream";

    /// The event that ends a stream which failed after it started, carrying the API's error
    /// body (`{"error": {...}}`, which OpenAI's clients raise as an API error): written by the
    /// function for its own failures and by `stt-host` when it stops an instance mid-stream.
    pub fn error(error_json: &str) -> String {
        format!("event: error\ndata: {error_json}\n\n")
    }
}

pub mod errors {
    /// OpenAI's error `type` for an HTTP status.
    pub fn error_type(status: u16) -> &'static str {
        if status >= 500 { "server_error" } else { "invalid_request_error" }
    }
}

pub mod log_line {
    const AUDIO_SECONDS: &str = "stt-function: audio_seconds=";

    /// The line (without newline) the function writes to stderr once the audio is decoded.
    pub fn audio_seconds(seconds: f64) -> String {
        format!("{AUDIO_SECONDS}{seconds:.3}")
    }

    /// The audio's length, if `line` is that line.
    pub fn parse_audio_seconds(line: &str) -> Option<f64> {
        line.strip_prefix(AUDIO_SECONDS)?
            .trim()
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite() && *s >= 0.0)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn the_line_round_trips() {
            assert_eq!(super::parse_audio_seconds(&super::audio_seconds(11.0)), Some(11.0));
            assert_eq!(super::parse_audio_seconds("stt-function: audio_seconds=NaN"), None);
            assert_eq!(super::parse_audio_seconds("something else"), None);
        }
    }
}

/// `multipart/form-data` bodies as OpenAI's routes take them: written by the function for the
/// chunks of a long recording (and by the tests); read with multer.
pub mod multipart {
    /// (content type, body) of a form with text `fields` and, if given, a `file` part
    /// (`(filename, bytes)`). The boundary is one that occurs in none of the parts.
    pub fn form(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
        let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        let mut n = 0u32;
        let boundary = loop {
            let b = format!("----stt-form-boundary-{n}");
            let clash = fields.iter().any(|(k, v)| {
                contains(k.as_bytes(), b.as_bytes()) || contains(v.as_bytes(), b.as_bytes())
            }) || file.is_some_and(|(_, bytes)| contains(bytes, b.as_bytes()));
            if !clash {
                break b;
            }
            n += 1;
        };
        let mut body =
            Vec::with_capacity(file.map_or(0, |(_, f)| f.len()) + 256 * (fields.len() + 2));
        for (k, v) in fields {
            body.extend(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .into_bytes(),
            );
        }
        if let Some((name, bytes)) = file {
            body.extend(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .into_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend(b"\r\n");
        }
        body.extend(format!("--{boundary}--\r\n").into_bytes());
        (format!("multipart/form-data; boundary={boundary}"), body)
    }
}
