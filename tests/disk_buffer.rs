//! The disk buffer, end to end against the real engine and a real influxd:
//! what the collector saw survives `kill -9`, a full disk costs the oldest
//! points only, and a damaged log is read around.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::containers::{docker, TestContainers};
use support::influx::{tempdir, InfluxServer, Options};
use support::samples::{read_ns, record_samples, stored_points};
use support::service::Service;

/// The tests here run one at a time: each service follows every container
/// on the machine, and a 20 ms reader of another test's twenty containers
/// would load the machine the kill test measures on.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const FAST_RETRIES: [(&str, &str); 2] = [
    ("INFLUXDB_RETRY_DELAY", "200"),
    ("INFLUXDB_RETRY_MAX_DELAY", "1000"),
];

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn ids_of(names: &[String]) -> Vec<String> {
    let mut args = vec!["inspect", "-f", "{{.Id}}"];
    args.extend(names.iter().map(String::as_str));
    docker(&args).lines().map(String::from).collect()
}

/// Stored `docker_stats` timestamps of each container.
async fn stored_times(
    influx: &InfluxServer,
    db: &str,
    ids: &[String],
) -> BTreeMap<String, Vec<i64>> {
    let mut out = BTreeMap::new();
    for id in ids {
        out.insert(
            id.clone(),
            stored_points(influx, db, id).await.into_keys().collect(),
        );
    }
    out
}

/// How long after a sample's `read` time the service may be killed and
/// still have to keep it: `buffer.fsync_interval` (1 s, the default), plus
/// the read beat the sample may wait in the socket (200 ms), plus 800 ms
/// for a busy two-core machine to run the service's timers late.
const DURABLE_AFTER: Duration = Duration::from_secs(2);

/// Starts the service and waits until it reads at least `streams` containers.
async fn start_following(
    influx: &InfluxServer,
    db: &str,
    env: &[(&str, &str)],
    streams: usize,
) -> Service {
    let service = Service::start(influx, db, env);
    service
        .wait_for_metric(
            "dss_active_streams",
            streams as f64,
            Duration::from_secs(30),
        )
        .await;
    service
}

