//! Which engine socket to use when `docker.socket_path` is not configured:
//! found the way the docker CLI finds its engine, then the sockets of the
//! rootless engines a user without access to the system's socket runs.
//!
//! In order: `DOCKER_HOST` (a `unix://` path); the system socket (the
//! setting's default, `/var/run/docker.sock`) when this user may use it;
//! rootless Docker's `$XDG_RUNTIME_DIR/docker.sock`; Podman's
//! `$XDG_RUNTIME_DIR/podman/podman.sock` (`podman system service`); else
//! the system socket, whose connection error then says what is wrong with it.

use std::path::{Path, PathBuf};

/// A socket other than the system's, and how it was found: the origin
/// `check-config` and the start-up log name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: String,
    pub how: String,
}

/// `DOCKER_HOST` names an engine the service cannot speak to: it reads
/// engines through a Unix socket only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedHost {
    /// `tcp`, `ssh`, `npipe`, ...; the rest of the value (which may name a
    /// user or a host) is not repeated in messages.
    pub scheme: String,
}

impl std::fmt::Display for UnsupportedHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "names a {}:// engine; the service reads engines through a Unix socket only: \
             set DOCKER_HOST=unix:///path/to/docker.sock, or DOCKER_SOCKET_PATH",
            self.scheme
        )
    }
}

/// Chooses the socket from the environment `env` and whether this user may
/// use each candidate path (`usable`); `None`: the system socket
/// `system_socket`, usable or not.
pub fn discover(
    system_socket: &str,
    env: impl Fn(&str) -> Option<String>,
    usable: impl Fn(&Path) -> bool,
) -> Result<Option<Found>, UnsupportedHost> {
    if let Some(host) = env("DOCKER_HOST").filter(|h| !h.trim().is_empty()) {
        let host = host.trim();
        return match host.strip_prefix("unix://") {
            // `unix://` alone is the system socket, as for the docker CLI.
            Some(path) => Ok(Some(Found {
                path: if path.is_empty() { system_socket } else { path }.to_string(),
                how: "environment variable DOCKER_HOST".into(),
            })),
            None => Err(UnsupportedHost {
                scheme: scheme_of(host).unwrap_or("(no scheme)").to_string(),
            }),
        };
    }
    if usable(Path::new(system_socket)) {
        return Ok(None);
    }
    let runtime_dir = runtime_dir(&env);
    let user_sockets = [
        ("docker.sock", "rootless Docker's socket"),
        ("podman/podman.sock", "Podman's socket"),
    ];
    Ok(user_sockets.into_iter().find_map(|(name, what)| {
        let path = runtime_dir.join(name);
        usable(&path).then(|| Found {
            path: path.display().to_string(),
            how: format!("found: {what}, as {system_socket} is not usable by this user"),
        })
    }))
}

/// The URL scheme of `host` (`tcp`, `ssh`): only the characters a scheme
/// may have, so a malformed value never puts its address in a message.
fn scheme_of(host: &str) -> Option<&str> {
    let (scheme, _) = host.split_once("://")?;
    let valid = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// `$XDG_RUNTIME_DIR`, else where systemd puts it: `/run/user/<uid>`.
fn runtime_dir(env: &impl Fn(&str) -> Option<String>) -> PathBuf {
    env("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // SAFETY: geteuid cannot fail.
            let uid = unsafe { libc::geteuid() };
            PathBuf::from(format!("/run/user/{uid}"))
        })
}

/// Whether this process (its effective ids) may read and write the socket
/// at `path`; false for one that is not there.
pub fn usable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid C string; faccessat only reads it.
    unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::R_OK | libc::W_OK,
            libc::AT_EACCESS,
        ) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SYSTEM_SOCKET: &str = "/var/run/docker.sock";

    /// What is found with these variables when only the `usable` paths may
    /// be used.
    fn found(vars: &[(&str, &str)], usable: &[&str]) -> Result<Option<Found>, UnsupportedHost> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        discover(
            SYSTEM_SOCKET,
            |name| vars.get(name).cloned(),
            |path| usable.contains(&path.to_str().unwrap()),
        )
    }

    #[test]
    fn docker_host_comes_first() {
        let found = found(&[("DOCKER_HOST", "unix:///tmp/d.sock")], &[SYSTEM_SOCKET])
            .unwrap()
            .unwrap();
        assert_eq!(found.path, "/tmp/d.sock");
        assert_eq!(found.how, "environment variable DOCKER_HOST");
    }

    #[test]
    fn a_docker_host_that_is_no_unix_socket_is_refused_without_its_address() {
        let error = found(&[("DOCKER_HOST", "ssh://me@build-host")], &[]).unwrap_err();
        assert_eq!(error.scheme, "ssh");
        let message = error.to_string();
        assert!(
            message.contains("ssh://") && !message.contains("build-host"),
            "{message}"
        );
        for unschemed in ["localhost:2375", "me@host:22/x://y"] {
            assert_eq!(
                found(&[("DOCKER_HOST", unschemed)], &[])
                    .unwrap_err()
                    .scheme,
                "(no scheme)"
            );
        }
        let unix = found(&[("DOCKER_HOST", "unix://")], &[]).unwrap().unwrap();
        assert_eq!(unix.path, SYSTEM_SOCKET);
        assert_eq!(unix.how, "environment variable DOCKER_HOST");
        // Empty is unset, as for the docker CLI.
        assert_eq!(
            found(&[("DOCKER_HOST", "")], &[SYSTEM_SOCKET]).unwrap(),
            None
        );
    }

    #[test]
    fn the_system_socket_when_this_user_may_use_it() {
        let runtime = [("XDG_RUNTIME_DIR", "/run/user/1000")];
        let both = [SYSTEM_SOCKET, "/run/user/1000/docker.sock"];
        assert_eq!(found(&runtime, &both).unwrap(), None);
    }

    #[test]
    fn a_user_without_the_system_socket_gets_rootless_docker_then_podman() {
        let runtime = [("XDG_RUNTIME_DIR", "/run/user/1000")];
        let rootless = found(
            &runtime,
            &[
                "/run/user/1000/docker.sock",
                "/run/user/1000/podman/podman.sock",
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(rootless.path, "/run/user/1000/docker.sock");
        assert!(rootless.how.contains("rootless Docker"), "{}", rootless.how);
        let podman = found(&runtime, &["/run/user/1000/podman/podman.sock"])
            .unwrap()
            .unwrap();
        assert_eq!(podman.path, "/run/user/1000/podman/podman.sock");
        assert!(podman.how.contains("Podman"), "{}", podman.how);
    }

    #[test]
    fn with_nothing_usable_the_system_socket_says_what_is_wrong() {
        let runtime = [("XDG_RUNTIME_DIR", "/run/user/1000")];
        // The system socket's own origin, `default`, stays.
        assert_eq!(found(&runtime, &[]).unwrap(), None);
    }
}
