//! The writer under real InfluxDB faults: outages, a frozen server, wrong
//! credentials, 413 and Retry-After (the spool: `tests/spool.rs`). Each test
//! runs its own `influxd` so it can stop, freeze or reconfigure it.

mod support;

use std::time::{Duration, Instant};

use support::containers::TestContainers;
use support::influx::{InfluxServer, Options};
use support::samples::{
    all_points, assert_books_match_the_daemon_and_influxdb, count_points, record_samples,
    wait_for_points, wait_until_all_stored,
};
use support::service::Service;

const FAST_RETRIES: &[(&str, &str)] = &[
    ("INFLUXDB_RETRY_DELAY", "200"),
    ("INFLUXDB_RETRY_MAX_DELAY", "2000"),
];

/// Runs a fault of `fault_for` against InfluxDB while the engine's own
/// samples are recorded, then checks every sample is stored, once.
async fn every_sample_survives(
    name: &str,
    fault: impl FnOnce(&InfluxServer),
    heal: impl FnOnce(&InfluxServer),
    fault_for: Duration,
) {
    let influx = InfluxServer::start(Options::default());
    let db = name;
    let containers = TestContainers::new(name);
    let id = containers.idle("idle");
    let mut service = Service::start(&influx, db, FAST_RETRIES);
    wait_for_points(&influx, db, &id, Duration::from_secs(20)).await;

    let recorder = tokio::spawn(record_samples(
        id.clone(),
        fault_for + Duration::from_secs(4),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    fault(&influx);
    tokio::time::sleep(fault_for).await;
    heal(&influx);
    let samples = recorder.await.unwrap();
    assert!(
        samples.len() as u64 >= fault_for.as_secs() - 2,
        "only {} samples",
        samples.len()
    );

    wait_until_all_stored(&influx, db, &id, &samples, Duration::from_secs(30)).await;
    let status = service.terminate().await;
    assert!(status.success(), "log:\n{}", service.logs());
    let books = service.books_at_exit();
    assert_eq!((books.dropped, books.rejected), (0, 0));
    assert_books_match_the_daemon_and_influxdb(&influx, db, &id, &samples, &books).await;
    let logs = service.logs();
    assert!(
        logs.contains("InfluxDB writes succeed again"),
        "recovery not logged:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stores_every_sample_emitted_while_influxdb_was_stopped_for_30s() {
    every_sample_survives(
        "outage",
        InfluxServer::stop,
        InfluxServer::restart,
        Duration::from_secs(30),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn loses_nothing_while_influxdb_is_frozen_for_20s() {
    every_sample_survives(
        "frozen",
        InfluxServer::freeze,
        InfluxServer::thaw,
        Duration::from_secs(20),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_is_one_clear_error_without_a_tight_loop_and_recovers() {
    let influx = InfluxServer::start(Options {
        auth: true,
        ..Options::default()
    });
    let db = "auth";
    influx.execute("CREATE DATABASE auth").await;
    influx
        .execute("CREATE USER collector WITH PASSWORD 'right-password'")
        .await;
    influx.execute("GRANT ALL ON auth TO collector").await;
    let containers = TestContainers::new("auth");
    let id = containers.idle("idle");
    let env = [
        ("INFLUXDB_USER", "collector"),
        ("INFLUXDB_PASS", "wrong-password"),
        ("INFLUXDB_RETRY_DELAY", "100"),
        ("INFLUXDB_RETRY_MAX_DELAY", "2000"),
    ];
    let mut service = Service::start(&influx, db, &env);
    service
        .wait_for_check(
            "write_capability",
            false,
            "authentication failed for user \"collector\"",
            Duration::from_secs(20),
        )
        .await;
    let refused_before = influx.requests_answered(401);
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let refused = influx.requests_answered(401) - refused_before;
    let allowed = window.elapsed().as_secs() / 2 + 2;
    assert!(
        refused as u64 <= allowed,
        "{refused} refused requests in 8 s: a tight retry loop"
    );
    assert!(refused >= 2, "it stopped retrying ({refused} requests)");

    // The operator fixes the credentials on the server side.
    influx
        .execute("SET PASSWORD FOR collector = 'wrong-password'")
        .await;
    wait_for_points(&influx, db, &id, Duration::from_secs(15)).await;
    assert!(service.terminate().await.success());
    let logs = service.logs();
    assert_eq!(
        logs.matches("authentication failed").count(),
        1,
        "the authentication error is logged once:\n{logs}"
    );
    assert!(logs.contains("INFLUXDB_USER/INFLUXDB_PASS"));
    assert!(!logs.contains("wrong-password"), "the password was logged");
    let books = service.books_at_exit();
    assert_eq!((books.dropped, books.undelivered), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn http_413_splits_batches_until_they_fit_and_loses_nothing() {
    // A real influxd with a small body limit answers 413 for large batches.
    let influx = InfluxServer::start(Options {
        max_body_size: Some(8_000),
        ..Options::default()
    });
    let db = "too_large";
    let containers = TestContainers::new("toolarge");
    let ids: Vec<String> = (0..4)
        .map(|i| containers.idle(&format!("idle{i}")))
        .collect();
    let mut service = Service::start(
        &influx,
        db,
        &[("BATCH_SIZE", "64"), ("BATCH_WAIT_MS", "3000")],
    );
    service
        .wait_for_log("points as too large (HTTP 413)", Duration::from_secs(30))
        .await;
    for id in &ids {
        wait_for_points(&influx, db, id, Duration::from_secs(20)).await;
    }
    assert!(
        service.terminate().await.success(),
        "log:\n{}",
        service.logs()
    );
    let books = service.books_at_exit();
    assert_eq!(
        (books.dropped, books.rejected, books.undelivered),
        (0, 0, 0),
        "{books:?}"
    );
    assert_eq!(books.written, all_points(&influx, db).await);
    let refusals = influx.requests_answered(413);
    assert!(refusals >= 1);
    assert!(
        refusals <= 8,
        "{refusals} refusals: the lowered batch size was not kept"
    );
    let per_container: u64 = {
        let mut total = 0;
        for id in &ids {
            total += count_points(&influx, db, id).await;
        }
        total
    };
    assert!(per_container >= 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_is_honoured_in_seconds_and_as_an_http_date_and_the_batch_is_resent_unchanged()
{
    // A real InfluxDB 1.x never answers 429 with Retry-After, so this test
    // uses the small fake server in tests/support/fake_influx.rs.
    use support::fake_influx::{FakeInflux, Scripted};
    let started = (Instant::now(), std::time::SystemTime::now());
    let retry_at = started.1 + Duration::from_secs(10);
    let fake = FakeInflux::start(vec![
        Scripted::status(429).header("Retry-After", "3"),
        Scripted::status(503).header("Retry-After", &httpdate::fmt_http_date(retry_at)),
    ])
    .await;
    let containers = TestContainers::new("retryafter");
    containers.idle("idle");
    let port = fake.port.to_string();
    let env = [
        ("INFLUXDB_PORT", port.as_str()),
        ("INFLUXDB_RETRY_DELAY", "100"),
        ("INFLUXDB_RETRY_MAX_DELAY", "20000"),
        ("BATCH_SIZE", "1000"),
        ("BATCH_WAIT_MS", "1500"),
    ];
    let influx = support::influx::shared();
    let mut service = Service::start(influx, "unused", &env);
    support::eventually(Duration::from_secs(30), "three write attempts", || async {
        (fake.writes().len() >= 3).then_some(())
    })
    .await;
    assert!(
        service.terminate().await.success(),
        "log:\n{}",
        service.logs()
    );
    let writes = fake.writes();
    let first_gap = writes[1].at - writes[0].at;
    assert!(
        first_gap >= Duration::from_millis(2900),
        "Retry-After: 3 waited only {first_gap:?}"
    );
    // An HTTP date has whole seconds: allow for the fraction cut off.
    let due = retry_at.duration_since(started.1).unwrap() - Duration::from_secs(1);
    let third_at = writes[2].at - started.0;
    assert!(
        third_at >= due,
        "retried {third_at:?} after the start, before the Retry-After date ({due:?})"
    );
    assert!(
        writes[1].body.starts_with(&writes[0].body),
        "the retried batch changed"
    );
    assert!(
        writes[2].body.starts_with(&writes[0].body),
        "the retried batch changed"
    );
    let books = service.books_at_exit();
    assert_eq!((books.dropped, books.undelivered), (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_dropped_while_running_is_created_again() {
    let influx = InfluxServer::start(Options::default());
    let db = "dropped";
    let containers = TestContainers::new("dropped");
    let id = containers.idle("idle");
    let mut service = Service::start(&influx, db, FAST_RETRIES);
    wait_for_points(&influx, db, &id, Duration::from_secs(20)).await;
    influx.execute("DROP DATABASE dropped").await;
    wait_for_points(&influx, db, &id, Duration::from_secs(15)).await;
    assert!(service.terminate().await.success());
    let logs = service.logs();
    assert_eq!(
        logs.matches("InfluxDB database \"dropped\" ready").count(),
        2,
        "{logs}"
    );
    assert!(logs.contains("does not exist"), "{logs}");
    let books = service.books_at_exit();
    assert_eq!(
        (books.dropped, books.rejected, books.undelivered),
        (0, 0, 0)
    );
}

/// The service against the fake server, with quick retries capped at 2 s,
/// until it made `writes` write requests; then stopped (cleanly). Returns
/// the stopped service and the requests.
async fn run_until_writes(
    fake: &support::fake_influx::FakeInflux,
    test: &str,
    v2: bool,
    writes: usize,
) -> (Service, Vec<support::fake_influx::Recorded>) {
    let containers = TestContainers::new(test);
    containers.idle("idle");
    let mut service = start_against(fake, v2);
    support::eventually(Duration::from_secs(30), "the write requests", || async {
        (fake.writes().len() >= writes).then_some(())
    })
    .await;
    assert!(service.terminate().await.success(), "{}", service.logs());
    (service, fake.writes())
}

fn start_against(fake: &support::fake_influx::FakeInflux, v2: bool) -> Service {
    let port = fake.port.to_string();
    let mut env = vec![
        ("INFLUXDB_PORT", port.as_str()),
        ("INFLUXDB_RETRY_DELAY", "100"),
        ("INFLUXDB_RETRY_MAX_DELAY", "2000"),
        ("BATCH_SIZE", "1000"),
        ("BATCH_WAIT_MS", "1000"),
    ];
    if v2 {
        env.extend([
            ("INFLUXDB_API", "v2"),
            ("INFLUXDB_ORG", "org"),
            ("INFLUXDB_BUCKET", "bucket"),
            ("INFLUXDB_TOKEN", "token"),
        ]);
    }
    Service::start(support::influx::shared(), "unused", &env)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_v2_400_or_422_refuses_the_whole_batch_which_is_counted_rejected_and_not_resent() {
    use support::fake_influx::{lines, FakeInflux, Scripted};
    let fake = FakeInflux::start(vec![
        Scripted::status(400).body(r#"{"code":"invalid","message":"unable to parse 'x': missing fields"}"#),
        Scripted::status(422).body(r#"{"code":"unprocessable entity","message":"failure writing points to database: points beyond retention policy"}"#),
    ])
    .await;
    let (service, writes) = run_until_writes(&fake, "rejected", true, 3).await;
    let refused: Vec<&str> = lines(&writes[0].body)
        .into_iter()
        .chain(lines(&writes[1].body))
        .collect();
    for line in lines(&writes[2].body) {
        assert!(!refused.contains(&line), "a refused point was sent again");
    }
    let books = service.books_at_exit();
    assert_eq!(books.rejected, refused.len() as u64, "{books:?}");
    assert_eq!((books.dropped, books.undelivered), (0, 0), "{books:?}");
    let written: usize = writes[2..].iter().map(|w| lines(&w.body).len()).sum();
    assert_eq!(books.written, written as u64, "{books:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_status_no_retry_can_fix_waits_at_the_cap_is_named_once_and_loses_nothing() {
    use support::fake_influx::{FakeInflux, Scripted};
    let fake = FakeInflux::start(vec![
        Scripted::status(418).body("I'm a teapot"),
        Scripted::status(418).body("I'm a teapot"),
    ])
    .await;
    let (service, writes) = run_until_writes(&fake, "teapot", false, 3).await;
    for pair in writes[..3].windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(1900),
            "retried after {gap:?}, before the 2 s cap"
        );
    }
    let logs = service.logs();
    assert_eq!(logs.matches("HTTP 418").count(), 1, "{logs}");
    assert!(logs.contains("I'm a teapot"), "{logs}");
    let books = service.books_at_exit();
    assert_eq!(
        (books.dropped, books.rejected, books.undelivered),
        (0, 0, 0),
        "{books:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_is_not_followed_and_its_location_is_named() {
    use support::fake_influx::{FakeInflux, Scripted};
    let placeholder = FakeInflux::start(Vec::new()).await;
    let location = format!("http://127.0.0.1:{}/elsewhere", placeholder.port);
    let fake = FakeInflux::start(vec![
        Scripted::status(301).header("Location", &location),
        Scripted::status(302).header("Location", &location),
    ])
    .await;
    let (service, writes) = run_until_writes(&fake, "redirect", false, 3).await;
    assert!(
        placeholder.requests().is_empty()
            && fake
                .requests()
                .iter()
                .all(|r| !r.path.contains("elsewhere")),
        "the redirect was followed"
    );
    let logs = service.logs();
    assert!(
        logs.contains(&format!("redirect (HTTP 301) to {location}")),
        "{logs}"
    );
    assert!(
        writes[1].body.starts_with(&writes[0].body),
        "the batch changed"
    );
    let books = service.books_at_exit();
    assert_eq!((books.dropped, books.undelivered), (0, 0), "{books:?}");
}

/// Runs the service against an InfluxDB that is down, sampling 20
/// containers' cgroups every 10 ms (about 2 MB of points a second) with a
/// `budget`, until the buffer has overflowed for a while; its RSS then.
async fn rss_during_outage(influx: &InfluxServer, budget: &str) -> (u64, u64) {
    let env = [
        ("MAX_BUFFER_BYTES", budget),
        ("STATS_SAMPLING", "cgroup"),
        ("STATS_INTERVAL", "10ms"),
        ("SHUTDOWN_TIMEOUT_MS", "200"),
        ("LOG_LEVEL", "info"),
    ];
    let mut service = Service::start(influx, "outage_memory", &env);
    service
        .wait_for_metric(
            r#"dss_points_dropped_total{reason="buffer_full"}"#,
            1.0,
            Duration::from_secs(60),
        )
        .await;
    // Keep overflowing: every point now replaces an older one.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let rss = service.memory_kib("VmRSS");
    assert_eq!(service.terminate().await.code(), Some(1));
    let books = service.books_at_exit();
    (rss, books.dropped)
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_stays_within_the_buffer_budget_during_an_outage() {
    let influx = InfluxServer::start(Options::default());
    influx.stop();
    let containers = TestContainers::new("outage-memory");
    containers.run_many("c", 20);
    // The same load with almost no buffer: what the service itself takes.
    // Room for a few points (one with every cgroup field is over 1 KiB):
    // a buffer too small for any point would drop each one at once, and
    // the service would have nothing undelivered at its exit.
    let (idle_kib, _) = rss_during_outage(&influx, "8KiB").await;
    let budget_kib = 16 * 1024;
    let (full_kib, dropped) = rss_during_outage(&influx, "16MiB").await;
    assert!(
        dropped > 1000,
        "the buffer never overflowed much: {dropped} dropped"
    );
    let allowed = (budget_kib + idle_kib) * 11 / 10;
    eprintln!(
        "RSS with a full 16 MiB buffer: {full_kib} KiB; service alone {idle_kib} KiB; allowed {allowed} KiB"
    );
    assert!(
        full_kib <= allowed,
        "RSS {full_kib} KiB with a 16 MiB buffer full; the service alone takes {idle_kib} KiB, so at most {allowed} KiB"
    );
}

/// InfluxDB 1.x stores what it can of a batch and says `dropped=0` for the
/// lines it cannot parse, or only the storage engine's count when both
/// refuse points. Here one spooled batch holds a series key over 1.x's
/// 65535-byte limit and a field type conflict among good points: the books
/// must count as rejected exactly the two points InfluxDB does not hold.
#[tokio::test(flavor = "multi_thread")]
async fn a_partial_write_is_counted_as_influxdb_stores_it() {
    let influx = InfluxServer::start(Options::default());
    let db = "partial_write";
    influx.write(db, "conflict,src=t value=1i 1").await;
    let long_key = format!("partial,src=t,label={} value=2i 2000", "x".repeat(70_000));
    let lines = [
        "partial,src=t value=1i 1000",
        long_key.as_str(),
        "partial,src=t value=3i 3000",
        "conflict,src=t value=\"text\" 4000",
        "partial,src=t value=5i 5000",
    ];
    let spool = support::influx::tempdir("dss-partial-write");
    std::fs::write(
        format!("{spool}/spool-00000000000000000001.log"),
        support::records::encode(&lines),
    )
    .unwrap();
    let mut service = Service::start(&influx, db, &[("SPOOL_DIR", spool.as_str())]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(&spool).unwrap().next().is_some() {
        assert!(
            Instant::now() < deadline,
            "not delivered:\n{}",
            service.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(service.terminate().await.success(), "{}", service.logs());
    let books = service.books_at_exit();
    assert_eq!(books.rejected, 2, "{books:?}\n{}", service.logs());
    let stored = influx.count(db, "SELECT count(value) FROM partial").await;
    assert_eq!(stored, 3);
    assert_eq!(
        influx.count(db, "SELECT count(value) FROM conflict").await,
        1,
        "only the point written before the service"
    );
    let _ = std::fs::remove_dir_all(&spool);
}

/// A label far longer than a series key may be, copied into a tag: the
/// value is cut with a marker, said once, counted, and the points stored.
#[tokio::test(flavor = "multi_thread")]
async fn an_over_long_label_tag_is_cut_and_its_points_stored() {
    let influx = InfluxServer::start(Options::default());
    let db = "long_label";
    let containers = TestContainers::new("long-label");
    let label = format!("big={}", "y".repeat(70_000));
    let id = containers.run("idle", &["--label", &label], &["sleep", "3600"]);
    let mut service = Service::start(&influx, db, &[("STATS_LABEL_TAGS", "big")]);
    wait_for_points(&influx, db, &id, Duration::from_secs(20)).await;
    service
        .wait_for_metric("dss_tag_values_cut_total", 1.0, Duration::from_secs(5))
        .await;
    assert!(service.terminate().await.success(), "{}", service.logs());
    let books = service.books_at_exit();
    assert_eq!(books.rejected, 0, "{books:?}");
    let rows = influx
        .rows(
            db,
            &format!(
                "SHOW TAG VALUES FROM docker_stats WITH KEY = \"big\" WHERE container_id = '{id}'"
            ),
        )
        .await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let value = rows[0]["value"].as_str().unwrap().to_string();
    assert!(
        value.ends_with('…') && value.len() <= 1024,
        "{} bytes",
        value.len()
    );
    assert!(value.starts_with("yyyy"));
    let logs = service.logs();
    assert_eq!(
        logs.matches("is longer than InfluxDB takes in a series key")
            .count(),
        1,
        "{logs}"
    );
}