/// One run of the service between its start and its `kill -9`.
struct Run {
    started_ns: i64,
    ready_ns: i64,
    killed_ns: i64,
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sample_seen_before_a_kill_9_is_stored_exactly_once_across_ten_kills() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let influx = InfluxServer::start(Options::default());
    let db = "kill9";
    let buffer = tempdir("dss-kill9-buffer");
    let containers = TestContainers::new("kill9");
    let names = containers.run_many("k", 20);
    let ids = ids_of(&names);
    // The daemon's own stream of every container, read beside the service
    // for the whole test.
    let subscribers: Vec<_> = ids
        .iter()
        .map(|id| tokio::spawn(record_samples(id.clone(), Duration::from_secs(105))))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let env = [
        ("BUFFER_DIR", buffer.as_str()),
        FAST_RETRIES[0],
        FAST_RETRIES[1],
    ];
    let mut rng = fastrand::Rng::with_seed(now_ns() as u64);
    let mut runs = Vec::new();
    for _ in 0..10 {
        let started_ns = now_ns();
        let service = start_following(&influx, db, &env, ids.len()).await;
        let ready_ns = now_ns();
        tokio::time::sleep(Duration::from_millis(rng.u64(4000..8000))).await;
        let killed_ns = now_ns();
        service.signal(libc::SIGKILL);
        drop(service);
        runs.push(Run {
            started_ns,
            ready_ns,
            killed_ns,
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // A last run delivers what the log still holds and stops cleanly.
    let mut service = start_following(&influx, db, &env, ids.len()).await;
    let mut recorded = BTreeMap::new();
    for (id, subscriber) in ids.iter().zip(subscribers) {
        let samples: BTreeSet<i64> = subscriber.await.unwrap().iter().map(read_ns).collect();
        recorded.insert(id.clone(), samples);
    }
    assert!(service.terminate().await.success(), "{}", service.logs());
    let books = service.books_at_exit();

    let stored = stored_times(&influx, db, &ids).await;
    let mut checked = 0;
    for id in &ids {
        let daemon = &recorded[id];
        let kept: BTreeSet<i64> = stored[id].iter().copied().collect();
        let last_recorded = *daemon.last().unwrap();
        let extra: Vec<&i64> = kept
            .iter()
            .filter(|t| **t <= last_recorded && !daemon.contains(t))
            .collect();
        assert!(
            extra.is_empty(),
            "{id}: stored points the daemon never sent: {extra:?}"
        );
        for (n, run) in runs.iter().enumerate() {
            // The window opens at the first sample this run stored (the
            // streams open within a second of start) and closes
            // DURABLE_AFTER before the kill.
            let first = kept
                .range(run.started_ns..run.killed_ns)
                .next()
                .unwrap_or_else(|| panic!("run {n} stored nothing of {id}"));
            assert!(
                *first <= run.ready_ns + 2_000_000_000,
                "run {n}: the first stored sample of {id} came {} ms after the service followed every container",
                (first - run.ready_ns) / 1_000_000
            );
            let due_until = run.killed_ns - DURABLE_AFTER.as_nanos() as i64;
            let missing: Vec<&i64> = daemon
                .range(*first..due_until)
                .filter(|t| !kept.contains(t))
                .collect();
            assert!(
                missing.is_empty(),
                "run {n}: {} sample(s) of {id} the service had seen before its kill were lost: {missing:?}",
                missing.len()
            );
            checked += daemon.range(*first..due_until).count();
        }
    }
    eprintln!(
        "kill -9 ten times: {checked} samples due before the kills, all stored once; written {} (InfluxDB holds {})",
        books.written,
        support::samples::all_points(&influx, db).await
    );
    assert!(
        checked >= 20 * 10 * 2,
        "only {checked} samples fell in the runs' windows"
    );
    assert_eq!(
        (books.dropped, books.rejected, books.undelivered),
        (0, 0, 0),
        "{books:?}"
    );
    // InfluxDB keeps one point per series and time: a batch sent again
    // after a kill counts twice in `written` but is stored once.
    let held = support::samples::all_points(&influx, db).await;
    assert!(
        books.written >= held && books.written - held <= 10 * 100,
        "written {} against {held} stored: more than one batch per kill sent again",
        books.written
    );
    let _ = std::fs::remove_dir_all(&buffer);
}

/// A tmpfs of `size` mounted on a new directory, unmounted when dropped.
struct Tmpfs(String);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempdir("dss-tmpfs");
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "dss-test-tmpfs",
                &dir,
            ])
            .status()
            .expect("running mount");
        assert!(
            status.success(),
            "cannot mount a tmpfs on {dir} (the test needs root)"
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_drops_the_oldest_points_and_the_service_recovers_when_space_returns() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let influx = InfluxServer::start(Options::default());
    let db = "disk_full";
    influx.stop();
    // 4 MiB of disk under a 16 MiB budget (1 MiB segments): the disk fills
    // first, in about 15 s of five containers read every 20 ms.
    let disk = Tmpfs::mount("4m");
    let containers = TestContainers::new("diskfull");
    let ids: Vec<String> = (0..5).map(|i| containers.idle(&format!("f{i}"))).collect();
    let env = [
        ("BUFFER_DIR", disk.0.as_str()),
        ("BUFFER_MAX_DISK_BYTES", "16MiB"),
        ("STATS_SAMPLING", "cgroup"),
        ("STATS_INTERVAL", "20ms"),
        FAST_RETRIES[0],
        FAST_RETRIES[1],
    ];
    let started_ns = now_ns();
    let mut service = Service::start(&influx, db, &env);
    let dropped = "dss_points_dropped_total{reason=\"buffer_full\"}";
    service
        .wait_for_metric(dropped, 1.0, Duration::from_secs(90))
        .await;
    // With nothing acknowledged, what is written is synced every interval
    // (1 s; the disk took about 15 s to fill). On a tmpfs a sync does
    // nothing, but the decision to make it is the one a real disk gets.
    let syncs = service.metric("dss_disk_buffer_syncs_total").await.unwrap();
    assert!(syncs >= 5.0, "{syncs} syncs while InfluxDB was away");
    // Full, and still collecting and healthy otherwise.
    let received = service.metric("dss_samples_received_total").await.unwrap();
    let dropped_then = service.metric(dropped).await.unwrap();
    service
        .wait_for_metric(
            "dss_samples_received_total",
            received + 1000.0,
            Duration::from_secs(60),
        )
        .await;
    service
        .wait_for_metric(dropped, dropped_then + 500.0, Duration::from_secs(60))
        .await;
    service
        .wait_for_check("docker", true, "", Duration::from_secs(5))
        .await;
    assert!(
        service.logs().contains("No space left on device"),
        "the full disk is not said:\n{}",
        service.logs()
    );

    // Space returns as InfluxDB takes the backlog.
    influx.restart();
    support::eventually(Duration::from_secs(60), "the backlog to drain", || async {
        let buffered = service.metric("dss_points_buffered").await?;
        (buffered < 200.0).then_some(())
    })
    .await;
    let recovered_ns = now_ns();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(service.terminate().await.success(), "{}", service.logs());
    let books = service.books_at_exit();
    assert!(books.dropped >= 500 && books.undelivered == 0, "{books:?}");

    // What is stored is each container's newest points, without a hole:
    // the oldest went, whole segments (about 3 s of one container) at a time.
    for (id, times) in stored_times(&influx, db, &ids).await {
        assert!(
            times[0] > started_ns + 3_000_000_000,
            "{id}: its oldest points were kept"
        );
        assert!(
            *times.last().unwrap() > recovered_ns,
            "{id}: nothing stored after recovery"
        );
        let widest = times.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(
            widest < 2_500_000_000,
            "{id}: a hole of {} ms among the points kept",
            widest / 1_000_000
        );
    }
}

/// Writes segment `id` of a disk buffer in `dir` as an earlier run would
/// have: `points` points of `measurement`, values 0, 1, ...; answers its path.
fn write_segment(dir: &str, id: u64, measurement: &str, points: u64) -> String {
    let lines: Vec<String> = (0..points)
        .map(|i| format!("{measurement},src=test value={i}i {}", 1_000_000 + i))
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let path = format!("{dir}/seg-{id:020}.log");
    std::fs::write(&path, support::records::encode(&lines)).unwrap();
    path
}

/// Waits until the service's buffer holds no point.
async fn wait_until_delivered(service: &Service, timeout: Duration) {
    support::eventually(timeout, "the log to be delivered", || async {
        let buffered = service.metric("dss_points_buffered").await?;
        (buffered == 0.0).then_some(())
    })
    .await;
}

/// Fills the filesystem of `dir` until a write fails for want of room.
fn fill_up(dir: &str) {
    use std::io::Write;
    let mut filler = std::fs::File::create(format!("{dir}/filler")).unwrap();
    let block = vec![0u8; 4096];
    loop {
        match filler.write_all(&block) {
            Ok(()) => {}
            Err(error) if error.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(error) => panic!("filling {dir}: {error}"),
        }
    }
}

/// A disk already full at start is no configuration error: the service
/// starts, says the disk is full in `/health`, and delivers the backlog
/// that frees the room.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_at_start_is_no_configuration_error_and_the_backlog_is_delivered() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let influx = InfluxServer::start(Options::default());
    let db = "full_at_start";
    influx.stop();
    let disk = Tmpfs::mount("1m");
    write_segment(&disk.0, 1, "backlog", 3000);
    fill_up(&disk.0);
    // No engine: a point collected while the disk is full would, as
    // designed, push the backlog's oldest segment out (a container running
    // on this machine then failed this test, dropping all 3000). Only the
    // backlog's delivery is tested here.
    let env = [
        ("BUFFER_DIR", disk.0.as_str()),
        ("BUFFER_MAX_DISK_BYTES", "16MiB"),
        ("DOCKER_SOCKET_PATH", "/nonexistent/dss-no-engine.sock"),
        FAST_RETRIES[0],
        FAST_RETRIES[1],
    ];
    let mut service = Service::start(&influx, db, &env);
    service
        .wait_for_check("storage", false, "full", Duration::from_secs(10))
        .await;
    influx.restart();
    service
        .wait_for_check("storage", true, "free", Duration::from_secs(30))
        .await;
    assert!(service.terminate().await.success(), "{}", service.logs());
    let books = service.books_at_exit();
    assert!(books.balances() && books.written >= 3000, "{books:?}");
    assert_eq!(
        influx.count(db, "SELECT count(value) FROM backlog").await,
        3000,
        "{}",
        service.logs()
    );
}

