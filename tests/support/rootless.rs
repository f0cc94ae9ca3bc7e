//! Rootless Podman and rootless Docker for `tests/rootless.rs`, in the
//! platform lane's VM: a user of the test's own with a systemd user manager
//! (lingering, as a user's login would start it), that user's engines on
//! the sockets their users get, and their CLIs run as that user.
//!
//! The CLIs are reached through small wrapper scripts, so that
//! `TestContainers` drives them as it drives `docker` and `podman`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::containers::{run_cli, TEST_IMAGE};

/// The test user. uid 1000 is the first a Debian host gives; the VM has no
/// other user.
pub const USER: &str = "dss-rootless";
pub const UID: u32 = 1000;
pub const RUNTIME_DIR: &str = "/run/user/1000";
/// Where Debian's docker.io keeps the rootless scripts (not on PATH).
const ROOTLESS_SCRIPTS: &str = "/usr/share/docker.io/contrib";

/// The user's environment as a login gives it: the runtime directory and
/// the user bus of `user@1000.service`, which Podman's systemd cgroup
/// manager and rootless Docker ask for their scopes.
fn user_env() -> String {
    format!(
        "HOME=/home/{USER} XDG_RUNTIME_DIR={RUNTIME_DIR} \
         DBUS_SESSION_BUS_ADDRESS=unix:path={RUNTIME_DIR}/bus \
         PATH={ROOTLESS_SCRIPTS}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
    )
}

/// A command run as the user: `setpriv` execs in place, so the child's pid
/// is the program's own (a signal to it reaches the program).
pub fn as_user(program: &str) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args([
            &format!("--reuid={UID}"),
            &format!("--regid={UID}"),
            "--init-groups",
            "env",
        ])
        .args(user_env().split(' '))
        .arg(program)
        .current_dir("/tmp");
    command
}

