//! A long recording's chunk requests, sent to the app itself with Spin's outbound HTTP
//! (`http://self.alt/…`, which `allowed_outbound_hosts = ["http://self"]` permits): under
//! `spin up` and SpinKube each is a new instance; `stt-host` admits them to its own slots or
//! sends them to its peers.
//!
//! Written on wasi:http directly rather than spin-sdk's async `send`: a request's body is written
//! whole (blocking, so the host takes it in meanwhile) before the next chunk is cut, so the first
//! chunk is being transcribed while the function still looks for the later cuts; the answers are
//! then awaited together with wasi:io's `poll`.

use spin_sdk::http::{Fields, IncomingResponse, Method, OutgoingBody, OutgoingRequest, Scheme};
use spin_sdk::wit::wasi::http0_2_0::outgoing_handler;
use spin_sdk::wit::wasi::http0_2_0::types::FutureIncomingResponse;
use stt_contract::fanout::SELF_AUTHORITY;

use crate::api::chunks::{ChunkRequest, ChunkResponse, Dispatch, MakeRequest, TakeAnswer};
use crate::api::error::ApiError;

pub struct SelfRequests;

/// Largest chunk answer read: a verbose JSON transcript of 30 s is a few KiB.
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// Sends `r` with its whole body; `None` when it cannot be sent (not allowed, refused).
fn start(r: ChunkRequest) -> Option<FutureIncomingResponse> {
    let mut headers = vec![("content-type".to_string(), r.content_type.into_bytes())];
    if let Some(a) = r.authorization {
        headers.push(("authorization".to_string(), a.into_bytes()));
    }
    let request = OutgoingRequest::new(Fields::from_list(&headers).ok()?);
    request.set_method(&Method::Post).ok()?;
    request.set_scheme(Some(&Scheme::Http)).ok()?;
    request.set_authority(Some(SELF_AUTHORITY)).ok()?;
    request.set_path_with_query(Some(r.path)).ok()?;
    let body = request.body().ok()?;
    let future = outgoing_handler::handle(request, None).ok()?;
    {
        let stream = body.write().ok()?;
        // wasi:io takes at most 4096 bytes per blocking write.
        if !r.body.chunks(4096).all(|c| stream.blocking_write_and_flush(c).is_ok()) {
            return None;
        }
    }
    OutgoingBody::finish(body, None).ok()?;
    Some(future)
}

/// Starts request `i`; one that cannot be sent is answered `None` at once.
fn send(
    i: usize,
    r: ChunkRequest,
    in_flight: &mut Vec<(usize, FutureIncomingResponse)>,
    done: &mut TakeAnswer<'_>,
) -> Result<(), ApiError> {
    match start(r) {
        Some(future) => {
            in_flight.push((i, future));
            Ok(())
        }
        None => done(i, None),
    }
}

/// Answers the requests of `in_flight` that have finished, in order, through `done`.
fn finished(
    in_flight: &mut Vec<(usize, FutureIncomingResponse)>,
    ready: impl IntoIterator<Item = usize>,
    done: &mut TakeAnswer<'_>,
) -> Result<(), ApiError> {
    // Highest place first, so that removing one leaves the others' places.
    let mut ready: Vec<usize> = ready.into_iter().filter(|&r| r < in_flight.len()).collect();
    ready.sort_unstable_by(|a, b| b.cmp(a));
    ready.dedup();
    let mut answers: Vec<_> = ready
        .into_iter()
        .map(|r| {
            let (i, future) = in_flight.swap_remove(r);
            (i, answer(&future))
        })
        .collect();
    answers.sort_by_key(|(i, _)| *i);
    answers.into_iter().try_for_each(|(i, a)| done(i, a))
}

/// The answer of a finished request, `None` if it failed before one (refused, connection lost).
fn answer(future: &FutureIncomingResponse) -> Option<ChunkResponse> {
    let response: IncomingResponse = future.get()?.ok()?.ok()?;
    let status = response.status();
    let body = response.consume().ok()?;
    let mut bytes = Vec::new();
    {
        let stream = body.stream().ok()?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(b) if bytes.len() + b.len() <= MAX_ANSWER_BYTES => bytes.extend(b),
                Ok(_) => return None,
                Err(_) => break,
            }
        }
    }
    Some(ChunkResponse { status, body: bytes })
}

impl Dispatch for SelfRequests {
    fn send_all(
        &self,
        width: usize,
        make: &mut MakeRequest<'_>,
        done: &mut TakeAnswer<'_>,
    ) -> Result<(), ApiError> {
        let mut in_flight: Vec<(usize, FutureIncomingResponse)> = Vec::new();
        // Until the first answer, the first chunk runs alone (its text is the stream's first)
        // and the next ones are cut and held meanwhile, then sent together.
        let mut held: Vec<(usize, ChunkRequest)> = Vec::new();
        let mut answered = false;
        let (mut next, mut more) = (0, true);
        loop {
            if answered {
                for (i, r) in held.drain(..) {
                    send(i, r, &mut in_flight, done)?;
                }
            }
            while more && in_flight.len() + held.len() < width {
                let Some(request) = make(next)? else {
                    more = false;
                    break;
                };
                if answered || in_flight.is_empty() && held.is_empty() {
                    send(next, request, &mut in_flight, done)?;
                } else {
                    held.push((next, request));
                }
                next += 1;
                // Answers that came in while this chunk was cut go out now (the stream's first
                // text among them), not after the last chunk is cut.
                let ready: Vec<usize> =
                    (0..in_flight.len()).filter(|&r| in_flight[r].1.subscribe().ready()).collect();
                answered |= !ready.is_empty();
                finished(&mut in_flight, ready, done)?;
                if answered && !held.is_empty() {
                    break;
                }
            }
            if in_flight.is_empty() {
                if held.is_empty() {
                    return Ok(());
                }
                // The first chunk could not be sent: the held ones go now.
                answered = true;
                continue;
            }
            if !answered || !more || in_flight.len() + held.len() >= width {
                let pollables: Vec<_> = in_flight.iter().map(|(_, f)| f.subscribe()).collect();
                let ready = wasi::io::poll::poll(&pollables.iter().collect::<Vec<_>>());
                drop(pollables);
                answered = true;
                finished(&mut in_flight, ready.into_iter().map(|r| r as usize), done)?;
            }
        }
    }
}