/// A segment whose reads fail with EIO (the fault layer in
/// tests/support/eio_shim.c: this kernel has no device-mapper) is named
/// once, counted as one dropped point, and every other segment delivered.
#[tokio::test(flavor = "multi_thread")]
async fn a_segment_failing_with_eio_is_skipped_and_the_rest_delivered() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let influx = InfluxServer::start(Options::default());
    let db = "eio";
    let buffer = tempdir("dss-eio");
    write_segment(&buffer, 1, "before", 100);
    let failing = write_segment(&buffer, 2, "failing", 100);
    write_segment(&buffer, 3, "after", 100);
    let shim = support::eio_shim();
    let env = [
        ("BUFFER_DIR", buffer.as_str()),
        ("LD_PRELOAD", shim.as_str()),
        ("DSS_EIO_PATH", failing.as_str()),
    ];
    let mut service = Service::start(&influx, db, &env);
    wait_until_delivered(&service, Duration::from_secs(30)).await;
    assert_eq!(
        service.metric("dss_disk_buffer_damaged_total").await,
        Some(1.0)
    );
    assert!(service.terminate().await.success(), "{}", service.logs());
    let logs = service.logs();
    assert_eq!(
        logs.matches(&format!("cannot read {failing}")).count(),
        1,
        "{logs}"
    );
    assert!(logs.contains("Input/output error"), "{logs}");
    let books = service.books_at_exit();
    assert!(books.written >= 200 && books.dropped == 1, "{books:?}");
    for (measurement, expected) in [("before", 100), ("failing", 0), ("after", 100)] {
        let stored = influx
            .count(db, &format!("SELECT count(value) FROM {measurement}"))
            .await;
        assert_eq!(stored, expected, "{measurement}");
    }
    let _ = std::fs::remove_dir_all(&buffer);
}

