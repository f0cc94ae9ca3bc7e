//! Podman for the tests of `tests/podman.rs`, which run in the platform
//! lane's VM (scripts/platform-lane): its Docker-compatible API on a socket
//! of the test's own, and containers the test owns, removed when dropped.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::containers::{TestContainers, TEST_IMAGE};

/// Runs the podman CLI and returns its trimmed stdout; panics with its
/// stderr on failure.
pub fn podman(args: &[&str]) -> String {
    super::containers::run_cli("podman", args)
}

/// `podman system service` on a socket of its own, stopped when dropped.
pub struct PodmanApi {
    child: Child,
    pub socket: String,
}

impl PodmanApi {
    pub fn start() -> PodmanApi {
        ensure_image();
        let socket = format!("/run/dss-test-podman-{}.sock", std::process::id());
        let _ = std::fs::remove_file(&socket);
        let child = Command::new("podman")
            .args(["system", "service", "--time=0", &format!("unix://{socket}")])
            .spawn()
            .expect("starting podman system service");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::path::Path::new(&socket).exists() {
            assert!(
                Instant::now() < deadline,
                "no Podman API socket at {socket}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        PodmanApi { child, socket }
    }
}

impl Drop for PodmanApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// The test image in Podman's store, copied from Docker's.
fn ensure_image() {
    static COPIED: std::sync::Once = std::sync::Once::new();
    COPIED.call_once(|| {
        super::containers::ensure_test_image();
        let status = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "podman image exists {TEST_IMAGE} || docker save {TEST_IMAGE} | podman load -q"
                ),
            ])
            .status()
            .unwrap();
        assert!(status.success(), "copying {TEST_IMAGE} into Podman");
    });
}

/// Podman containers a test owns, named `dss-test-<test>-<pid>-<suffix>`.
pub fn podman_containers(test: &str) -> TestContainers {
    TestContainers::with_cli("podman", test)
}
