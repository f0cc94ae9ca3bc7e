//! A proxy on a Unix socket in front of the machine's Docker socket, which a
//! test controls: cut every connection and refuse new ones (the daemon is
//! "gone"), restore it, freeze the bytes flowing back to the client on the
//! connections open now (a hung stream), or hold back the answers to new
//! stats requests (an engine that never answers). The daemon itself is
//! never touched.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::AbortHandle;

const DOCKER_SOCKET: &str = "/var/run/docker.sock";

struct Connection {
    abort: AbortHandle,
    /// Answers on this connection wait until then (a slow engine).
    delayed_until: Arc<Mutex<Option<tokio::time::Instant>>>,
    frozen: Arc<AtomicBool>,
    /// The first request line, e.g. `GET /v1.41/containers/x/stats?stream=1 HTTP/1.1`.
    request: Arc<Mutex<String>>,
}

#[derive(Default)]
struct State {
    refusing: AtomicBool,
    /// New stats requests are forwarded but their answers held back.
    holding_stats: AtomicBool,
    /// Only the read-only requests README's socket proxy lets through are
    /// forwarded; any other is recorded and its connection closed.
    read_only: AtomicBool,
    refused: Mutex<Vec<String>>,
    /// Every request line the clients sent, in order.
    seen: Mutex<Vec<String>>,
    /// Requests whose line contains the text get their answer this late.
    slow_requests: Mutex<Option<(String, Duration)>>,
    stats_requests: std::sync::atomic::AtomicUsize,
    connections: Mutex<Vec<Connection>>,
}

pub struct DockerProxy {
    path: String,
    state: Arc<State>,
    listener: Option<AbortHandle>,
}

impl DockerProxy {
    /// A socket path in a fresh directory, for a proxy started later.
    pub fn reserve_path() -> String {
        format!("{}/docker.sock", super::influx::tempdir("dss-proxy"))
    }

    pub async fn start() -> DockerProxy {
        Self::start_at(Self::reserve_path()).await
    }

    pub async fn start_at(path: String) -> DockerProxy {
        let listener = UnixListener::bind(&path).expect("binding the proxy socket");
        let state = Arc::new(State::default());
        let accept_state = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if accept_state.refusing.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let frozen = Arc::new(AtomicBool::new(false));
                let request = Arc::new(Mutex::new(String::new()));
                let delayed_until = Arc::new(Mutex::new(None));
                let handle = tokio::spawn(forward(
                    client,
                    Channel {
                        frozen: Arc::clone(&frozen),
                        request: Arc::clone(&request),
                        delayed_until: Arc::clone(&delayed_until),
                    },
                    Arc::clone(&accept_state),
                ));
                let mut connections = accept_state.connections.lock().unwrap();
                connections.retain(|c| !c.abort.is_finished());
                connections.push(Connection {
                    abort: handle.abort_handle(),
                    delayed_until,
                    frozen,
                    request,
                });
            }
        });
        DockerProxy {
            path,
            state,
            listener: Some(task.abort_handle()),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Closes every connection and refuses new ones until `restore`.
    pub fn cut(&self) {
        self.state.refusing.store(true, Ordering::SeqCst);
        for connection in self.state.connections.lock().unwrap().drain(..) {
            connection.abort.abort();
        }
    }

    pub fn restore(&self) {
        self.state.refusing.store(false, Ordering::SeqCst);
    }

    /// Holds back everything the daemon sends on the stats streams open
    /// now; connections opened later flow normally. Returns how many.
    pub fn freeze_stats_streams(&self) -> usize {
        let connections = self.state.connections.lock().unwrap();
        let open: Vec<&Connection> = connections
            .iter()
            .filter(|c| !c.abort.is_finished() && c.request.lock().unwrap().contains("/stats"))
            .collect();
        for connection in &open {
            connection.frozen.store(true, Ordering::SeqCst);
        }
        open.len()
    }

    /// From now on, behaves like the read-only socket proxy README shows:
    /// only `GET` of the version, info, events, container list, inspect and
    /// stats; anything else is refused (see `refused`).
    pub fn enforce_read_only(&self) {
        self.state.read_only.store(true, Ordering::SeqCst);
    }

    /// The request lines refused under `enforce_read_only`.
    pub fn refused(&self) -> Vec<String> {
        self.state.refused.lock().unwrap().clone()
    }

    /// From now on, the answer to every request whose request line contains
    /// `text` (e.g. `/containers/json`) is held back for `delay`.
    pub fn slow_down(&self, text: &str, delay: Duration) {
        *self.state.slow_requests.lock().unwrap() = Some((text.to_string(), delay));
    }

    /// From now on, stats requests get no answer at all (not even the
    /// response head) until `release_stats`.
    pub fn hold_stats_answers(&self) {
        self.state.holding_stats.store(true, Ordering::SeqCst);
    }

    /// Lets every held answer through, and new ones flow normally.
    pub fn release_stats(&self) {
        self.state.holding_stats.store(false, Ordering::SeqCst);
        for connection in self.state.connections.lock().unwrap().iter() {
            connection.frozen.store(false, Ordering::SeqCst);
        }
    }

    /// Every request line the clients sent so far, e.g.
    /// `GET /v1.41/containers/json?all=false HTTP/1.1`.
    pub fn requests(&self) -> Vec<String> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Stats requests seen so far (each connection carries one).
    pub fn stats_requests(&self) -> usize {
        self.state.stats_requests.load(Ordering::SeqCst)
    }

    pub fn open_connections(&self) -> usize {
        let connections = self.state.connections.lock().unwrap();
        connections
            .iter()
            .filter(|c| !c.abort.is_finished())
            .count()
    }
}

