//! A real InfluxDB 1.x (`influxd` from Debian's `influxdb` package) on a
//! free loopback port with temporary directories.
//!
//! `shared()` is one server per test binary, shared by its tests (each uses
//! its own database). `InfluxServer::start` gives a test a private one that
//! it can stop, restart, freeze and thaw, with authentication or a small
//! body limit when the test needs the real server's 401 or 413.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Require authentication; an admin user `admin`/`admin` is created.
    pub auth: bool,
    /// `[http] max-body-size`: larger writes get HTTP 413.
    pub max_body_size: Option<usize>,
    /// Serve https with a certificate for 127.0.0.1 signed by a CA made
    /// for this server (`ca_file()`).
    pub tls: bool,
}

pub struct InfluxServer {
    pub port: u16,
    pub url: String,
    dir: String,
    http: reqwest::Client,
    credentials: Option<(String, String)>,
    options: Options,
    max_body: usize,
}

/// Kept for the shared server's users.
pub type Influx = InfluxServer;

static SHARED: OnceLock<InfluxServer> = OnceLock::new();

/// The test binary's shared InfluxDB, started on first use.
pub fn shared() -> &'static InfluxServer {
    SHARED.get_or_init(|| InfluxServer::start(Options::default()))
}

impl InfluxServer {
    pub fn start(options: Options) -> InfluxServer {
        which("influxd").expect(
            "influxd not found: install Debian's `influxdb` package (the README's test command does this)",
        );
        let dir = tempdir("dss-influx");
        let (port, rpc_port) = two_free_ports();
        let max_body = options.max_body_size.unwrap_or(25_000_000);
        if options.tls {
            make_certificates(&dir);
        }
        write_config(&dir, port, rpc_port, &options, max_body);
        let scheme = if options.tls { "https" } else { "http" };
        let mut http = reqwest::Client::builder().pool_max_idle_per_host(0);
        if options.tls {
            let ca = std::fs::read(format!("{dir}/ca.pem")).unwrap();
            http = http.add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap());
        }
        let mut server = InfluxServer {
            port,
            url: format!("{scheme}://127.0.0.1:{port}"),
            dir,
            // Tests share one server but each runs its own tokio runtime: a
            // pooled connection belongs to the runtime that opened it and
            // dies with it ("runtime dropped the dispatch task"), so none
            // is kept between requests.
            http: http.build().expect("an HTTP client"),
            credentials: None,
            options: options.clone(),
            max_body,
        };
        server.launch_on_free_ports();
        if options.auth {
            // With no user yet, InfluxDB lets anyone create the first admin.
            // Plain blocking HTTP: this may run inside a test's runtime.
            let body = "q=CREATE+USER+admin+WITH+PASSWORD+%27admin%27+WITH+ALL+PRIVILEGES";
            let status = post_form(server.port, "/query", body);
            assert_eq!(status, 200, "creating the admin user");
            server.credentials = Some(("admin".into(), "admin".into()));
        }
        server
    }
}

/// A CA and a server certificate for 127.0.0.1 it signed, in `dir`
/// (`ca.pem`, `server.pem`, `server.key`), made with the openssl tool.
fn make_certificates(dir: &str) {
    let script = r#"
        set -e
        cd "$1"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout ca.key -out ca.pem -days 2 -subj "/CN=dss-test CA" 2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout server.key -out server.csr -subj "/CN=127.0.0.1" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
            -out server.pem -days 2 -extfile server.ext 2>/dev/null
    "#;
    let status = Command::new("sh")
        .args(["-c", script, "sh", dir])
        .status()
        .expect("running openssl (the README's test command installs it)");
    assert!(
        status.success(),
        "making test certificates with openssl failed"
    );
}

/// Two distinct free loopback ports (binding :0 twice can give the same).
fn two_free_ports() -> (u16, u16) {
    loop {
        let (a, b) = (super::free_port(), super::free_port());
        if a != b {
            return (a, b);
        }
    }
}

fn write_config(dir: &str, port: u16, rpc_port: u16, options: &Options, max_body: usize) {
    let config = format!(
        r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{dir}/meta"
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  auth-enabled = {auth}
  log-enabled = true
  max-body-size = {max_body}
  https-enabled = {tls}
  https-certificate = "{dir}/server.pem"
  https-private-key = "{dir}/server.key"
[continuous_queries]
  enabled = false
"#,
        auth = options.auth,
        tls = options.tls
    );
    std::fs::write(format!("{dir}/influxdb.conf"), config).unwrap();
}

