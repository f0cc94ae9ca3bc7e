//! The service image, built locally by scripts/build-image (the test
//! command, scripts/test, builds it first), run as a container on the real engine:
//! small, unprivileged, healthy, writing its siblings' stats, and back with
//! no gap longer than the restart after its process is killed.

mod support;

use std::time::{Duration, Instant};

use support::containers::{docker, TestContainers};
use support::eventually;
use support::influx::shared;
use support::samples::{stored_points, wait_for_points};

const IMAGE: &str = "dss-test/docker-stats-service:latest";

/// Removes the service container however the test ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", &self.0])
            .output();
    }
}

/// Builds the image when it is missing; the tests of this file run in
/// parallel and must not build it twice at once.
fn ensure_image() {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let present = std::process::Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .unwrap()
        .status
        .success();
    if !present {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-image");
        let status = std::process::Command::new(script)
            .arg(IMAGE)
            .status()
            .unwrap();
        assert!(status.success(), "scripts/build-image failed");
    }
}

/// The security settings `deploy/docker-compose.yml` and
/// `deploy/docker-stack.yml` give the collector, as `docker run` options.
const HARDENED: &[&str] = &[
    "--cap-drop",
    "ALL",
    "--read-only",
    "--security-opt",
    "no-new-privileges:true",
];

/// Runs the service image as `name` with the Docker socket mounted
/// read-only and the deployment's security settings, writing to the
/// shared InfluxDB's `db`, with `options` added to `docker run`; removed
/// when the guard is dropped. Host networking: the test's InfluxDB listens
/// on the host's loopback.
fn run_service_image(name: &str, db: &str, options: &[&str]) -> Container {
    let env = [
        "INFLUXDB_HOST=127.0.0.1".to_string(),
        format!("INFLUXDB_PORT={}", shared().port),
        format!("INFLUXDB_DB={db}"),
        "BATCH_WAIT_MS=300".to_string(),
        format!("HEALTH_LISTEN=127.0.0.1:{}", support::free_port()),
    ];
    // The socket's group on this host, as docs/installation.md tells users to grant
    // it: the image's build-time group is another host's.
    let socket_group = std::fs::metadata("/var/run/docker.sock")
        .map(|m| std::os::unix::fs::MetadataExt::gid(&m).to_string())
        .unwrap();
    let mut args = vec![
        "run",
        "-d",
        "--name",
        name,
        "--label",
        "dss.test=1",
        "--network",
        "host",
        "--group-add",
        &socket_group,
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock:ro",
    ];
    args.extend_from_slice(HARDENED);
    for variable in &env {
        args.extend(["-e", variable.as_str()]);
    }
    args.extend_from_slice(options);
    args.push(IMAGE);
    docker(&args);
    Container(name.to_string())
}

fn inspect(container: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, container])
}

