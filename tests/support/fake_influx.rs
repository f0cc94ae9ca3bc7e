//! A tiny HTTP server that speaks just enough of InfluxDB's v1 and v2 write
//! APIs to give answers a real InfluxDB cannot be made to give (429 with
//! `Retry-After`, 422, redirects, statuses no InfluxDB sends). It answers
//! scripted responses to writes in order, then 204s, and records every
//! request.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Recorded {
    pub at: Instant,
    pub path: String,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Scripted {
    pub fn status(status: u16) -> Self {
        Scripted {
            status,
            headers: Vec::new(),
            body: "{\"error\":\"scripted\"}".into(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.into();
        self
    }
}

pub struct FakeInflux {
    pub port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::AbortHandle,
}

impl FakeInflux {
    pub async fn start(write_script: Vec<Scripted>) -> FakeInflux {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(write_script)));
        let recorded = Arc::clone(&requests);
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let recorded = Arc::clone(&recorded);
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut reader = BufReader::new(read);
                    while let Some((path, body)) = read_request(&mut reader).await {
                        let at = Instant::now();
                        let is_write = is_write_path(&path);
                        recorded.lock().unwrap().push(Recorded { at, path, body });
                        let scripted = if is_write {
                            script.lock().unwrap().pop_front()
                        } else {
                            None
                        };
                        let response = match (is_write, scripted) {
                            (_, Some(s)) => respond(s.status, &s.headers, &s.body),
                            (true, None) => respond(204, &[], ""),
                            (false, None) => {
                                respond(200, &[], "{\"results\":[{\"statement_id\":0}]}")
                            }
                        };
                        if write.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakeInflux {
            port,
            requests,
            task: task.abort_handle(),
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn writes(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| is_write_path(&r.path))
            .collect()
    }
}

impl Drop for FakeInflux {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_write_path(path: &str) -> bool {
    path.starts_with("/write") || path.starts_with("/api/v2/write")
}

/// Lines of line protocol in a request body.
pub fn lines(body: &str) -> Vec<&str> {
    body.lines().filter(|l| !l.is_empty()).collect()
}

fn respond(status: u16, headers: &[(String, String)], body: &str) -> String {
    let mut text = format!(
        "HTTP/1.1 {status} Scripted\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        text.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text
}

async fn read_request<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> Option<(String, String)> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await.ok()?;
    Some((path, String::from_utf8_lossy(&body).into_owned()))
}
