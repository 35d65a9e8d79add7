//! A streamed response (`text/event-stream`) whose instance fails after its head was sent (CPU
//! budget, deadline, memory cap, trap) ends with an `error` event in OpenAI's shape, so that the
//! client reads why instead of a cut connection.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use tokio::sync::oneshot;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::http_error::{Response, error_json};
use crate::instance::Failure;
use crate::server::failure_error;

/// How the instance ended, sent once it has.
pub type Ended = oneshot::Receiver<Result<(), Failure>>;

/// `resp` as it is, or, for an event stream, ending with an error event if the instance fails.
pub fn end_with_error_event(resp: Response, ended: Ended) -> Response {
    let is_stream = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(stt_contract::events::CONTENT_TYPE));
    if !is_stream {
        return resp;
    }
    resp.map(|inner| EndWithError { inner, ended, state: State::Streaming }.boxed_unsync())
}

enum State {
    Streaming,
    /// The body ended (whole, or broken off: a stopped instance's body just ends): waiting for
    /// the instance's end to say whether it failed.
    Ended {
        broken: bool,
    },
    Done,
}

struct EndWithError {
    inner: HyperOutgoingBody,
    ended: Ended,
    state: State,
}

impl Body for EndWithError {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        loop {
            match self.state {
                State::Done => return Poll::Ready(None),
                State::Streaming => match Pin::new(&mut self.inner).poll_frame(cx) {
                    Poll::Ready(Some(Err(_))) => self.state = State::Ended { broken: true },
                    Poll::Ready(None) => self.state = State::Ended { broken: false },
                    other => return other,
                },
                State::Ended { broken } => {
                    let (status, code, message) = match Pin::new(&mut self.ended).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(Err(failure))) => failure_error(failure),
                        _ if !broken => {
                            self.state = State::Done;
                            return Poll::Ready(None);
                        }
                        Poll::Ready(_) => (
                            500,
                            "function_error",
                            "the function's response ended before it was complete".into(),
                        ),
                    };
                    self.state = State::Done;
                    let event = stt_contract::events::error(&error_json(status, code, &message));
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }
}