async fn wait_healthy(container: &str, timeout: Duration) {
    eventually(timeout, "the container to report healthy", || async {
        (inspect(container, "{{.State.Health.Status}}") == "healthy").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_image_runs_unprivileged_reports_healthy_and_survives_a_killed_process() {
    ensure_image();
    let size: u64 = docker(&["image", "inspect", "-f", "{{.Size}}", IMAGE])
        .parse()
        .unwrap();
    assert!(size < 20 * 1024 * 1024, "the image is {size} bytes");

    let influx = shared();
    let db = "image";
    let siblings = TestContainers::new("image");
    let sibling = siblings.idle("sibling");
    let name = siblings.name("service");
    let _guard = run_service_image(&name, db, &["--restart", "unless-stopped"]);
    let user = inspect(&name, "{{.Config.User}}");
    assert!(user.starts_with("65534:"), "runs as {user:?}");
    wait_healthy(&name, Duration::from_secs(60)).await;
    wait_for_points(influx, db, &sibling, Duration::from_secs(20)).await;

    // Kill the process inside from the host; Docker's restart policy brings
    // the container back.
    let pid = inspect(&name, "{{.State.Pid}}");
    let killed_at = Instant::now();
    std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap();
    eventually(Duration::from_secs(30), "a restart", || async {
        (inspect(&name, "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap_or(0)
            >= 1)
            .then_some(())
    })
    .await;
    wait_healthy(&name, Duration::from_secs(60)).await;
    let restart = killed_at.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;

    let times: Vec<i64> = stored_points(influx, db, &sibling)
        .await
        .into_keys()
        .collect();
    let largest_gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    let allowed = restart + Duration::from_secs(2);
    assert!(
        largest_gap as u128 <= allowed.as_nanos(),
        "a gap of {} ms in the sibling's points; the restart took {} ms",
        largest_gap / 1_000_000,
        restart.as_millis()
    );
}

/// The compose lines docs/cgroup-sampling.md documents for `STATS_SAMPLING=cgroup`: the
/// host's cgroup hierarchy and /proc mounted read-only into the unprivileged
/// container are enough to sample other containers from their cgroups.
#[tokio::test(flavor = "multi_thread")]
async fn the_image_samples_cgroups_through_read_only_host_mounts() {
    ensure_image();
    let influx = shared();
    let db = "image_cgroup";
    let siblings = TestContainers::new("image-cgroup");
    let sibling = siblings.idle("sibling");
    let name = siblings.name("service");
    let _guard = run_service_image(
        &name,
        db,
        &[
            "-v",
            "/sys/fs/cgroup:/sys/fs/cgroup:ro",
            "-v",
            "/proc:/host/proc:ro",
            "-e",
            "STATS_SAMPLING=cgroup",
            "-e",
            "PROC_ROOT=/host/proc",
        ],
    );
    let sampled_from_cgroup = || async {
        let points = stored_points(influx, db, &sibling).await;
        let cgroup = points
            .values()
            .filter(|row| row.get("source").and_then(|s| s.as_str()) == Some("cgroup"))
            .count();
        (cgroup >= 20).then_some(())
    };
    eventually(
        Duration::from_secs(30),
        "cgroup readings of the sibling",
        sampled_from_cgroup,
    )
    .await;
    let output = std::process::Command::new("docker")
        .args(["logs", &name])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(
        logs.contains("sampling containers from their cgroups"),
        "the service says how it samples: {logs}"
    );
    assert!(
        !logs.contains("cannot sample container"),
        "a container fell back to the stream: {logs}"
    );
}

/// A named volume for a test, removed when dropped.
struct Volume(String);

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["volume", "rm", "-f", &self.0])
            .output();
    }
}

/// The deployment's disk buffer volume: a fresh named volume mounted where
/// the image keeps the buffer's place starts owned by the service's user,
/// so with a read-only root and no capabilities the log is still written,
/// privately, and what InfluxDB did not take is kept there.
#[tokio::test(flavor = "multi_thread")]
async fn the_hardened_image_keeps_its_disk_buffer_in_a_volume_it_owns() {
    ensure_image();
    let siblings = TestContainers::new("image-buffer");
    siblings.idle("sibling");
    let volume = Volume(siblings.name("buffer"));
    docker(&["volume", "create", "--label", "dss.test=1", &volume.0]);
    let name = siblings.name("service");
    let mount = format!("{}:/var/lib/docker-stats/buffer", volume.0);
    // Nothing listens on this port: every point stays undelivered.
    let nowhere = format!("INFLUXDB_PORT={}", support::free_port());
    let _guard = run_service_image(
        &name,
        "unused",
        &[
            "-v",
            &mount,
            "-e",
            "BUFFER_DIR=/var/lib/docker-stats/buffer",
            "-e",
            "SHUTDOWN_TIMEOUT_MS=1000",
            "-e",
            &nowhere,
        ],
    );
    eventually(Duration::from_secs(30), "points collected", || async {
        let logs = std::process::Command::new("docker")
            .args(["logs", &name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&logs.stderr)
            .contains("kept in the disk buffer, retrying in")
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    docker(&["stop", "-t", "20", &name]);
    assert_eq!(inspect(&name, "{{.State.ExitCode}}"), "1");
    let listing = docker(&[
        "run",
        "--rm",
        "--label",
        "dss.test=1",
        "-v",
        &format!("{}:/buffer:ro", volume.0),
        support::containers::TEST_IMAGE,
        "ls",
        "-ln",
        "/buffer",
    ]);
    let segments: Vec<&str> = listing
        .lines()
        .filter(|l| l.contains(" seg-") && l.ends_with(".log"))
        .collect();
    assert!(
        !segments.is_empty(),
        "no log segment in the volume:\n{listing}"
    );
    let ledger = listing
        .lines()
        .find(|l| l.ends_with(" ledger"))
        .unwrap_or_else(|| panic!("no ledger in the volume:\n{listing}"));
    for file in segments.iter().chain([&ledger]) {
        let columns: Vec<&str> = file.split_whitespace().collect();
        assert_eq!(columns[0], "-rw-------", "{file}");
        assert_eq!(columns[2], "65534", "{file}");
    }
    assert!(
        segments
            .iter()
            .any(|l| l.split_whitespace().nth(4) != Some("0")),
        "the undelivered points are not in the log:\n{listing}"
    );
}
