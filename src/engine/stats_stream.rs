//! One container's streaming stats, read from the engine's socket frame by
//! frame.
//!
//! bollard's `stats()` decodes the stream for us, but a malformed frame ends
//! its stream and it puts no bound on a frame's size. This reader keeps the
//! chosen API version (`engine::api_version`) and does the framing itself (`engine::frames`), so
//! that an oversized frame is counted and skipped instead of costing the
//! stream; frames are decoded by the stream source (`sources::stream`),
//! which skips and counts malformed ones the same way.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, Stream};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::engine::frames::{Frame, FrameSplitter};
use crate::engine::paced_io::{PacedUnixStream, ReadPacer};

/// Where and how to open stats streams.
#[derive(Debug, Clone)]
pub struct StreamTarget {
    pub socket_path: PathBuf,
    /// The API version spoken to the engine (`engine::api_version`), e.g. `1.41`.
    pub api_version: String,
    pub line_limit: usize,
    pub buffer_limit: usize,
    /// Streams are read on its beat, not whenever a sample arrives.
    pub pacer: ReadPacer,
    /// A stream silent for longer than this is considered hung.
    pub stall_timeout: Duration,
}

#[derive(Debug)]
pub enum StatsItem {
    /// One frame, to be decoded as a stats sample (`sources::stream::sample`).
    Frame(Vec<u8>),
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
    /// Nothing arrived for this long.
    Stalled(Duration),
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
            StreamError::Stalled(silent) => write!(
                f,
                "nothing received for {}",
                humantime::format_duration(*silent)
            ),
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamError::Connect(error) => Some(error),
            StreamError::Http(error) => Some(error),
            _ => None,
        }
    }
}

enum State {
    Connect(StreamTarget, String),
    Read {
        stall_timeout: Duration,
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
                // Connecting, the handshake and the response head get the
                // same deadline as the body: an engine that never answers
                // gets the stream replaced like one that falls silent.
                State::Connect(target, id) => {
                    match tokio::time::timeout(target.stall_timeout, request(&target, &id))
                        .await
                        .unwrap_or(Err(StreamError::Stalled(target.stall_timeout)))
                    {
                        Ok(body) => State::Read {
                            stall_timeout: target.stall_timeout,
                            body,
                            splitter: FrameSplitter::new(target.line_limit, target.buffer_limit),
                            ready: VecDeque::new(),
                        },
                        Err(error) => return Some((Err(error), State::Done)),
                    }
                }
                State::Read {
                    stall_timeout,
                    mut body,
                    mut splitter,
                    mut ready,
                } => {
                    if let Some(item) = ready.pop_front() {
                        return Some((
                            Ok(item),
                            State::Read {
                                stall_timeout,
                                body,
                                splitter,
                                ready,
                            },
                        ));
                    }
                    // A timer re-armed per chunk: unlike a periodic check,
                    // it never wakes the process while the stream is alive.
                    let Ok(frame) = tokio::time::timeout(stall_timeout, body.frame()).await else {
                        return Some((Err(StreamError::Stalled(stall_timeout)), State::Done));
                    };
                    match frame {
                        None => return None,
                        Some(Err(error)) => {
                            return Some((Err(StreamError::Http(error)), State::Done))
                        }
                        Some(Ok(frame)) => {
                            if let Ok(data) = frame.into_data() {
                                let mut frames = Vec::new();
                                splitter.push(&data, &mut frames);
                                ready.extend(frames.into_iter().map(|frame| match frame {
                                    Frame::Line(line) => StatsItem::Frame(line),
                                    Frame::Oversized(size) => StatsItem::Oversized(size),
                                }));
                            }
                            State::Read {
                                stall_timeout,
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

async fn request(target: &StreamTarget, id: &str) -> Result<Incoming, StreamError> {
    let socket = tokio::net::UnixStream::connect(&target.socket_path)
        .await
        .and_then(|socket| socket.into_std())
        .and_then(|socket| PacedUnixStream::new(socket, target.pacer.clone()))
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
        // An error body is a short JSON message; more is not kept.
        let body = http_body_util::Limited::new(response.into_body(), 64 * 1024)
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        return Err(StreamError::Status(status, body));
    }
    Ok(response.into_body())
}
