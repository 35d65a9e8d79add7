//! The fields of OpenAI's `multipart/form-data` transcription request, read with multer.

use bytes::Bytes;
use futures_util::stream;

use super::error::ApiError;
use super::params::Params;

#[derive(Debug, Default)]
pub struct Form {
    pub file: Option<Vec<u8>>,
    pub params: Params,
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(400, format!("malformed multipart/form-data body: {e}"))
}

/// Parses a whole buffered body. The body is already in memory (the host bounds its size), so
/// multer's stream is a single chunk and its future completes without waiting.
pub fn parse(content_type: &str, body: Vec<u8>) -> Result<Form, ApiError> {
    let boundary = multer::parse_boundary(content_type).map_err(bad)?;
    let chunks = stream::once(async move { Ok::<Bytes, std::io::Error>(Bytes::from(body)) });
    let mut mp = multer::Multipart::new(chunks, boundary);
    futures_util::FutureExt::now_or_never(async move {
        let mut form = Form::default();
        while let Some(field) = mp.next_field().await.map_err(bad)? {
            let name = field.name().unwrap_or_default().to_string();
            if name == "file" {
                form.file = Some(field.bytes().await.map_err(bad)?.to_vec());
                continue;
            }
            let text = field.text().await.map_err(bad)?;
            form.params.set(&name, text);
        }
        Ok(form)
    })
    .unwrap_or_else(|| Err(bad("incomplete body")))
}
