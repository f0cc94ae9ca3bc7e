//! The spool, end to end: points undelivered at shutdown are saved once,
//! durably and privately, loaded within the byte budget at the next start,
//! delivered once, and their files removed; a spool that cannot be written
//! is said plainly.

mod support;

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use support::containers::TestContainers;
use support::influx::{tempdir, InfluxServer, Options};
use support::samples::wait_for_points;
use support::service::{run_to_exit, Service};

const FAST_RETRIES: &[(&str, &str)] = &[
    ("INFLUXDB_RETRY_DELAY", "200"),
    ("INFLUXDB_RETRY_MAX_DELAY", "2000"),
];

/// Waits until the spool holds no file: each is removed once all of its
/// points have left the writer's buffer.
async fn wait_for_delivery(dir: &str, timeout: Duration) {
    let deadline = std::time::Instant::now() + timeout;
    while !spool_files(dir).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "spool files in {dir} not delivered within {timeout:?}: {:?}",
            spool_files(dir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn spool_files(dir: &str) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_buffer_drops_the_oldest_points_and_the_spool_keeps_the_rest_for_the_next_start() {
    let influx = InfluxServer::start(Options::default());
    let db = "buffer";
    influx.stop();
    let spool = support::influx::tempdir("dss-spool");
    let containers = TestContainers::new("buffer");
    let ids: Vec<String> = (0..3)
        .map(|i| containers.idle(&format!("idle{i}")))
        .collect();
    let limit = 16 * 1024;
    let env = [
        FAST_RETRIES[0],
        FAST_RETRIES[1],
        ("MAX_BUFFER_BYTES", "16KiB"),
        ("SHUTDOWN_TIMEOUT_MS", "1000"),
        ("SPOOL_DIR", spool.as_str()),
    ];
    let mut service = Service::start(&influx, db, &env);
    service
        .wait_for_metric(
            r#"dss_points_dropped_total{reason="buffer_full"}"#,
            1.0,
            Duration::from_secs(40),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = service.terminate().await;
    assert_eq!(status.code(), Some(1), "log:\n{}", service.logs());

    let books = service.books_at_exit();
    assert!(books.dropped > 0, "{books:?}");
    assert_eq!(
        books.written + books.rejected + books.undelivered,
        0,
        "{books:?}"
    );
    assert_eq!(books.dropped, books.collected - books.spooled, "{books:?}");
    let files = spool_files(&spool);
    assert_eq!(files.len(), 1);
    let spooled: Vec<String> = support::records::read(files[0].to_str().unwrap())
        .into_iter()
        .map(|(_, line)| line)
        .collect();
    assert_eq!(spooled.len() as u64, books.spooled);
    let size = std::fs::metadata(&files[0]).unwrap().len();
    assert!(
        size as usize <= limit,
        "{size} bytes spooled with a {limit}-byte budget"
    );
    let logs = service.logs();
    assert_eq!(
        logs.matches("buffer full").count(),
        1,
        "overflow is logged once:\n{logs}"
    );

    // Next start: InfluxDB is back, and the spooled points are delivered.
    influx.restart();
    let mut service = Service::start(&influx, db, &env);
    wait_for_delivery(&spool, Duration::from_secs(20)).await;
    assert!(
        spool_files(&spool).is_empty(),
        "the delivered spool file was not removed"
    );
    let first_spooled = spooled
        .iter()
        .find(|l| l.starts_with("docker_stats,"))
        .unwrap();
    let timestamp = first_spooled.rsplit(' ').next().unwrap();
    let q = format!("SELECT count(mem_used) FROM docker_stats WHERE time = {timestamp}");
    assert_eq!(
        influx.count(db, &q).await,
        1,
        "the oldest spooled stats point is not stored: {first_spooled}\n{}",
        service.logs()
    );
    for id in &ids {
        wait_for_points(&influx, db, id, Duration::from_secs(10)).await;
    }
    assert!(service.terminate().await.success());
    let _ = std::fs::remove_dir_all(&spool);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_spool_file_is_reported_and_the_rest_delivered() {
    let influx = InfluxServer::start(Options::default());
    let db = "corrupt_spool";
    let spool = support::influx::tempdir("dss-corrupt-spool");
    let mut bytes = support::records::encode(&["spooled,src=test value=1i 1000"]);
    let junk_at = bytes.len();
    bytes.extend_from_slice(b"\x00\x01binary junk\n");
    bytes.extend(support::records::encode(&[
        "spooled,src=test value=2i 2000",
        "spooled,src=test value=3i 3000",
    ]));
    bytes.truncate(bytes.len() - 5);
    std::fs::write(format!("{spool}/spool-00000000000000000001.log"), bytes).unwrap();
    let mut service = Service::start(&influx, db, &[("SPOOL_DIR", spool.as_str())]);
    wait_for_delivery(&spool, Duration::from_secs(20)).await;
    assert!(service.terminate().await.success());
    let logs = service.logs();
    assert!(
        logs.contains(&format!(
            "has 2 damaged or invalid record(s), skipped (first at offset {junk_at}"
        )),
        "corruption not reported:\n{logs}"
    );
    let rows = influx.rows(db, "SELECT value FROM spooled").await;
    let values: Vec<i64> = rows.iter().map(|r| r["value"].as_i64().unwrap()).collect();
    assert_eq!(values, [1, 2]);
    assert!(spool_files(&spool).is_empty());
    let _ = std::fs::remove_dir_all(&spool);
}

/// A spool file left by an earlier run as root (mode 0600) cannot be read
/// by the service running as uid 65534: it is named, counted, and left in
/// place, never removed or replaced, and the files after it are delivered.
#[tokio::test(flavor = "multi_thread")]
async fn a_spool_file_the_service_may_not_read_is_kept_and_the_others_delivered() {
    use std::os::unix::fs::chown;
    let influx = InfluxServer::start(Options::default());
    let db = "unreadable_spool";
    let spool = tempdir("dss-unreadable-spool");
    let root_only = format!("{spool}/spool-00000000000000000001.log");
    let readable = format!("{spool}/spool-00000000000000000002.log");
    std::fs::write(
        &root_only,
        support::records::encode(&["spooled,src=root value=1i 1000"]),
    )
    .unwrap();
    std::fs::set_permissions(&root_only, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(
        &readable,
        support::records::encode(&["spooled,src=nobody value=2i 2000"]),
    )
    .unwrap();
    chown(&readable, Some(65534), Some(65534)).unwrap();
    chown(&spool, Some(65534), Some(65534)).unwrap();
    // First run, InfluxDB away: the readable file's point is saved again
    // at shutdown, replacing its file but not the unreadable one.
    influx.stop();
    let env = [
        ("SPOOL_DIR", spool.as_str()),
        ("SHUTDOWN_TIMEOUT_MS", "500"),
        FAST_RETRIES[0],
        FAST_RETRIES[1],
    ];
    let mut service = Service::start_as_nobody(&influx, db, &env);
    service.wait_for_collected(Duration::from_secs(20)).await;
    service
        .wait_for_metric(
            "dss_spool_files_unreadable_total",
            1.0,
            Duration::from_secs(10),
        )
        .await;
    // Exit 1: points were left undelivered (saved to the spool).
    let status = service.terminate().await;
    assert_eq!(status.code(), Some(1), "{}", service.logs());
    let logs = service.logs();
    assert_eq!(
        logs.matches(&format!("cannot read spool file {root_only}"))
            .count(),
        1,
        "the unreadable file is not named once:\n{logs}"
    );
    let mut files = spool_files(&spool);
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}\n{logs}");
    assert_eq!(files[0].to_str(), Some(root_only.as_str()), "{logs}");
    // The file also holds what the service collected meanwhile from the
    // containers other tests run.
    let saved: Vec<String> = support::records::read(files[1].to_str().unwrap())
        .into_iter()
        .map(|(_, line)| line)
        .collect();
    assert_eq!(saved[0], "spooled,src=nobody value=2i 2000", "{saved:?}");
    assert!(!saved.iter().any(|l| l.contains("src=root")), "{saved:?}");
    // Second run, InfluxDB back: the saved point is delivered, the
    // unreadable file stays.
    influx.restart();
    let mut service = Service::start_as_nobody(&influx, db, &env);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while spool_files(&spool).len() > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered:\n{}",
            service.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(service.terminate().await.success(), "{}", service.logs());
    assert_eq!(spool_files(&spool), [std::path::PathBuf::from(&root_only)]);
    let rows = influx.rows(db, "SELECT value FROM spooled").await;
    let values: Vec<i64> = rows.iter().map(|r| r["value"].as_i64().unwrap()).collect();
    assert_eq!(values, [2]);
    let _ = std::fs::remove_dir_all(&spool);
}

/// The lines of the one spool file in `dir`, checked to be private and
/// free of repeats.
fn the_one_spool_file(dir: &str) -> Vec<String> {
    let files = spool_files(dir);
    assert_eq!(files.len(), 1, "one spool state on disk: {files:?}");
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{:?} is readable by others", files[0]);
    let lines: Vec<String> = support::records::read(files[0].to_str().unwrap())
        .into_iter()
        .map(|(_, line)| line)
        .collect();
    let distinct: HashSet<&String> = lines.iter().collect();
    assert_eq!(distinct.len(), lines.len(), "the spool repeats points");
    lines
}

#[tokio::test(flavor = "multi_thread")]
async fn three_failed_shutdowns_leave_one_spool_file_and_the_next_start_delivers_each_point_once() {
    let influx = InfluxServer::start(Options::default());
    let db = "spool_runs";
    influx.stop();
    let spool = tempdir("dss-spool-runs");
    let containers = TestContainers::new("spool-runs");
    // A label holding ESC and DEL is written live; reloaded, it must pass
    // the spool's line check too.
    let odd = containers.run(
        "odd",
        &["--label", "dss.odd=esc\x1b del\x7f quote\" end"],
        &["sleep", "3600"],
    );
    for i in 0..2 {
        containers.idle(&format!("idle{i}"));
    }
    let env = [
        FAST_RETRIES[0],
        FAST_RETRIES[1],
        ("SHUTDOWN_TIMEOUT_MS", "1000"),
        ("SPOOL_DIR", spool.as_str()),
        ("STATS_LABEL_TAGS", "dss.odd=odd"),
    ];
    let mut spooled_before = 0;
    for run in 1..=3 {
        let mut service = Service::start(&influx, db, &env);
        // The last run's points count as collected again at start: wait
        // for one of this run's own.
        service
            .wait_for_metric(
                "dss_points_collected_total",
                (spooled_before + 1) as f64,
                Duration::from_secs(30),
            )
            .await;
        // The three containers are followed together at start and sampled
        // every second: a few more seconds put each one's points in the
        // spool (the label check below reads the odd one's).
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(service.terminate().await.code(), Some(1));
        let books = service.books_at_exit();
        assert_eq!(books.undelivered, 0, "run {run}: {books:?}");
        let lines = the_one_spool_file(&spool);
        assert_eq!(lines.len() as u64, books.spooled, "run {run}");
        // Each run loads the last run's points (they count as collected
        // again) and saves them with its own, once.
        assert_eq!(books.dropped, 0, "run {run}: {books:?}");
        assert_eq!(books.spooled, books.collected, "run {run}: {books:?}");
        assert!(
            books.spooled > spooled_before,
            "run {run} collected nothing"
        );
        spooled_before = books.spooled;
    }
    let lines = the_one_spool_file(&spool);

    influx.restart();
    let mut service = Service::start(&influx, db, &env);
    wait_for_delivery(&spool, Duration::from_secs(30)).await;
    assert!(spool_files(&spool).is_empty(), "delivered files remain");
    assert!(service.terminate().await.success());
    let logs = service.logs();
    assert!(!logs.contains("invalid record"), "{logs}");
    // Every spooled stats point is stored: InfluxDB keeps one per series
    // and timestamp, so the count is of distinct points.
    let spooled_stats = lines
        .iter()
        .filter(|l| l.starts_with("docker_stats,"))
        .count() as u64;
    let stored = influx
        .count(db, "SELECT count(mem_used) FROM docker_stats")
        .await;
    assert!(
        stored >= spooled_stats,
        "{stored} stats points stored, {spooled_stats} were spooled"
    );
    let rows = influx
        .rows(
            db,
            &format!("SELECT mem_used, odd FROM docker_stats WHERE container_id = '{odd}' LIMIT 1"),
        )
        .await;
    assert_eq!(
        rows[0]["odd"].as_str(),
        Some("esc\x1b del\x7f quote\" end"),
        "{rows:?}"
    );
    let _ = std::fs::remove_dir_all(&spool);
}

/// Writes `count` valid points of about 200 bytes as a spool file.
fn write_spool_file(dir: &str, stamp: u64, first: u64, count: u64) {
    use std::io::Write;
    let path = format!("{dir}/spool-{stamp:020}.log");
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let padding = "p".repeat(150);
    for i in first..first + count {
        let line = format!(
            "spooled,pad={padding} seq={i}i {}",
            1_600_000_000_000_000_000 + i
        );
        file.write_all(&support::records::encode(&[&line])).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spool_larger_than_the_budget_is_loaded_within_it_keeping_the_newest_points() {
    let influx = InfluxServer::start(Options::default());
    let db = "spool_budget";
    let spool = tempdir("dss-spool-budget");
    // Two files of ~32 MiB each, against a 4 MiB budget.
    let per_file = 160_000;
    write_spool_file(&spool, 1, 0, per_file);
    write_spool_file(&spool, 2, per_file, per_file);
    let total = 2 * per_file;
    let env = [
        ("SPOOL_DIR", spool.as_str()),
        ("MAX_BUFFER_BYTES", "4MiB"),
        ("BATCH_SIZE", "5000"),
        ("DOCKER_SOCKET_PATH", "/nonexistent/docker.sock"),
    ];
    let mut service = Service::start(&influx, db, &env);
    wait_for_delivery(&spool, Duration::from_secs(60)).await;
    let peak = service.memory_kib("VmHWM");
    assert!(spool_files(&spool).is_empty(), "delivered files remain");
    assert!(service.terminate().await.success());
    let books = service.books_at_exit();
    assert_eq!(books.collected, total, "{books:?}");
    assert!(books.dropped > 0 && books.written > 0, "{books:?}");
    assert_eq!(books.dropped + books.written, total, "{books:?}");
    // The newest points are the ones kept, oldest dropped first.
    let newest = influx
        .count(
            db,
            &format!("SELECT count(seq) FROM spooled WHERE seq = {}", total - 1),
        )
        .await;
    let oldest = influx
        .count(db, "SELECT count(seq) FROM spooled WHERE seq = 0")
        .await;
    assert_eq!((newest, oldest), (1, 0));
    assert_eq!(
        influx.count(db, "SELECT count(seq) FROM spooled").await,
        books.written
    );
    // Reading the files whole would have needed 64 MiB.
    assert!(
        peak < 40 * 1024,
        "peak RSS {peak} KiB while loading 64 MiB of spool with a 4 MiB budget"
    );
    let _ = std::fs::remove_dir_all(&spool);
}

#[test]
fn a_spool_dir_the_service_cannot_write_is_a_configuration_error() {
    let base = tempdir("dss-spool-blocked");
    let blocked = format!("{base}/not-a-directory");
    std::fs::write(&blocked, "").unwrap();
    let (code, stderr) = run_to_exit(&[("SPOOL_DIR", &blocked), ("LOG_LEVEL", "info")], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("spool_dir"), "{stderr}");
    assert!(
        stderr.contains("environment variable SPOOL_DIR"),
        "{stderr}"
    );
    assert!(stderr.contains(&blocked), "{stderr}");
    let uid = unsafe { libc::geteuid() };
    assert!(stderr.contains(&format!("uid {uid}")), "{stderr}");
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spool_that_cannot_be_saved_is_reported_and_its_points_counted_undelivered() {
    let influx = InfluxServer::start(Options::default());
    influx.stop();
    let spool = tempdir("dss-spool-lost");
    let containers = TestContainers::new("spool-lost");
    containers.idle("idle");
    let env = [
        FAST_RETRIES[0],
        FAST_RETRIES[1],
        ("SHUTDOWN_TIMEOUT_MS", "1000"),
        ("SPOOL_DIR", spool.as_str()),
    ];
    let mut service = Service::start(&influx, "spool_lost", &env);
    service.wait_for_collected(Duration::from_secs(20)).await;
    // The directory disappears under the service and a file takes its
    // place: the save at shutdown cannot succeed (as on a full disk).
    std::fs::remove_dir_all(&spool).unwrap();
    std::fs::write(&spool, "").unwrap();
    assert_eq!(service.terminate().await.code(), Some(1));
    let books = service.books_at_exit();
    assert_eq!(books.spooled, 0, "{books:?}");
    assert!(books.undelivered > 0, "{books:?}");
    let logs = service.logs();
    assert!(
        logs.contains(&format!("to the spool at {spool}")),
        "the failed save does not name the path:\n{logs}"
    );
    let _ = std::fs::remove_file(&spool);
}
