//! The v2 write API against a real server (VictoriaMetrics), `/health` and
//! `/metrics` under real faults, the `healthcheck` and `check-config`
//! commands, and secrets that never reach any output.

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use support::containers::TestContainers;
use support::docker_proxy::DockerProxy;
use support::eventually;
use support::influx::{tempdir, InfluxServer, Options};
use support::samples::{cli_cpu_percent, cli_mem_used, read_ns, record_samples, wait_for_points};
use support::service::{get_health, get_metrics, run_to_exit, Service, BINARY};
use support::victoria::Victoria;

const SECRET: &str = "s3cr3t-t0ken-never-logged";

#[tokio::test(flavor = "multi_thread")]
async fn the_v2_api_stores_the_same_values_tags_and_timestamps() {
    let victoria = Victoria::start();
    let containers = TestContainers::new("v2");
    let id = containers.run(
        "busy",
        &["--cpus", "0.5"],
        &["sh", "-c", "while :; do :; done"],
    );
    let secrets = tempdir("dss-v2-secret");
    let token_file = format!("{secrets}/token");
    std::fs::write(&token_file, format!("{SECRET}\n")).unwrap();
    let port = victoria.port.to_string();
    let influx = support::influx::shared();
    let mut service = Service::start(
        influx,
        "unused-by-v2",
        &[
            ("INFLUXDB_API", "v2"),
            ("INFLUXDB_PORT", &port),
            ("INFLUXDB_ORG", "load-tests"),
            ("INFLUXDB_BUCKET", "docker-stats"),
            ("INFLUXDB_TOKEN_FILE", &token_file),
            ("LOG_LEVEL", "trace"),
        ],
    );
    service.wait_for_following(Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let samples = record_samples(id.clone(), Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        service.terminate().await.success(),
        "log:\n{}",
        service.logs()
    );
    assert!(
        !service.logs().contains(SECRET),
        "the token appeared in the log"
    );

    let ours = |series: &[support::victoria::Series]| -> HashMap<i64, f64> {
        series
            .iter()
            .filter(|s| s.labels.get("container_id") == Some(&id))
            .flat_map(|s| s.points.clone())
            .collect()
    };
    // VictoriaMetrics makes freshly ingested rows searchable only after it
    // flushes its in-memory buffers (about a second, longer on a loaded
    // machine), so the last batch may not be visible at once: wait until
    // every recorded sample's time is there, then compare values.
    let wanted: Vec<i64> = samples.iter().map(|s| read_ns(s) / 1_000_000).collect();
    let (mem, mem_points, cpu_points) = eventually(
        Duration::from_secs(20),
        "every recorded sample to be exported by victoria-metrics",
        || async {
            let mem = victoria.export("docker_stats_mem_used").await;
            let cpu = victoria.export("docker_stats_cpu_percent").await;
            let (mem_points, cpu_points) = (ours(&mem), ours(&cpu));
            let complete = wanted
                .iter()
                .all(|ms| mem_points.contains_key(ms) && cpu_points.contains_key(ms));
            complete.then_some((mem, mem_points, cpu_points))
        },
    )
    .await;
    let labelled = mem
        .iter()
        .find(|s| s.labels.get("container_id") == Some(&id))
        .expect("our series");
    assert_eq!(labelled.labels["container_name"], containers.name("busy"));
    assert_eq!(labelled.labels["image"], support::containers::TEST_IMAGE);
    assert!(!labelled.labels["host"].is_empty());
    assert!(samples.len() >= 4);
    let mut compared = 0;
    for sample in &samples {
        // VictoriaMetrics keeps milliseconds.
        let ms = read_ns(sample) / 1_000_000;
        let used = cli_mem_used(sample) as f64;
        assert_eq!(mem_points.get(&ms), Some(&used), "mem_used at {ms}");
        if let Some(expected) = cli_cpu_percent(sample) {
            let stored = cpu_points[&ms];
            assert!(
                (stored - expected).abs() <= 1e-9 * expected.max(1.0),
                "cpu_percent at {ms}: {stored} vs {expected}"
            );
            compared += 1;
        }
    }
    assert!(compared >= 3);
    let _ = std::fs::remove_dir_all(secrets);
}

async fn wait_for_health(address: &str, status: u16, failing: Option<&str>) -> Value {
    let what = format!("/health to answer {status} (failing: {failing:?})");
    eventually(Duration::from_secs(30), &what, || async {
        let (got, body) = get_health(address).await;
        let names: Vec<String> = body["failing"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let matches = got == status && failing.is_none_or(|f| names.iter().any(|n| n == f));
        matches.then_some(body)
    })
    .await
}

fn healthcheck(address: &str) -> Option<i32> {
    healthcheck_with(address, &[])
}

/// `healthcheck --liveness`: what an orchestrator that replaces unhealthy
/// tasks (Swarm) is given.
fn liveness(address: &str) -> Option<i32> {
    healthcheck_with(address, &["--liveness"])
}

fn healthcheck_with(address: &str, args: &[&str]) -> Option<i32> {
    Command::new(BINARY)
        .arg("healthcheck")
        .args(args)
        .env_clear()
        .env("HEALTH_LISTEN", address)
        .output()
        .unwrap()
        .status
        .code()
}

#[tokio::test(flavor = "multi_thread")]
async fn health_follows_influxdb_and_docker_outages_and_recoveries() {
    let influx = InfluxServer::start(Options::default());
    let db = "health";
    let containers = TestContainers::new("health");
    let id = containers.idle("idle");
    let proxy = DockerProxy::start().await;
    let mut service = Service::start(
        &influx,
        db,
        &[
            ("DOCKER_SOCKET_PATH", proxy.path()),
            ("INFLUXDB_RETRY_DELAY", "200"),
            ("INFLUXDB_RETRY_MAX_DELAY", "1000"),
            ("INFLUXDB_PASS", SECRET),
        ],
    );
    let address = service.health_address().await;
    wait_for_points(&influx, db, &id, Duration::from_secs(20)).await;
    let healthy = wait_for_health(&address, 200, None).await;
    assert_eq!(healthy["status"], "healthy");
    assert!(
        !healthy.to_string().contains(SECRET),
        "the password appeared in /health"
    );
    assert!(healthy["containers_watched"].as_u64().unwrap() >= 1);
    assert!(healthy["last_write_age_seconds"].as_f64().unwrap() < 10.0);
    assert_eq!(healthcheck(&address), Some(0));

    influx.stop();
    let down = wait_for_health(&address, 503, Some("influxdb")).await;
    assert!(
        down["checks"]["influxdb"]["detail"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{down}"
    );
    assert!(down["points_buffered"].as_u64().unwrap() > 0 || down["status"] == "unhealthy");
    assert_eq!(healthcheck(&address), Some(1));
    // Restarting the collector cannot bring InfluxDB back, and would lose
    // what the engine emits meanwhile: the liveness check passes.
    assert_eq!(liveness(&address), Some(0));
    influx.restart();
    wait_for_health(&address, 200, None).await;

    proxy.cut();
    let cut = wait_for_health(&address, 503, Some("docker")).await;
    assert!(
        cut["failing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "events"),
        "{cut}"
    );
    // A socket that no longer answers (as a bind-mounted one after the
    // engine restarts) is what a new container cures.
    assert_eq!(liveness(&address), Some(1));
    proxy.restore();
    wait_for_health(&address, 200, None).await;
    assert_eq!(healthcheck(&address), Some(0));
    assert_eq!(liveness(&address), Some(0));

    assert!(service.terminate().await.success());
    assert!(
        !service.logs().contains(SECRET),
        "the password appeared in the log"
    );
}

/// Parses Prometheus text with the reference parser (Python's
/// `prometheus_client`) and returns every sample as name{labels} -> value.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[s.name + ("{" + labels + "}" if labels else "")] = s.value
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser refused /metrics: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_as_prometheus_text_and_move_while_samples_flow() {
    let influx = support::influx::shared();
    let db = "metrics";
    let containers = TestContainers::new("metrics");
    let id = containers.idle("idle");
    let name = containers.name("idle");
    let mut service = Service::start(influx, db, &[]);
    let address = service.health_address().await;
    wait_for_points(influx, db, &id, Duration::from_secs(20)).await;
    let scrape = || async {
        let text = get_metrics(&address).await;
        parse_prometheus(&text)
    };
    let first = scrape().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let second = scrape().await;
    assert!(service.terminate().await.success());

    let moved = |name: &str| second[name] > first[name];
    assert!(moved("dss_samples_received_total"), "{second:?}");
    assert!(moved("dss_points_collected_total"));
    assert!(moved("dss_points_written_total"));
    assert!(second["dss_write_duration_seconds_count"] >= 1.0);
    assert!(second["dss_batch_points_sum"] >= second["dss_write_duration_seconds_count"]);
    assert!(second["dss_active_streams"] >= 1.0);
    assert_eq!(
        second["dss_points_dropped_total{reason=\"buffer_full\"}"],
        0.0
    );
    let age_key =
        format!("dss_seconds_since_last_sample{{container_id=\"{id}\",container_name=\"{name}\"}}");
    let age = second
        .get(&age_key)
        .copied()
        .unwrap_or_else(|| panic!("no {age_key} in {second:?}"));
    assert!((0.0..5.0).contains(&age), "{age}");
}

#[test]
fn check_config_shows_origins_masks_secrets_and_fails_on_errors() {
    let secrets = tempdir("dss-check-config");
    let password_file = format!("{secrets}/password");
    std::fs::write(&password_file, SECRET).unwrap();
    let output = Command::new(BINARY)
        .arg("check-config")
        .env_clear()
        .env("INFLUXDB_PASS_FILE", &password_file)
        .env("BATCH_SIZE", "250")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("batch.size = 250  # environment variable BATCH_SIZE"),
        "{text}"
    );
    assert!(text.contains("influxdb.password = \"***\""), "{text}");
    assert!(
        text.contains("influxdb.port = 8086  # default (INFLUXDB_PORT)"),
        "{text}"
    );
    assert!(!text.contains(SECRET));

    let (code, stderr) = run_to_exit(
        &[("INFLUXDB_PASS_FILE", "/nonexistent/secret")],
        &["check-config"],
    );
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("cannot read the secret file /nonexistent/secret"),
        "{stderr}"
    );
    let (code, stderr) = run_to_exit(&[("INFLUXDB_API", "v2")], &["check-config"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("influxdb.org"), "{stderr}");
    let (code, stderr) = run_to_exit(
        &[("INFLUXDB_PASS", SECRET), ("INFLUXDB_PORT", "x")],
        &["check-config"],
    );
    assert_eq!(code, Some(2));
    assert!(!stderr.contains(SECRET));
    let _ = std::fs::remove_dir_all(secrets);
}

#[test]
fn healthcheck_fails_when_nothing_answers() {
    let address = format!("127.0.0.1:{}", support::free_port());
    assert_eq!(healthcheck(&address), Some(1));
    assert_eq!(liveness(&address), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn five_hundred_idle_connections_neither_stop_health_nor_a_new_stats_stream() {
    let influx = support::influx::shared();
    let db = "health_flood";
    let containers = TestContainers::new("flood");
    let first = containers.idle("first");
    let mut service = Service::start(influx, db, &[]);
    let address = service.health_address().await;
    wait_for_points(influx, db, &first, Duration::from_secs(20)).await;
    // A descriptor budget a crowded host leaves: 500 idle clients would
    // take them all if each were kept.
    let limited = Command::new("prlimit")
        .args(["--pid", &service.pid().to_string(), "--nofile=200:200"])
        .status()
        .expect("running prlimit (util-linux)");
    assert!(limited.success());
    let mut idle = Vec::new();
    for _ in 0..500 {
        idle.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        reqwest::get(format!("http://{address}/health")),
    )
    .await;
    let status = answer
        .expect("/health did not answer within 5 s beside 500 idle connections")
        .expect("GET /health")
        .status();
    assert_eq!(status, 200);
    let second = containers.idle("second");
    wait_for_points(influx, db, &second, Duration::from_secs(30)).await;
    drop(idle);
    assert!(service.terminate().await.success(), "{}", service.logs());
}