/// Creates the user once, with subordinate ids, and starts its systemd
/// manager by lingering; returns when the user bus answers. Also writes the
/// CLI wrappers `dss-rootless-podman` and `dss-rootless-docker`.
pub fn ensure_user() {
    static READY: std::sync::Once = std::sync::Once::new();
    READY.call_once(|| {
        if Command::new("id").arg(USER).output().unwrap().status.code() != Some(0) {
            run_cli(
                "useradd",
                &["--create-home", "--uid", &UID.to_string(), USER],
            );
        }
        run_cli("loginctl", &["enable-linger", USER]);
        wait_for(&format!("{RUNTIME_DIR}/bus"), Duration::from_secs(120));
        for (wrapper, cli) in [
            ("dss-rootless-podman", "podman".to_string()),
            (
                "dss-rootless-docker",
                format!("docker -H unix://{RUNTIME_DIR}/docker.sock"),
            ),
        ] {
            let path = format!("/usr/local/bin/{wrapper}");
            std::fs::write(
                &path,
                format!(
                    "#!/bin/sh\ncd /tmp && exec setpriv --reuid={UID} --regid={UID} --init-groups env {} {cli} \"$@\"\n",
                    user_env()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    });
}

fn wait_for(path: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !Path::new(path).exists() {
        assert!(Instant::now() < deadline, "no {path} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A user with no systemd session (no lingering, never logged in), as on
/// a host without `libpam-systemd`: Podman falls back to its cgroupfs
/// manager and runs containers in the cgroup of whoever started them.
pub const SESSIONLESS_USER: &str = "dss-sessionless";
pub const SESSIONLESS_UID: u32 = 1001;

/// That user's Podman API on a socket in a directory of the test's own
/// (the user has no `/run/user/1001`), with the wrapper
/// `dss-sessionless-podman` for its CLI.
pub fn sessionless_podman() -> RootlessEngine {
    if Command::new("id")
        .arg(SESSIONLESS_USER)
        .output()
        .unwrap()
        .status
        .code()
        != Some(0)
    {
        run_cli(
            "useradd",
            &[
                "--create-home",
                "--uid",
                &SESSIONLESS_UID.to_string(),
                SESSIONLESS_USER,
            ],
        );
    }
    let dir = format!("/tmp/{SESSIONLESS_USER}");
    std::fs::create_dir_all(&dir).unwrap();
    run_cli("chown", &[SESSIONLESS_USER, &dir]);
    let env = format!("HOME=/home/{SESSIONLESS_USER} PATH=/usr/bin:/bin:/usr/sbin:/sbin");
    let setpriv = format!(
        "setpriv --reuid={SESSIONLESS_UID} --regid={SESSIONLESS_UID} --init-groups env {env}"
    );
    let wrapper = "/usr/local/bin/dss-sessionless-podman";
    std::fs::write(
        wrapper,
        format!("#!/bin/sh\ncd /tmp && exec {setpriv} podman \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy_test_image("dss-sessionless-podman");
    let socket = format!("{dir}/podman.sock");
    let _ = std::fs::remove_file(&socket);
    let mut service = Command::new("sh");
    service.args([
        "-c",
        &format!(
            "cd /tmp && exec {setpriv} podman system service --time=0 unix://{socket} 2>/dev/null"
        ),
    ]);
    RootlessEngine::start(service, socket, "dss-sessionless-podman")
}

/// Copies the test image from the rootful Docker's store into a rootless
/// engine's (`wrapper` is its CLI).
fn copy_test_image(wrapper: &str) {
    super::containers::ensure_test_image();
    let status = Command::new("sh")
        .args([
            "-c",
            &format!("{wrapper} image inspect {TEST_IMAGE} >/dev/null 2>&1 || docker save {TEST_IMAGE} | {wrapper} load -q"),
        ])
        .status()
        .unwrap();
    assert!(status.success(), "copying {TEST_IMAGE} into {wrapper}");
}

/// A rootless engine's API, stopped (with its containers) when dropped.
pub struct RootlessEngine {
    child: Child,
    /// The socket its users get: what discovery finds.
    pub socket: String,
    /// The CLI wrapper that drives it.
    pub cli: &'static str,
}

impl RootlessEngine {
    /// `podman system service` as the user, on the user's Podman socket.
    pub fn podman() -> RootlessEngine {
        ensure_user();
        copy_test_image("dss-rootless-podman");
        let socket = format!("{RUNTIME_DIR}/podman/podman.sock");
        let _ = std::fs::remove_file(&socket);
        let mut service = as_user("sh");
        service.args([
            "-c",
            &format!("mkdir -p {RUNTIME_DIR}/podman && exec podman system service --time=0 unix://{socket}"),
        ]);
        Self::start(service, socket, "dss-rootless-podman")
    }

    /// Rootless `dockerd` (RootlessKit, slirp4netns) as the user, on
    /// `$XDG_RUNTIME_DIR/docker.sock`, as Docker's rootless script runs it.
    pub fn docker() -> RootlessEngine {
        ensure_user();
        let socket = format!("{RUNTIME_DIR}/docker.sock");
        // A socket an earlier daemon left would be found before it listens.
        let _ = std::fs::remove_file(&socket);
        let log = std::fs::File::create("/tmp/dss-rootless-dockerd.log").unwrap();
        let mut daemon = as_user("dockerd-rootless.sh");
        daemon.stdout(log.try_clone().unwrap()).stderr(log);
        let engine = Self::start(daemon, socket, "dss-rootless-docker");
        // The socket appears before the daemon answers.
        let deadline = Instant::now() + Duration::from_secs(120);
        while !Command::new("dss-rootless-docker")
            .arg("info")
            .output()
            .unwrap()
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "rootless dockerd did not answer: {}",
                std::fs::read_to_string("/tmp/dss-rootless-dockerd.log").unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        copy_test_image("dss-rootless-docker");
        engine
    }

    fn start(mut command: Command, socket: String, cli: &'static str) -> RootlessEngine {
        let child = command.spawn().expect("starting a rootless engine");
        wait_for(&socket, Duration::from_secs(120));
        RootlessEngine { child, socket, cli }
    }
}

impl Drop for RootlessEngine {
    fn drop(&mut self) {
        // SIGTERM: dockerd stops its containers and RootlessKit follows;
        // Podman's service just exits.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Discovery must not find it once it is gone.
        let _ = std::fs::remove_file(&self.socket);
    }
}
