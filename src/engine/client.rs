//! Connecting to the Docker engine: the socket, the API version it is spoken
//! to in (`engine::api_version`), and the engine facts the rest of the
//! service needs (its name and platform).

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use bollard::Docker;

use super::api_version::{choose, with_version, ApiVersion, Choice, NEWEST_TESTED};
use crate::backoff::Backoff;

/// The daemon's platform decides which formulas apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Platform {
    #[default]
    Linux,
    Windows,
    /// Linux containers behind Podman's Docker-compatible API, whose stats
    /// differ from Docker's (see `sources::stream::fields`).
    Podman,
}

/// What the service needs to know about the engine it watches.
#[derive(Debug, Clone)]
pub struct Engine {
    pub docker: Docker,
    /// The engine's host name, written as the `host` tag.
    pub name: String,
    pub platform: Platform,
    pub api_version: String,
    /// `cgroupfs` or `systemd`, as `docker info` says.
    pub cgroup_driver: Option<String>,
    /// The host's memory in bytes (`docker info` MemTotal).
    pub memory: Option<u64>,
    /// The engine runs rootless (its security options say `name=rootless`).
    pub rootless: bool,
    /// A rootless engine's user: the owner of its socket. Its containers'
    /// cgroups live under that user's systemd manager.
    pub rootless_user: Option<u32>,
}

impl Engine {
    /// Whether each container has a cgroup of its own. A rootless engine
    /// gets cgroups only from the user's systemd manager: with the cgroupfs
    /// driver (Podman's fallback when the user has no systemd session) its
    /// containers run in the cgroup of whoever started them, so the CPU,
    /// memory, block I/O and pids figures it reports are that cgroup's, not
    /// the container's (Podman 5.8 showed 716% for a container given half
    /// of 2 CPUs).
    pub fn has_container_cgroups(&self) -> bool {
        !self.rootless || self.cgroup_driver.as_deref() == Some("systemd")
    }
}

#[derive(Debug)]
pub enum ConnectError {
    /// The socket file does not exist (yet): the daemon may still be starting.
    SocketMissing { path: String },
    /// The socket exists but the engine did not answer.
    Unreachable {
        path: String,
        error: bollard::errors::Error,
    },
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::SocketMissing { path } => write!(
                f,
                "Docker socket {path} does not exist: is the daemon running and the socket mounted? (DOCKER_SOCKET_PATH)"
            ),
            ConnectError::Unreachable { path, error } => write!(
                f,
                "Docker engine at {path} did not answer: {error} (check the daemon and that this user may read the socket)"
            ),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectError::SocketMissing { .. } => None,
            ConnectError::Unreachable { error, .. } => Some(error),
        }
    }
}

/// The timeout bollard applies to ordinary requests. Streams are watched by
/// their own stall timeout instead (`engine::stats_stream`).
const REQUEST_TIMEOUT_SECS: u64 = 30;

/// Connects once: socket, the API version to speak, engine info.
pub async fn connect(socket_path: &str) -> Result<Engine, ConnectError> {
    let path = socket_path.trim_start_matches("unix://").to_string();
    // bollard's own version never reaches the wire (see engine::api_version):
    // the request modifier names the version on every request.
    let client = Docker::connect_with_unix(&path, REQUEST_TIMEOUT_SECS, &NEWEST_TESTED.into())
        .map_err(|_| ConnectError::SocketMissing { path: path.clone() })?;
    let unreachable = |error| ConnectError::Unreachable {
        path: path.clone(),
        error,
    };
    // Which versions the engine speaks is asked without naming one: an
    // engine refuses a version it does not speak, even for this question.
    let probe = client.with_request_modifier(|r| with_version(r, None));
    let version = probe.version().await.map_err(unreachable)?;
    let speaks = version.api_version.as_deref().and_then(ApiVersion::parse);
    let oldest = version
        .min_api_version
        .as_deref()
        .and_then(ApiVersion::parse);
    let api = match speaks.map(|newest| choose(newest, oldest)) {
        Some(Choice::Tested(api)) => api,
        Some(Choice::Untested(api)) => {
            log::warn!(
                "the Docker engine no longer speaks API {NEWEST_TESTED}, the newest this \
                 service is tested with; speaking its oldest, {api}"
            );
            api
        }
        None => {
            log::warn!(
                "the Docker engine did not say which API versions it speaks ({:?}); \
                 speaking {NEWEST_TESTED}",
                version.api_version
            );
            NEWEST_TESTED
        }
    };
    let docker = probe.with_request_modifier(move |r| with_version(r, Some(api)));
    let info = docker.info().await.map_err(unreachable)?;
    // Podman's compatible API names itself among the version's components.
    let podman = version
        .components
        .iter()
        .flatten()
        .any(|c| c.name.eq_ignore_ascii_case("Podman Engine"));
    let platform = match info.os_type.as_deref() {
        Some(os) if os.eq_ignore_ascii_case("windows") => Platform::Windows,
        _ if podman => Platform::Podman,
        _ => Platform::Linux,
    };
    let api_version = api.to_string();
    // Rootless Docker and rootless Podman both say so among their security
    // options; the user they run as owns the socket they listen on.
    let rootless = info
        .security_options
        .iter()
        .flatten()
        .any(|option| option.split(',').any(|part| part == "name=rootless"));
    let rootless_user = if rootless {
        std::fs::metadata(&path).ok().map(|socket| socket.uid())
    } else {
        None
    };
    Ok(Engine {
        docker,
        name: info.name.unwrap_or_else(|| "unknown".into()),
        platform,
        api_version,
        cgroup_driver: info.cgroup_driver.map(|d| format!("{d}")),
        memory: info.mem_total.and_then(|m| u64::try_from(m).ok()),
        rootless,
        rootless_user,
    })
}

const RECONNECT_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(500),
    max: Duration::from_secs(10),
};

/// Connects, retrying with a capped exponential backoff until it works: the
/// service is often started before the daemon. Logs once when the engine is
/// unreachable and once when it is reached; `report` hears every attempt.
pub async fn connect_with_retry(
    socket_path: &str,
    report: impl Fn(Result<&Engine, &ConnectError>),
) -> Engine {
    let mut failures = 0u32;
    loop {
        match connect(socket_path).await {
            Ok(engine) => {
                report(Ok(&engine));
                if failures > 0 {
                    log::info!("Docker engine reachable again after {failures} failed attempts");
                }
                return engine;
            }
            Err(error) => {
                report(Err(&error));
                if failures == 0 {
                    log::error!("{error}; retrying until it answers");
                } else {
                    log::trace!("Docker engine still unreachable: {error}");
                }
                failures += 1;
                tokio::time::sleep(RECONNECT_BACKOFF.delay(failures)).await;
            }
        }
    }
}
