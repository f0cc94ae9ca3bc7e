//! The real `docker-stats-service` binary, run as a child process against
//! the machine's Docker engine and the test's InfluxDB, with its log captured.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use docker_stats_service::telemetry::counters::BooksLine;

use super::influx::{tempdir, Influx};
use super::poll_until;

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
        Self::spawn(Command::new(BINARY), influx, database, env, args)
    }

    /// Starts the service as the image runs it: uid and gid 65534, in the
    /// Docker socket's group, with no capabilities (`setpriv`), so files
    /// only root may read are unreadable to it.
    pub fn start_as_nobody(influx: &Influx, database: &str, env: &[(&str, &str)]) -> Service {
        use std::os::unix::fs::MetadataExt;
        let socket_group = std::fs::metadata("/var/run/docker.sock")
            .expect("the Docker socket")
            .gid();
        Self::spawn(
            Self::nobody(&format!("--groups={socket_group}")),
            influx,
            database,
            env,
            &[],
        )
    }

    /// As `start_as_nobody`, but outside the Docker socket's group: a user
    /// who may not use the system's socket.
    pub fn start_as_nobody_without_the_socket(
        influx: &Influx,
        database: &str,
        env: &[(&str, &str)],
    ) -> Service {
        Self::spawn(Self::nobody("--clear-groups"), influx, database, env, &[])
    }

    /// Starts the service as `uid` (its own group, no others, no
    /// capabilities): a user running it beside their rootless engine.
    pub fn start_as_user(
        uid: u32,
        influx: &Influx,
        database: &str,
        env: &[(&str, &str)],
    ) -> Service {
        Self::spawn(
            Self::setpriv(uid, "--clear-groups"),
            influx,
            database,
            env,
            &[],
        )
    }

    fn nobody(groups: &str) -> Command {
        Self::setpriv(65534, groups)
    }

    /// `setpriv` running the binary as `uid` (and the same gid) with no
    /// capabilities and the given supplementary groups.
    fn setpriv(uid: u32, groups: &str) -> Command {
        let mut command = Command::new("setpriv");
        command.args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            groups,
            "--inh-caps=-all",
            "--bounding-set=-all",
            BINARY,
        ]);
        command
    }

    fn spawn(
        mut command: Command,
        influx: &Influx,
        database: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Service {
        let dir = tempdir("dss-service");
        let log_path = format!("{dir}/service.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let port = influx.port.to_string();
        command
            .args(args)
            .env_clear()
            .env("INFLUXDB_HOST", "127.0.0.1")
            .env("INFLUXDB_PORT", &port)
            .env("INFLUXDB_DB", database)
            .env("BATCH_WAIT_MS", "200")
            // The kernel picks the port: a port chosen here and set free
            // again could be taken by another test's server meanwhile.
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

    /// Polls `check` until it returns `Ok`; past `timeout`, panics with
    /// what it saw last and the service's log.
    async fn poll<T, Fut>(&self, timeout: Duration, check: impl FnMut() -> Fut) -> T
    where
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        poll_until(timeout, check, || format!("; log:\n{}", self.logs())).await
    }

    /// The address of `/health` and `/metrics`: the one TCP port the
    /// process listens on, as the kernel reports it, once it answers.
    pub async fn health_address(&self) -> String {
        self.poll(Duration::from_secs(10), || async {
            let address = listening_address(self.pid())
                .ok_or("waiting for the service to listen for /health")?;
            reqwest::get(format!("http://{address}/health"))
                .await
                .map(|_| address)
                .map_err(|error| format!("waiting for /health to answer: {error}"))
        })
        .await
    }

    /// Waits until `/health`'s check `name` passes (`true`) or fails with
    /// a detail that contains `detail`.
    pub async fn wait_for_check(&self, name: &str, ok: bool, detail: &str, timeout: Duration) {
        let address = self.health_address().await;
        self.poll(timeout, || async {
            let (_, body) = get_health(&address).await;
            let check = &body["checks"][name];
            let detail_ok = check["detail"].as_str().is_some_and(|d| d.contains(detail));
            if check["ok"].as_bool() == Some(ok) && detail_ok {
                Ok(())
            } else {
                Err(format!(
                    "waiting for /health check {name} ok={ok} with {detail:?}: {body}"
                ))
            }
        })
        .await
    }

    /// Waits until the engine answers (`/health`'s docker check).
    pub async fn wait_for_engine(&self, timeout: Duration) {
        self.wait_for_check("docker", true, "", timeout).await;
    }

    /// Waits until the event stream is subscribed and the running
    /// containers listed: from then on no start is missed.
    pub async fn wait_for_events(&self, timeout: Duration) {
        self.wait_for_check("events", true, "", timeout).await;
    }

    /// Waits until at least one container is being read.
    pub async fn wait_for_following(&self, timeout: Duration) {
        self.wait_for_metric("dss_active_streams", 1.0, timeout)
            .await;
    }

    /// Waits until the service has collected at least one point: from then
    /// on a shutdown that cannot deliver has something to account for
    /// (exit 1), where one before the first sample would be clean (exit 0).
    pub async fn wait_for_collected(&self, timeout: Duration) {
        self.wait_for_metric("dss_points_collected_total", 1.0, timeout)
            .await;
    }

    /// The value of one `/metrics` series now, if it is shown.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        metric(&get_metrics(&self.health_address().await).await, series)
    }

    /// Waits until `/metrics` no longer shows a last-sample age for the
    /// container: the service stopped following it.
    pub async fn wait_for_unfollowed(&self, id: &str, timeout: Duration) {
        let address = self.health_address().await;
        let label = format!("container_id=\"{id}\"");
        self.poll(timeout, || async {
            if get_metrics(&address).await.contains(&label) {
                Err(format!(
                    "waiting for container {id} to be no longer followed"
                ))
            } else {
                Ok(())
            }
        })
        .await
    }

    /// Waits until the `/metrics` sample `series` (a name with its labels,
    /// as exposed) is at least `at_least`.
    pub async fn wait_for_metric(&self, series: &str, at_least: f64, timeout: Duration) {
        let address = self.health_address().await;
        self.poll(timeout, || async {
            let value = metric(&get_metrics(&address).await, series);
            if value.is_some_and(|v| v >= at_least) {
                Ok(())
            } else {
                Err(format!(
                    "waiting for {series} to reach {at_least}: it is {value:?}"
                ))
            }
        })
        .await
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub async fn wait_for_log(&self, needle: &str, timeout: Duration) {
        self.poll(timeout, || async {
            if self.logs().contains(needle) {
                Ok(())
            } else {
                Err(format!("waiting for the service to log {needle:?}"))
            }
        })
        .await
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

/// The IPv4 address a process listens on over TCP, from its open sockets
/// (`/proc/<pid>/fd`) and the kernel's table of them (`/proc/<pid>/net/tcp`).
fn listening_address(pid: i32) -> Option<String> {
    let sockets: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    table.lines().skip(1).find_map(|line| {
        let columns: Vec<&str> = line.split_whitespace().collect();
        const LISTEN: &str = "0A";
        if columns.get(3) != Some(&LISTEN)
            || !sockets.iter().any(|s| Some(&s.as_str()) == columns.get(9))
        {
            return None;
        }
        let (ip, port) = columns[1].split_once(':')?;
        let ip = u32::from_str_radix(ip, 16).ok()?;
        let port = u16::from_str_radix(port, 16).ok()?;
        // The kernel prints the address in host byte order (little-endian).
        Some(format!(
            "{}:{port}",
            std::net::Ipv4Addr::from(ip.swap_bytes())
        ))
    })
}

/// The value of one series in a `/metrics` text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

impl Service {
    /// The writer's books from the service's last line (`BooksLine`).
    pub fn books_at_exit(&self) -> BooksLine {
        let logs = self.logs();
        let books: BooksLine = logs
            .lines()
            .rev()
            .find(|l| l.contains(BooksLine::PREFIX))
            .unwrap_or_else(|| panic!("no books in log:\n{logs}"))
            .parse()
            .unwrap();
        assert!(books.balances(), "the books do not balance: {books:?}");
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

/// A finished command's exit code and output, for an assertion's message.
pub fn describe(output: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A JSON file the service wrote (`summary.json`).
pub fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}