fn segment_files(dir: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".log"))
        .collect();
    files.sort();
    files
}

/// A stats point's container and time, from its line.
fn key_of(line: &str) -> Option<(String, i64)> {
    let id = line
        .split(',')
        .find_map(|kv| kv.strip_prefix("container_id="))?;
    let time = line.rsplit(' ').next()?.parse().ok()?;
    line.starts_with("docker_stats,")
        .then(|| (id.to_string(), time))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_torn_and_a_corrupt_segment_are_reported_and_everything_else_delivered() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let influx = InfluxServer::start(Options::default());
    let db = "damaged_log";
    influx.stop();
    let buffer = tempdir("dss-damaged-buffer");
    let containers = TestContainers::new("damaged");
    let ids: Vec<String> = (0..3).map(|i| containers.idle(&format!("d{i}"))).collect();
    let env = [
        ("BUFFER_DIR", buffer.as_str()),
        ("BUFFER_MAX_DISK_BYTES", "1MiB"),
        ("STATS_SAMPLING", "cgroup"),
        ("SHUTDOWN_TIMEOUT_MS", "1000"),
        FAST_RETRIES[0],
        FAST_RETRIES[1],
    ];
    let mut service = Service::start(&influx, db, &env);
    // A few 64 KiB segments' worth of points, then a stop that keeps them.
    service
        .wait_for_metric("dss_buffered_bytes", 200_000.0, Duration::from_secs(60))
        .await;
    service.terminate().await;
    for id in &ids {
        docker(&["rm", "-f", id]);
    }

    let files = segment_files(&buffer);
    assert!(files.len() >= 3, "{files:?}");
    let mut expected: BTreeSet<(String, i64)> = BTreeSet::new();
    for file in &files {
        expected.extend(
            support::records::read(file)
                .iter()
                .filter_map(|(_, line)| key_of(line)),
        );
    }
    // Flip a byte inside one record of the first segment, and cut the
    // second one in the middle of its last record.
    let first = support::records::read(&files[0]);
    let (hit_at, hit_line) = first
        .iter()
        .rev()
        .find(|(_, l)| key_of(l).is_some_and(|(id, _)| ids.contains(&id)))
        .unwrap()
        .clone();
    let mut bytes = std::fs::read(&files[0]).unwrap();
    bytes[hit_at + 12 + hit_line.len() / 2] ^= 0x55;
    std::fs::write(&files[0], bytes).unwrap();
    let second = support::records::read(&files[1]);
    let (torn_at, torn_line) = second.last().unwrap().clone();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&files[1])
        .unwrap()
        .set_len((torn_at + 12 + torn_line.len() / 2) as u64)
        .unwrap();
    for line in [&hit_line, &torn_line] {
        if let Some(key) = key_of(line) {
            expected.remove(&key);
        }
    }

    influx.restart();
    let mut service = Service::start(&influx, db, &env);
    service
        .wait_for_metric(
            "dss_disk_buffer_damaged_total",
            2.0,
            Duration::from_secs(20),
        )
        .await;
    let logs = service.logs();
    for (file, offset) in [(&files[0], hit_at), (&files[1], torn_at)] {
        assert!(
            logs.contains(&format!("in {file} at offset {offset}")),
            "the damage in {file} at {offset} is not reported:\n{logs}"
        );
    }
    wait_until_delivered(&service, Duration::from_secs(60)).await;
    assert!(service.terminate().await.success());

    let mut delivered: BTreeSet<(String, i64)> = BTreeSet::new();
    for (id, times) in stored_times(&influx, db, &ids).await {
        delivered.extend(times.into_iter().map(|t| (id.clone(), t)));
    }
    let ours: BTreeSet<(String, i64)> = expected
        .into_iter()
        .filter(|(id, _)| ids.contains(id))
        .collect();
    assert!(ours.len() > 100, "{} points", ours.len());
    assert_eq!(
        delivered, ours,
        "every intact point of the removed containers, and only those"
    );
    let _ = std::fs::remove_dir_all(&buffer);
}

#[test]
fn a_disk_buffer_it_cannot_write_or_set_beside_a_spool_is_a_configuration_error() {
    let base = tempdir("dss-buffer-blocked");
    let blocked = format!("{base}/not-a-directory");
    std::fs::write(&blocked, "").unwrap();
    let (code, stderr) =
        support::service::run_to_exit(&[("BUFFER_DIR", &blocked), ("LOG_LEVEL", "info")], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("buffer.dir") && stderr.contains("environment variable BUFFER_DIR"),
        "{stderr}"
    );
    assert!(stderr.contains(&blocked), "{stderr}");

    let (code, stderr) = support::service::run_to_exit(
        &[
            ("BUFFER_DIR", &base),
            ("SPOOL_DIR", &base),
            ("BUFFER_MAX_DISK_BYTES", "1GiB"),
        ],
        &["check-config"],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("spool_dir") && stderr.contains("buffer.dir"),
        "{stderr}"
    );

    let (code, stderr) = support::service::run_to_exit(
        &[("BUFFER_DIR", &base), ("BUFFER_MAX_DISK_BYTES", "64KiB")],
        &["check-config"],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("buffer.max_disk_bytes") && stderr.contains("256KiB"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&base);
}
