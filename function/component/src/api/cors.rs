//! Cross-origin requests from browsers: the policy is `stt_contract::cors` (shared with the
//! host's own errors); here, a refused preflight as an API error.

use stt_contract::cors::Origins;

use super::error::ApiError;

/// The answer to a preflight (`OPTIONS` with `Origin`): 204's headers, or 403.
pub fn preflight(origins: &Origins, origin: &str) -> Result<Vec<(&'static str, String)>, ApiError> {
    origins.preflight_headers(origin).ok_or_else(|| {
        ApiError::new(403, format!("origin `{origin}` is not allowed"))
            .code("cors_origin_not_allowed")
    })
}
