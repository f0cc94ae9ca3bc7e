//! TLS to a real InfluxDB serving https with a certificate signed by a CA
//! the test makes: a private CA is trusted when given, certificates are
//! always verified, and a TLS problem is named as one.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::containers::TestContainers;
use support::eventually;
use support::influx::{InfluxServer, Options};
use support::samples::wait_for_points;
use support::service::{get_health, run_to_exit, Service};

fn tls_server() -> InfluxServer {
    InfluxServer::start(Options {
        tls: true,
        ..Options::default()
    })
}

async fn health(service: &Service) -> Value {
    get_health(&service.health_address().await).await.1
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_a_private_ca_stores_points() {
    let influx = tls_server();
    let db = "tls_ok";
    let containers = TestContainers::new("tls-ok");
    let id = containers.idle("idle");
    let ca = influx.ca_file();
    let mut service = Service::start(
        &influx,
        db,
        &[("INFLUXDB_PROTOCOL", "https"), ("INFLUXDB_CA_FILE", &ca)],
    );
    wait_for_points(&influx, db, &id, Duration::from_secs(20)).await;
    assert!(service.terminate().await.success(), "{}", service.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_certificate_is_a_tls_failure_to_fix_and_no_point_is_lost() {
    let influx = tls_server();
    let containers = TestContainers::new("tls-untrusted");
    containers.idle("idle");
    let mut service = Service::start(
        &influx,
        "tls_untrusted",
        &[
            ("INFLUXDB_PROTOCOL", "https"),
            ("INFLUXDB_RETRY_MAX_DELAY", "1s"),
            ("SHUTDOWN_TIMEOUT_MS", "1000"),
        ],
    );
    let body = eventually(
        Duration::from_secs(20),
        "write_capability to fail",
        || async {
            let body = health(&service).await;
            (body["checks"]["write_capability"]["ok"] == false).then_some(body)
        },
    )
    .await;
    let detail = body["checks"]["write_capability"]["detail"]
        .as_str()
        .unwrap();
    assert!(
        detail.contains("TLS") && detail.contains("INFLUXDB_CA_FILE"),
        "{detail}"
    );
    // The check fails at the first attempt to create the database, which
    // can come before the first sample: wait for a point to account for.
    service.wait_for_collected(Duration::from_secs(20)).await;
    assert_eq!(service.terminate().await.code(), Some(1));
    let logs = service.logs();
    assert!(!logs.contains("unreachable"), "{logs}");
    let books = service.books_at_exit();
    assert_eq!(
        (books.written, books.dropped, books.rejected),
        (0, 0, 0),
        "{books:?}"
    );
    assert!(books.undelivered > 0, "{books:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_to_the_https_port_is_named_and_rejects_no_point() {
    let influx = tls_server();
    let containers = TestContainers::new("tls-plain");
    containers.idle("idle");
    let mut service = Service::start(
        &influx,
        "tls_plain",
        &[
            ("INFLUXDB_RETRY_MAX_DELAY", "1s"),
            ("SHUTDOWN_TIMEOUT_MS", "1000"),
        ],
    );
    service
        .wait_for_log("INFLUXDB_PROTOCOL=https", Duration::from_secs(20))
        .await;
    service.wait_for_collected(Duration::from_secs(20)).await;
    assert_eq!(service.terminate().await.code(), Some(1));
    let books = service.books_at_exit();
    assert_eq!((books.written, books.rejected), (0, 0), "{books:?}");
}

#[test]
fn a_ca_file_that_is_missing_or_holds_no_certificate_is_a_configuration_error() {
    let (code, stderr) = run_to_exit(&[("INFLUXDB_CA_FILE", "/nonexistent/ca.pem")], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("INFLUXDB_CA_FILE") && stderr.contains("/nonexistent/ca.pem"),
        "{stderr}"
    );
    let dir = support::influx::tempdir("dss-ca");
    let junk = format!("{dir}/ca.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let (code, stderr) = run_to_exit(&[("INFLUXDB_CA_FILE", &junk)], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no PEM certificate"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