/// What the proxy and a test share about one connection.
struct Channel {
    frozen: Arc<AtomicBool>,
    request: Arc<Mutex<String>>,
    delayed_until: Arc<Mutex<Option<tokio::time::Instant>>>,
}

async fn forward(client: UnixStream, channel: Channel, state: Arc<State>) {
    let Channel {
        frozen,
        request,
        delayed_until,
    } = channel;
    let delay_answers = Arc::clone(&delayed_until);
    let Ok(daemon) = UnixStream::connect(DOCKER_SOCKET).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut daemon_read, mut daemon_write) = daemon.into_split();
    let hold = Arc::clone(&frozen);
    let upstream = async move {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            {
                let mut first = request.lock().unwrap();
                if first.is_empty() {
                    let text = String::from_utf8_lossy(&buffer[..n]);
                    *first = text.lines().next().unwrap_or_default().to_string();
                    if first.contains("/stats") {
                        state.stats_requests.fetch_add(1, Ordering::SeqCst);
                        if state.holding_stats.load(Ordering::SeqCst) {
                            hold.store(true, Ordering::SeqCst);
                        }
                    }
                }
            }
            {
                let text = String::from_utf8_lossy(&buffer[..n]);
                let mut seen = state.seen.lock().unwrap();
                seen.extend(request_lines(&text).map(str::to_string));
            }
            if state.read_only.load(Ordering::SeqCst) {
                let text = String::from_utf8_lossy(&buffer[..n]);
                let refused: Vec<&str> = request_lines(&text)
                    .filter(|line| !read_only_allows(line))
                    .collect();
                if !refused.is_empty() {
                    let mut list = state.refused.lock().unwrap();
                    list.extend(refused.iter().map(|l| l.to_string()));
                    return;
                }
            }
            // Requests on a connection are sequential: the bytes that come
            // back next are this request's answer.
            if let Some((text, delay)) = state.slow_requests.lock().unwrap().clone() {
                if String::from_utf8_lossy(&buffer[..n]).contains(&text) {
                    *delay_answers.lock().unwrap() = Some(tokio::time::Instant::now() + delay);
                }
            }
            if daemon_write.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    let downstream = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match daemon_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            while frozen.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let until = delayed_until.lock().unwrap().take();
            if let Some(until) = until {
                tokio::time::sleep_until(until).await;
            }
            if client_write.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

/// The HTTP request lines in a chunk of a client's bytes.
fn request_lines(text: &str) -> impl Iterator<Item = &str> {
    const METHODS: &[&str] = &[
        "GET ", "POST ", "PUT ", "DELETE ", "HEAD ", "PATCH ", "OPTIONS ",
    ];
    text.lines()
        .filter(|line| METHODS.iter().any(|m| line.starts_with(m)) && line.ends_with("HTTP/1.1"))
}

/// What a read-only socket proxy lets through: `GET` of `/version`,
/// `/info`, `/events`, `/containers/json`, `/containers/{id}/json` and
/// `/containers/{id}/stats`, with or without an API version prefix.
pub fn read_only_allows(request_line: &str) -> bool {
    let mut parts = request_line.split_whitespace();
    let (Some("GET"), Some(target)) = (parts.next(), parts.next()) else {
        return false;
    };
    let path = target.split('?').next().unwrap_or_default();
    let path = match path.strip_prefix("/v") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
            rest.find('/').map_or("", |i| &rest[i..])
        }
        _ => path,
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(
        segments.as_slice(),
        ["version"]
            | ["info"]
            | ["events"]
            | ["containers", "json"]
            | ["containers", _, "json" | "stats"]
    )
}

impl Drop for DockerProxy {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
        self.cut();
        if let Some(dir) = std::path::Path::new(&self.path).parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
