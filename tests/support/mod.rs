//! Helpers for integration tests: real servers and real containers, each
//! cleaned up when the test ends (or, for the shared InfluxDB, when the
//! test process exits).
#![allow(dead_code)] // Each test binary uses a different part of this.

pub mod containers;
pub mod docker_proxy;
pub mod fake_influx;
pub mod influx;
pub mod podman;
pub mod samples;
pub mod service;
pub mod victoria;

use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the tests run on an emulated CPU: the platform lane's VM under
/// QEMU's TCG (scripts/platform-lane sets `DSS_EMULATED_CPU=1`). There a
/// vCPU can lose tens of milliseconds between the engine reading its clock
/// and reading a counter, so comparisons over one engine second need
/// tolerances wide enough for that; each such test states its own.
pub fn emulated_cpu() -> bool {
    std::env::var_os("DSS_EMULATED_CPU").is_some_and(|v| v == "1")
}

/// A free TCP port on loopback (bound, then released for a server to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding a free loopback port")
}
