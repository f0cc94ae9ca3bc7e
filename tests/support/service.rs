//! The real `docker-stats-service` binary, run as a child process against
//! the machine's Docker engine and the test's InfluxDB, with its log captured.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::influx::{tempdir, Influx};

pub struct Service {
    child: Child,
    log_path: String,
    pub database: String,
}

pub const BINARY: &str = env!("CARGO_BIN_EXE_docker-stats-service");

impl Service {
    /// Starts the service writing to `database`, with a short batch wait and
    /// debug logs; `env` adds or overrides variables. The environment is
    /// otherwise empty, so nothing from the caller's leaks in.
    pub fn start(influx: &Influx, database: &str, env: &[(&str, &str)]) -> Service {
        Self::start_with_args(influx, database, env, &[])
    }

    pub fn start_with_args(
        influx: &Influx,
        database: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Service {
        let dir = tempdir("dss-service");
        let log_path = format!("{dir}/service.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let port = influx.port.to_string();
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .env_clear()
            .env("INFLUXDB_HOST", "127.0.0.1")
            .env("INFLUXDB_PORT", &port)
            .env("INFLUXDB_DB", database)
            .env("BATCH_WAIT_MS", "200")
            .env("HEALTH_LISTEN", "127.0.0.1:0")
            .env("LOG_LEVEL", "debug");
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-stats-service");
        Service {
            child,
            log_path,
            database: database.to_string(),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// A memory figure of the running process from `/proc/<pid>/status`,
    /// in KiB: `VmRSS` (now) or `VmHWM` (the peak so far).
    pub fn memory_kib(&self, which: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(which)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {which} in /proc/{}/status", self.pid()))
    }

    /// The address of `/health` and `/metrics`, once the service logged it.
    pub async fn health_address(&self) -> String {
        self.wait_for_log(
            "health endpoint listening on http://",
            Duration::from_secs(10),
        )
        .await;
        let logs = self.logs();
        logs.split("health endpoint listening on http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("the health address")
            .to_string()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.logs().contains(needle) {
            if Instant::now() > deadline {
                panic!(
                    "service did not log {needle:?} within {timeout:?}; log:\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn signal(&self, signal: i32) {
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// Waits for the process to exit, up to `timeout`.
    pub async fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "service still running {timeout:?} after being asked to stop; log:\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, then the exit status.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait(Duration::from_secs(30)).await
    }

    /// The total the service logged as written at a clean shutdown.
    pub fn points_written_at_exit(&self) -> u64 {
        assert!(
            self.logs().contains("shut down cleanly"),
            "no clean shutdown:\n{}",
            self.logs()
        );
        self.books_at_exit().written
    }
}

/// `GET /health` at `address` (as the service logged it): the status and
/// the JSON body.
pub async fn get_health(address: &str) -> (u16, serde_json::Value) {
    let response = reqwest::get(format!("http://{address}/health"))
        .await
        .expect("GET /health");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// `GET /metrics` at `address`: the Prometheus text.
pub async fn get_metrics(address: &str) -> String {
    reqwest::get(format!("http://{address}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("a text body")
}

/// The writer's books as the service logged them at shutdown.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Books {
    pub collected: u64,
    pub written: u64,
    pub dropped: u64,
    pub rejected: u64,
    pub spooled: u64,
    pub undelivered: u64,
}

impl Service {
    pub fn books_at_exit(&self) -> Books {
        let logs = self.logs();
        let line = logs
            .lines()
            .find(|l| l.contains("] points: collected="))
            .unwrap_or_else(|| panic!("no books in log:\n{logs}"));
        let value = |key: &str| -> u64 {
            line.split_whitespace()
                .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        };
        let books = Books {
            collected: value("collected"),
            written: value("written"),
            dropped: value("dropped"),
            rejected: value("rejected"),
            spooled: value("spooled"),
            undelivered: value("undelivered"),
        };
        assert_eq!(
            books.collected,
            books.written + books.dropped + books.rejected + books.spooled + books.undelivered,
            "the books do not balance: {books:?}"
        );
        books
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary to completion with the given environment and arguments
/// (for configuration errors, which stop it before it does any work).
pub fn run_to_exit(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(BINARY)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("running docker-stats-service");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
