//! Helpers for integration tests: real servers and real containers, each
//! cleaned up when the test ends (or, for the shared InfluxDB, when the
//! test process exits).
#![allow(dead_code)] // Each test binary uses a different part of this.

pub mod browser;
pub mod containers;
pub mod docker_proxy;
pub mod fake_influx;
pub mod influx;
pub mod podman;
pub mod records;
pub mod rootless;
pub mod samples;
pub mod service;
pub mod victoria;

use std::time::{Duration, Instant};

/// The fault layer `eio_shim.c`, built once per test binary: with it in
/// LD_PRELOAD, reads of the file named by DSS_EIO_PATH fail with EIO.
pub fn eio_shim() -> String {
    static BUILT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let source = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/eio_shim.c");
            let library = format!(
                "{}/dss-eio-shim-{}.so",
                env!("CARGO_TARGET_TMPDIR"),
                std::process::id()
            );
            let status = std::process::Command::new("cc")
                .args(["-shared", "-fPIC", "-O2", "-o", &library, source, "-ldl"])
                .status()
                .expect("running cc to build the EIO fault layer");
            assert!(status.success(), "cc could not build {source}");
            library
        })
        .clone()
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let awaited = || format!("waiting for {what}");
    poll_until(
        timeout,
        || {
            let checked = check();
            async move { checked.await.ok_or_else(awaited) }
        },
        String::new,
    )
    .await
}

/// Polls `check` until it returns `Ok`. Past `timeout` it panics with the
/// last `Err` (what was awaited and what was seen) and `context()` (such
/// as a service's log), read only then.
pub async fn poll_until<T, F, Fut>(
    timeout: Duration,
    mut check: F,
    context: impl Fn() -> String,
) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() > deadline => {
                panic!("timed out after {timeout:?} {seen}{}", context())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
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
