//! Cross-origin requests from browsers: which origins may call the API (the
//! `cors_allowed_origins` variable; none by default), the answer to a preflight, and the headers
//! an allowed origin's responses carry.

use stt_contract::headers;

use super::error::ApiError;

/// Methods a browser may use on any route.
const METHODS: &str = "GET, POST, OPTIONS";
/// Request headers a browser may send: `Authorization` for API keys, `Content-Type` for the
/// form, the caller's CPU budget.
const REQUEST_HEADERS: [&str; 3] = ["authorization", "content-type", headers::CPU_BUDGET_MS];
/// How long a browser may cache a preflight's answer, seconds.
const MAX_AGE_S: u32 = 600;

/// Allowed origins: none (the default), any (`*`), or a list (`https://app.example.com`, …,
/// compared exactly, case-insensitively, without a trailing slash).
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
        let list: Vec<String> = s
            .split([',', ' '])
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
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

    /// The headers of any response to `origin` (none when it is not allowed: the browser then
    /// keeps the response from the page).
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

    /// The answer to a preflight (`OPTIONS` with `Origin`): 204 with what may be sent, or 403.
    pub fn preflight(&self, origin: &str) -> Result<Vec<(&'static str, String)>, ApiError> {
        if !self.allows(origin) {
            return Err(ApiError::new(403, format!("origin `{origin}` is not allowed"))
                .code("cors_origin_not_allowed"));
        }
        Ok(vec![
            ("access-control-allow-origin", origin.to_string()),
            ("vary", "Origin".into()),
            ("access-control-allow-methods", METHODS.into()),
            ("access-control-allow-headers", REQUEST_HEADERS.join(", ")),
            ("access-control-max-age", MAX_AGE_S.to_string()),
        ])
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
        assert!(o.preflight("https://evil.test").is_err_and(|e| e.status == 403));
        let h = o.preflight("http://localhost:5173").expect("allowed");
        assert!(
            h.iter()
                .any(|(k, v)| *k == "access-control-allow-headers" && v.contains("authorization"))
        );
    }
}
