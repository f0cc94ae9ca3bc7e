//! One container's streaming stats, read from the engine's socket frame by
//! frame.
//!
//! bollard's `stats()` decodes the stream for us, but a malformed frame ends
//! its stream and it puts no bound on a frame's size. This reader keeps
//! bollard's types and the negotiated API version, and does the framing
//! itself (`docker::frames`), so that a malformed or oversized frame is
//! counted and skipped instead of costing the stream.

use std::collections::VecDeque;
use std::path::PathBuf;

use bollard::models::ContainerStatsResponse;
use bytes::Bytes;
use futures_util::stream::{self, Stream};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::docker::frames::{Frame, FrameSplitter};

/// Where and how to open stats streams.
#[derive(Debug, Clone)]
pub struct StreamTarget {
    pub socket_path: PathBuf,
    /// The API version negotiated with the engine, e.g. `1.41`.
    pub api_version: String,
    pub line_limit: usize,
    pub buffer_limit: usize,
}

#[derive(Debug)]
pub enum StatsItem {
    Sample(Box<ContainerStatsResponse>),
    /// A frame that is not a stats sample, with the decoder's complaint.
    Malformed(String),
    /// A frame longer than `STATS_LINE_SIZE`, skipped.
    Oversized(usize),
}

#[derive(Debug)]
pub enum StreamError {
    /// The container does not exist (any more).
    NotFound,
    Connect(std::io::Error),
    Http(hyper::Error),
    Status(u16, String),
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::NotFound => f.write_str("no such container"),
            StreamError::Connect(e) => write!(f, "cannot connect to the Docker socket: {e}"),
            StreamError::Http(e) => write!(f, "stats stream broke: {e}"),
            StreamError::Status(code, body) => {
                write!(f, "engine answered HTTP {code}: {}", body.trim())
            }
        }
    }
}

enum State {
    Connect(StreamTarget, String),
    Read {
        body: Incoming,
        splitter: FrameSplitter,
        ready: VecDeque<StatsItem>,
    },
    Done,
}

/// Opens the stats stream of container `id`. The stream ends when the
/// engine closes it; the connection closes when the stream is dropped.
pub fn open(
    target: StreamTarget,
    id: String,
) -> impl Stream<Item = Result<StatsItem, StreamError>> {
    stream::unfold(State::Connect(target, id), |state| async move {
        let mut state = state;
        loop {
            state = match state {
                State::Done => return None,
                State::Connect(target, id) => match request(&target, &id).await {
                    Ok(body) => State::Read {
                        body,
                        splitter: FrameSplitter::new(target.line_limit, target.buffer_limit),
                        ready: VecDeque::new(),
                    },
                    Err(error) => return Some((Err(error), State::Done)),
                },
                State::Read {
                    mut body,
                    mut splitter,
                    mut ready,
                } => {
                    if let Some(item) = ready.pop_front() {
                        return Some((
                            Ok(item),
                            State::Read {
                                body,
                                splitter,
                                ready,
                            },
                        ));
                    }
                    match body.frame().await {
                        None => return None,
                        Some(Err(error)) => {
                            return Some((Err(StreamError::Http(error)), State::Done))
                        }
                        Some(Ok(frame)) => {
                            if let Ok(data) = frame.into_data() {
                                let mut frames = Vec::new();
                                splitter.push(&data, &mut frames);
                                ready.extend(frames.into_iter().map(decode));
                            }
                            State::Read {
                                body,
                                splitter,
                                ready,
                            }
                        }
                    }
                }
            };
        }
    })
}

fn decode(frame: Frame) -> StatsItem {
    match frame {
        Frame::Oversized(size) => StatsItem::Oversized(size),
        Frame::Line(line) => match serde_json::from_slice::<ContainerStatsResponse>(&line) {
            Ok(sample) => StatsItem::Sample(Box::new(sample)),
            Err(error) => StatsItem::Malformed(error.to_string()),
        },
    }
}

async fn request(target: &StreamTarget, id: &str) -> Result<Incoming, StreamError> {
    let socket = tokio::net::UnixStream::connect(&target.socket_path)
        .await
        .map_err(StreamError::Connect)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(socket))
        .await
        .map_err(StreamError::Http)?;
    // The connection is driven by its own task and ends when the response
    // body and the sender are dropped.
    actix_rt::spawn(async move {
        let _ = connection.await;
    });
    let request = hyper::Request::get(format!(
        "/v{}/containers/{id}/stats?stream=1",
        target.api_version
    ))
    .header(hyper::header::HOST, "docker")
    .body(Empty::<Bytes>::new())
    .expect("a valid request");
    let response = sender
        .send_request(request)
        .await
        .map_err(StreamError::Http)?;
    let status = response.status().as_u16();
    if status == 404 {
        return Err(StreamError::NotFound);
    }
    if !(200..300).contains(&status) {
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        return Err(StreamError::Status(status, body));
    }
    Ok(response.into_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode_to_samples_or_are_reported() {
        let recorded = include_bytes!("../../tests/fixtures/stats/v1_idle.json");
        let line = recorded.strip_suffix(b"\n").unwrap_or(recorded).to_vec();
        assert!(matches!(decode(Frame::Line(line)), StatsItem::Sample(_)));
        for garbage in [&b"{\"read\": 12"[..], b"not json", b"{\"read\": \"x\""] {
            let item = decode(Frame::Line(garbage.to_vec()));
            assert!(matches!(item, StatsItem::Malformed(_)), "{item:?}");
        }
        assert!(matches!(
            decode(Frame::Oversized(200_000)),
            StatsItem::Oversized(200_000)
        ));
    }
}
