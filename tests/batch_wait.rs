//! `batch.wait` counts from when a sample was taken, not from when its point
//! reached the writer: the time a sample spends in a socket before being
//! read (streams are read on a beat) is not added to it. The BatchWriterActor
//! against a real InfluxDB.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::Actor;
use docker_stats_service::config::{self, Overrides};
use docker_stats_service::telemetry::counters::Counters;
use docker_stats_service::telemetry::health::Health;
use docker_stats_service::writer::{BatchWriterActor, WritePoint};
use support::eventually;
use support::influx::shared;

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

#[actix_rt::test]
async fn a_points_batch_wait_counts_from_its_sample_time() {
    let influx = shared();
    let db = "batch_wait";
    let port = influx.port.to_string();
    let env = |name: &str| match name {
        "INFLUXDB_HOST" => Some("127.0.0.1".to_string()),
        "INFLUXDB_PORT" => Some(port.clone()),
        "INFLUXDB_DB" => Some(db.to_string()),
        "BATCH_WAIT_MS" => Some("2000".to_string()),
        _ => None,
    };
    let config = config::load(&Overrides::default(), env).unwrap();
    let counters = Arc::new(Counters::default());
    let health = Arc::new(Health::new(Arc::clone(&counters), Duration::from_secs(60)));
    let writer = BatchWriterActor::new(&config, Arc::clone(&counters), health)
        .unwrap()
        .start();
    let count = |series: &'static str| async move {
        let q = format!("SELECT count(\"v\") FROM \"{series}\"");
        let n = influx.count(db, &q).await;
        (n > 0).then_some(n)
    };

    // Taken 1.5 s ago: 0.5 s of its 2 s wait are left.
    let taken = now_ns() - 1_500_000_000;
    let sent = Instant::now();
    writer.do_send(WritePoint::stamped(format!("old v=1i {taken}"), taken));
    eventually(Duration::from_secs(10), "the old sample", || count("old")).await;
    let waited = sent.elapsed();
    assert!(
        waited < Duration::from_millis(1300),
        "a sample taken 1.5 s ago waited {waited:?} more, not the 0.5 s left of BATCH_WAIT_MS"
    );

    // Taken now: the whole wait, so points still batch.
    let taken = now_ns();
    let sent = Instant::now();
    writer.do_send(WritePoint::stamped(format!("new v=1i {taken}"), taken));
    eventually(Duration::from_secs(10), "the new sample", || count("new")).await;
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(1900),
        "a fresh sample was written after {waited:?}, before BATCH_WAIT_MS"
    );
}
