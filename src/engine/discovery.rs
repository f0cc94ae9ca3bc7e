//! Which engine socket to use when `docker.socket_path` is not configured:
//! found the way the docker CLI finds its engine, then the sockets of the
//! rootless engines a user without access to the system's socket runs.
//!
//! In order: `DOCKER_HOST` (a `unix://` path); the system socket
//! `/var/run/docker.sock` when this user may use it; rootless Docker's
//! `$XDG_RUNTIME_DIR/docker.sock`; Podman's `$XDG_RUNTIME_DIR/podman/podman.sock`
//! (`podman system service`); else the system socket, whose connection
//! error then says what is wrong with it.

use std::path::{Path, PathBuf};

/// The socket docker's CLI and the engine's packages use.
pub const SYSTEM_SOCKET: &str = "/var/run/docker.sock";

/// A socket found, and how: the origin `check-config` and the start-up log
/// name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: String,
    pub how: String,
}

/// What can be known of a candidate socket without connecting to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Missing,
    /// There, but this user may not read and write it.
    Denied,
    Usable,
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

/// Chooses the socket from the environment `env` and what `access` says of
/// each candidate path.
pub fn discover(
    env: impl Fn(&str) -> Option<String>,
    access: impl Fn(&Path) -> Access,
) -> Result<Found, UnsupportedHost> {
    if let Some(host) = env("DOCKER_HOST").filter(|h| !h.trim().is_empty()) {
        let host = host.trim();
        return match host.strip_prefix("unix://") {
            // `unix://` alone is the system socket, as for the docker CLI.
            Some(path) => Ok(Found {
                path: if path.is_empty() { SYSTEM_SOCKET } else { path }.to_string(),
                how: "environment variable DOCKER_HOST".into(),
            }),
            None => Err(UnsupportedHost {
                scheme: scheme_of(host).unwrap_or("(no scheme)").to_string(),
            }),
        };
    }
    if access(Path::new(SYSTEM_SOCKET)) == Access::Usable {
        return Ok(Found {
            path: SYSTEM_SOCKET.into(),
            how: "default".into(),
        });
    }
    let runtime_dir = runtime_dir(&env);
    let user_sockets = [
        ("docker.sock", "rootless Docker's socket"),
        ("podman/podman.sock", "Podman's socket"),
    ];
    for (name, what) in user_sockets {
        let path = runtime_dir.join(name);
        if access(&path) == Access::Usable {
            return Ok(Found {
                path: path.display().to_string(),
                how: format!("found: {what}, as {SYSTEM_SOCKET} is not usable by this user"),
            });
        }
    }
    Ok(Found {
        path: SYSTEM_SOCKET.into(),
        how: "default".into(),
    })
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

/// Whether this process (its effective ids) may use the socket at `path`.
pub fn access(path: &Path) -> Access {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return Access::Missing;
    };
    if !path.exists() {
        return Access::Missing;
    }
    // SAFETY: a valid C string; faccessat only reads it.
    let allowed = unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::R_OK | libc::W_OK,
            libc::AT_EACCESS,
        )
    } == 0;
    if allowed {
        Access::Usable
    } else {
        Access::Denied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn found(
        vars: &[(&str, &str)],
        usable: &[&str],
        denied: &[&str],
    ) -> Result<Found, UnsupportedHost> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        discover(
            |name| vars.get(name).cloned(),
            |path| {
                let path = path.to_str().unwrap();
                if usable.contains(&path) {
                    Access::Usable
                } else if denied.contains(&path) {
                    Access::Denied
                } else {
                    Access::Missing
                }
            },
        )
    }

    #[test]
    fn docker_host_comes_first() {
        let found = found(
            &[("DOCKER_HOST", "unix:///tmp/d.sock")],
            &[SYSTEM_SOCKET],
            &[],
        )
        .unwrap();
        assert_eq!(found.path, "/tmp/d.sock");
        assert_eq!(found.how, "environment variable DOCKER_HOST");
    }

    #[test]
    fn a_docker_host_that_is_no_unix_socket_is_refused_without_its_address() {
        let error = found(&[("DOCKER_HOST", "ssh://me@build-host")], &[], &[]).unwrap_err();
        assert_eq!(error.scheme, "ssh");
        let message = error.to_string();
        assert!(
            message.contains("ssh://") && !message.contains("build-host"),
            "{message}"
        );
        for unschemed in ["localhost:2375", "me@host:22/x://y"] {
            assert_eq!(
                found(&[("DOCKER_HOST", unschemed)], &[], &[])
                    .unwrap_err()
                    .scheme,
                "(no scheme)"
            );
        }
        assert_eq!(
            found(&[("DOCKER_HOST", "unix://")], &[], &[]).unwrap().path,
            SYSTEM_SOCKET
        );
        // Empty is unset, as for the docker CLI.
        assert_eq!(
            found(&[("DOCKER_HOST", "")], &[SYSTEM_SOCKET], &[])
                .unwrap()
                .path,
            SYSTEM_SOCKET
        );
    }

    #[test]
    fn the_system_socket_when_this_user_may_use_it() {
        let runtime = [("XDG_RUNTIME_DIR", "/run/user/1000")];
        let both = [SYSTEM_SOCKET, "/run/user/1000/docker.sock"];
        assert_eq!(found(&runtime, &both, &[]).unwrap().path, SYSTEM_SOCKET);
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
            &[SYSTEM_SOCKET],
        )
        .unwrap();
        assert_eq!(rootless.path, "/run/user/1000/docker.sock");
        assert!(rootless.how.contains("rootless Docker"), "{}", rootless.how);
        let podman = found(&runtime, &["/run/user/1000/podman/podman.sock"], &[]).unwrap();
        assert_eq!(podman.path, "/run/user/1000/podman/podman.sock");
        assert!(podman.how.contains("Podman"), "{}", podman.how);
    }

    #[test]
    fn with_nothing_usable_the_system_socket_says_what_is_wrong() {
        let runtime = [("XDG_RUNTIME_DIR", "/run/user/1000")];
        assert_eq!(
            found(&runtime, &[], &[SYSTEM_SOCKET]).unwrap(),
            Found {
                path: SYSTEM_SOCKET.into(),
                how: "default".into()
            }
        );
    }
}