impl InfluxServer {
    /// The ports were free a moment ago; another process may take one
    /// first, and then influxd exits saying so: start again on new ones.
    fn launch_on_free_ports(&mut self) {
        for attempt in 1..=3 {
            match self.launch() {
                Ok(()) => return,
                Err(why) if attempt < 3 && why.contains("address already in use") => {
                    let (port, rpc_port) = two_free_ports();
                    self.port = port;
                    let scheme = if self.options.tls { "https" } else { "http" };
                    self.url = format!("{scheme}://127.0.0.1:{port}");
                    write_config(&self.dir, port, rpc_port, &self.options, self.max_body);
                }
                Err(why) => panic!("{why}"),
            }
        }
    }

    /// Starts influxd under a watchdog that stops it (and removes the data)
    /// if the test process goes away, however it ends. Waits until it
    /// listens; says why when it does not (it exited, with its log; or it
    /// still runs, with its state, after a minute).
    fn launch(&self) -> Result<(), String> {
        let _ = std::fs::remove_file(format!("{}/influxd.pid", self.dir));
        let script = r#"
            influxd -config "$1/influxdb.conf" >>"$1/influxd.log" 2>&1 &
            child=$!
            echo "$child" > "$1/influxd.pid"
            while kill -0 "$2" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.3; done
            if ! kill -0 "$2" 2>/dev/null; then kill -9 "$child" 2>/dev/null; rm -rf "$1"; fi
        "#;
        let mut watchdog = Command::new("sh")
            .args([
                "-c",
                script,
                "sh",
                &self.dir,
                &std::process::id().to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start influxd's watchdog shell: {e}"))?;
        std::thread::spawn(move || watchdog.wait());
        // A busy 2-core machine can take long to start a process that
        // replays its WAL; a minute is far beyond that, and a failure to
        // start shows sooner, as an exit.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            let pid = std::fs::read_to_string(format!("{}/influxd.pid", self.dir))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok());
            let state = pid.map(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find(|l| l.starts_with("State:"))
                            .map(str::to_string)
                    })
            });
            match state {
                Some(None) => {
                    return Err(format!(
                        "influxd (pid {}) exited before listening on port {}; its log:\n{}",
                        pid.unwrap_or_default(),
                        self.port,
                        self.server_log()
                    ))
                }
                _ if Instant::now() > deadline => {
                    return Err(format!(
                        "influxd did not listen on port {} within 60 s (pid {pid:?}, {state:?}; config {}/influxdb.conf); its log:\n{}",
                        self.port,
                        self.dir,
                        self.server_log()
                    ))
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn pid(&self) -> i32 {
        std::fs::read_to_string(format!("{}/influxd.pid", self.dir))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .expect("influxd pid")
    }

    fn signal(&self, signal: i32) {
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// Stops the server (its data stays) and waits until the port is closed.
    pub fn stop(&self) {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "influxd did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
        while unsafe { libc::kill(self.pid(), 0) } == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the stopped server again, same port and data.
    pub fn restart(&self) {
        if let Err(why) = self.launch() {
            panic!("{why}");
        }
    }

    /// SIGSTOP: the port stays open but nothing answers.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    /// The CA that signed a TLS server's certificate (PEM).
    pub fn ca_file(&self) -> String {
        format!("{}/ca.pem", self.dir)
    }

    /// influxd's own log, including its HTTP access log.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(format!("{}/influxd.log", self.dir)).unwrap_or_default()
    }

    /// Access-log lines of requests answered with `status`.
    pub fn requests_answered(&self, status: u16) -> usize {
        let needle = format!("HTTP/1.1\" {status} ");
        self.server_log()
            .lines()
            .filter(|l| l.contains(&needle))
            .count()
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credentials {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    /// Runs an InfluxQL statement (POST) and panics on an error.
    pub async fn execute(&self, statement: &str) {
        let request = self
            .http
            .post(format!("{}/query", self.url))
            .form(&[("q", statement)]);
        let result: Value = self
            .authorized(request)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            result["results"][0]["error"].is_null() && result["error"].is_null(),
            "{statement}: {result}"
        );
    }

    /// Writes line protocol to `db` (created first) and panics unless all
    /// of it is stored.
    pub async fn write(&self, db: &str, lines: &str) {
        self.execute(&format!("CREATE DATABASE \"{db}\"")).await;
        let request = self
            .http
            .post(format!("{}/write", self.url))
            .query(&[("db", db)])
            .body(lines.to_string());
        let response = self.authorized(request).send().await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            204,
            "{}",
            response.text().await.unwrap()
        );
    }

    /// Runs an InfluxQL query; timestamps come back as nanoseconds.
    pub async fn query(&self, db: &str, q: &str) -> Value {
        let request = self.http.get(format!("{}/query", self.url)).query(&[
            ("db", db),
            ("q", q),
            ("epoch", "ns"),
        ]);
        let response = self
            .authorized(request)
            .send()
            .await
            .expect("querying influxd");
        response.json().await.expect("influxd answered JSON")
    }

    /// The rows of every series a query returns, each row a map from column
    /// (and tag) name to value. A database that does not exist yet has none.
    ///
    /// Every row is whole. InfluxDB fixes a query's columns when it plans
    /// it, from the fields it knows then, so a point that brings a field new
    /// to its measurement while the query runs can come back without it (an
    /// OOM-kill test once read a `die` event without its exit code). So a
    /// query that returns rows is asked again, and only rows the first
    /// answer held are kept, with the second answer's values: every field of
    /// a point the first answer saw is known before the second is planned.
    /// A row new in the second answer waits for the next call.
    pub async fn rows(&self, db: &str, q: &str) -> Vec<HashMap<String, Value>> {
        let first = self.rows_once(db, q).await;
        if first.is_empty() {
            return first;
        }
        let mut unmatched: Vec<RowIdentity> = first.iter().map(RowIdentity::of).collect();
        let second = self.rows_once(db, q).await;
        second
            .into_iter()
            .filter(|row| {
                let found = unmatched.iter().position(|seen| seen.matches(row));
                found.map(|index| unmatched.swap_remove(index)).is_some()
            })
            .collect()
    }

    async fn rows_once(&self, db: &str, q: &str) -> Vec<HashMap<String, Value>> {
        let result = self.query(db, q).await;
        let mut rows = Vec::new();
        let Some(series) = result["results"][0]["series"].as_array() else {
            match result["results"][0]["error"].as_str() {
                // The service creates its database when it starts.
                Some(error) if error.starts_with("database not found") => {}
                Some(error) => panic!("query {q:?} failed: {error}"),
                None => {}
            }
            return rows;
        };
        for s in series {
            let columns: Vec<String> = s["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            for values in s["values"].as_array().unwrap() {
                let mut row: HashMap<String, Value> = columns
                    .iter()
                    .cloned()
                    .zip(values.as_array().unwrap().iter().cloned())
                    .collect();
                if let Some(tags) = s["tags"].as_object() {
                    for (k, v) in tags {
                        row.insert(k.clone(), v.clone());
                    }
                }
                rows.push(row);
            }
        }
        rows
    }

    /// `SELECT count(...)`'s single value, 0 when there is nothing.
    pub async fn count(&self, db: &str, q: &str) -> u64 {
        let rows = self.rows(db, q).await;
        rows.first().and_then(|r| r["count"].as_u64()).unwrap_or(0)
    }
}

impl Drop for InfluxServer {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(format!("{}/influxd.pid", self.dir)) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                unsafe {
                    libc::kill(pid, libc::SIGCONT);
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A minimal blocking HTTP/1.1 POST of a form body; returns the status.
fn post_form(port: u16, path: &str, body: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub fn which(program: &str) -> Option<String> {
    std::env::var("PATH").ok()?.split(':').find_map(|dir| {
        let path = format!("{dir}/{program}");
        std::path::Path::new(&path).is_file().then_some(path)
    })
}

pub fn tempdir(prefix: &str) -> String {
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.to_string_lossy().into_owned()
}

/// What identifies a row across two answers to the same query: its time and
/// its text values (tags, and string fields the first answer had). Numbers
/// are left out, since an aggregate's value moves as points arrive.
struct RowIdentity {
    time: Option<Value>,
    text: Vec<(String, String)>,
}

impl RowIdentity {
    fn of(row: &HashMap<String, Value>) -> RowIdentity {
        let text = row
            .iter()
            .filter(|(column, _)| column.as_str() != "time")
            .filter_map(|(column, value)| Some((column.clone(), value.as_str()?.to_string())))
            .collect();
        RowIdentity {
            time: row.get("time").cloned(),
            text,
        }
    }

    fn matches(&self, row: &HashMap<String, Value>) -> bool {
        row.get("time") == self.time.as_ref()
            && self
                .text
                .iter()
                .all(|(column, text)| row.get(column).and_then(Value::as_str) == Some(text))
    }
}
