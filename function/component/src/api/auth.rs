//! Optional API keys: when any are configured (the `api_keys` Spin variable, a secret), every
//! route but the health check needs `Authorization: Bearer <key>`.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// The accepted keys, held as SHA-256 digests so that every comparison takes the same time
/// whatever the presented key's length or how much of it matches.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys(Vec<[u8; 32]>);

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl ApiKeys {
    /// Keys separated by commas or whitespace; empty entries are ignored.
    pub fn parse(list: &str) -> Self {
        Self(stt_contract::variables::items(list).map(digest).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `authorization` (the header's value) carries one of the keys.
    pub fn check(&self, authorization: Option<&str>) -> Result<(), ApiError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let unauthorized = |m: &str| ApiError::new(401, m).code("invalid_api_key");
        let Some(value) = authorization else {
            return Err(unauthorized(
                "no API key was provided; send it as `Authorization: Bearer <key>`",
            ));
        };
        let key = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, k)| k.trim())
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <key>`"))?;
        let presented = digest(key);
        // Every configured key is compared, so the time taken does not say which one matched.
        let matched =
            self.0.iter().fold(subtle::Choice::from(0), |acc, k| acc | k.ct_eq(&presented));
        if bool::from(matched) {
            Ok(())
        } else {
            Err(unauthorized("the API key provided is not valid"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_bearer_key_passes() {
        let keys = ApiKeys::parse(" alpha, beta\ngamma ,");
        assert!(keys.check(Some("Bearer beta")).is_ok());
        assert!(keys.check(Some("bearer gamma")).is_ok());
        for bad in [None, Some("Bearer"), Some("Bearer be"), Some("Basic alpha"), Some("alpha")] {
            let e = keys.check(bad).expect_err("refused");
            assert_eq!((e.status, e.code), (401, Some("invalid_api_key")), "{bad:?}");
        }
        assert!(ApiKeys::parse(" , ").check(None).is_ok(), "no keys: open");
    }
}
