//! Following Docker when it misbehaves: the engine unreachable at start, the
//! connection cut and restored, a stats stream that stalls. The service talks
//! to a proxy socket the test controls; the daemon itself is never touched.

mod support;

use std::time::Duration;

use docker_stats_service::engine::api_version::{ApiVersion, NEWEST_TESTED};
use support::containers::{docker, TestContainers};
use support::docker_proxy::DockerProxy;
use support::eventually;
use support::influx::shared;
use support::samples::{count_points, wait_for_points};
use support::service::{get_health, get_metrics, Service};

#[tokio::test(flavor = "multi_thread")]
async fn waits_for_the_engine_then_reconciles_what_changed_while_it_was_cut_off() {
    let influx = shared();
    let db = "docker_cut";
    let containers = TestContainers::new("cut");
    let leaving = containers.idle("leaving");

    // The socket does not exist yet: the service says so once and waits.
    let socket = DockerProxy::reserve_path();
    let mut service = Service::start(influx, db, &[("DOCKER_SOCKET_PATH", socket.as_str())]);
    service
        .wait_for_check("docker", false, "does not exist", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let proxy = DockerProxy::start_at(socket).await;
    service.wait_for_engine(Duration::from_secs(15)).await;
    assert_eq!(
        service.logs().matches("does not exist").count(),
        1,
        "{}",
        service.logs()
    );
    wait_for_points(influx, db, &leaving, Duration::from_secs(20)).await;

    // Cut the engine off; meanwhile one container starts and one goes.
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let arriving = containers.idle("arriving");
    containers.remove("leaving");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before_restore = count_points(influx, db, &leaving).await;
    proxy.restore();

    wait_for_points(influx, db, &arriving, Duration::from_secs(40)).await;
    service
        .wait_for_unfollowed(&leaving, Duration::from_secs(40))
        .await;
    service
        .wait_for_log("Docker engine reachable again", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        count_points(influx, db, &leaving).await,
        before_restore,
        "points for a removed container"
    );
    assert!(service.terminate().await.success());
    let logs = service.logs();
    let outage_errors = logs
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("event_actor"))
        .count();
    assert_eq!(
        outage_errors, 1,
        "the outage is logged once when it starts:\n{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_stats_stream_is_restarted_after_the_parse_timeout() {
    let influx = shared();
    let db = "stall";
    let containers = TestContainers::new("stall");
    let id = containers.idle("idle");
    let proxy = DockerProxy::start().await;
    let mut service = Service::start(
        influx,
        db,
        &[
            ("DOCKER_SOCKET_PATH", proxy.path()),
            ("STATS_PARSE_TIMEOUT", "3000"),
        ],
    );
    wait_for_points(influx, db, &id, Duration::from_secs(20)).await;
    let frozen = proxy.freeze_stats_streams();
    assert!(frozen >= 1, "no stats stream to freeze");
    let before = count_points(influx, db, &id).await;
    service
        .wait_for_metric("dss_stream_restarts_total", 1.0, Duration::from_secs(10))
        .await;
    eventually(
        Duration::from_secs(15),
        "points after the restart",
        || async { (count_points(influx, db, &id).await >= before + 2).then_some(()) },
    )
    .await;
    assert!(service.terminate().await.success());
}

/// `/health`'s body and the seconds `/metrics` gives since `id`'s last sample.
async fn silence_as_reported(address: &str, id: &str) -> (serde_json::Value, Option<f64>) {
    let (_, health) = get_health(address).await;
    let metrics = get_metrics(address).await;
    let needle = format!("dss_seconds_since_last_sample{{container_id=\"{id}\"");
    let age = metrics
        .lines()
        .find(|l| l.starts_with(&needle))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok());
    (health, age)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stats_request_that_is_never_answered_is_replaced_and_the_silent_container_named() {
    let influx = shared();
    let db = "unanswered";
    let containers = TestContainers::new("unanswered");
    let id = containers.idle("idle");
    let name = containers.name("idle");
    let proxy = DockerProxy::start().await;
    proxy.hold_stats_answers();
    let mut service = Service::start(
        influx,
        db,
        &[
            ("DOCKER_SOCKET_PATH", proxy.path()),
            ("STATS_PARSE_TIMEOUT", "2000"),
        ],
    );
    let address = service.health_address().await;
    // Requests time out and are made again; the container stays named as
    // silent, with its silence counted across the restarts.
    let (health, age) = eventually(
        Duration::from_secs(30),
        "the silent container on /health and /metrics",
        || async {
            let (health, age) = silence_as_reported(&address, &id).await;
            let named = health["checks"]["samples"]["detail"]
                .as_str()
                .is_some_and(|d| d.contains(&name));
            (named && age.is_some_and(|a| a > 4.0)).then_some((health, age))
        },
    )
    .await;
    assert!(
        health["failing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "samples"),
        "{health}"
    );
    assert!(age.unwrap() > 4.0);
    assert!(
        proxy.stats_requests() >= 2,
        "the unanswered request was never replaced"
    );
    assert_eq!(count_points(influx, db, &id).await, 0);

    proxy.release_stats();
    wait_for_points(influx, db, &id, Duration::from_secs(60)).await;
    eventually(
        Duration::from_secs(20),
        "the samples check to pass",
        || async {
            let (health, _) = silence_as_reported(&address, &id).await;
            (health["checks"]["samples"]["ok"] == true).then_some(())
        },
    )
    .await;
    assert!(service.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn events_keep_being_applied_when_listing_containers_takes_longer_than_the_reconcile_interval(
) {
    let influx = shared();
    let db = "slow_list";
    let containers = TestContainers::new("slowlist");
    let proxy = DockerProxy::start().await;
    proxy.slow_down("/containers/json", Duration::from_millis(2500));
    let mut service = Service::start(
        influx,
        db,
        &[
            ("DOCKER_SOCKET_PATH", proxy.path()),
            ("RECONCILE_INTERVAL", "1s"),
        ],
    );
    service.wait_for_engine(Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Started now, it is known from its start event (held while a list is
    // in flight, which is always) and from the next list that completes.
    let id = containers.idle("late");
    wait_for_points(influx, db, &id, Duration::from_secs(20)).await;
    assert!(service.terminate().await.success());
}

/// The read-only socket proxy of docs/installation.md: the service needs nothing but `GET` of
/// the version, info, events, the container list, inspect and stats. The
/// test proxy refuses anything else, and any refusal fails the test.
#[tokio::test(flavor = "multi_thread")]
async fn works_through_a_read_only_socket_proxy() {
    let influx = shared();
    let db = "read_only_proxy";
    let containers = TestContainers::new("readonly");
    let early = containers.idle("early");
    let proxy = DockerProxy::start().await;
    proxy.enforce_read_only();
    let mut service = Service::start(influx, db, &[("DOCKER_SOCKET_PATH", proxy.path())]);
    wait_for_points(influx, db, &early, Duration::from_secs(20)).await;
    let late = containers.idle("late");
    wait_for_points(influx, db, &late, Duration::from_secs(20)).await;
    containers.remove("late");
    eventually(Duration::from_secs(20), "the late container's die event", || async {
        let q = format!(
            "SELECT count(message) FROM docker_events WHERE container_id = '{late}' AND action = 'die'"
        );
        (influx.count(db, &q).await > 0).then_some(())
    })
    .await;
    assert!(service.terminate().await.success(), "{}", service.logs());
    assert_eq!(
        proxy.refused(),
        Vec::<String>::new(),
        "requests a read-only proxy refuses"
    );
    // Each request names the version the service speaks to this engine (its
    // own, up to the newest tested), so every answer has that version's
    // shape; only the probe that asks which versions it speaks names none.
    let speaks = ApiVersion::parse(&docker(&["version", "--format", "{{.Server.APIVersion}}"]))
        .unwrap()
        .min(NEWEST_TESTED);
    let prefix = format!(" /v{speaks}/");
    let requests = proxy.requests();
    assert!(
        requests.iter().any(|r| r.contains("/stats")),
        "{requests:#?}"
    );
    let unversioned: Vec<&String> = requests
        .iter()
        .filter(|r| !r.contains(&prefix) && !r.starts_with("GET /version "))
        .collect();
    assert!(
        unversioned.is_empty(),
        "requests without {prefix:?}: {unversioned:#?}"
    );
}

/// A user who may not use the system's socket (uid 65534, outside its
/// group) finds the engine at `$XDG_RUNTIME_DIR/docker.sock`, where
/// rootless Docker puts its socket (a proxy to this machine's engine stands
/// in for one), says which socket it chose, and collects.
#[tokio::test(flavor = "multi_thread")]
async fn a_user_without_the_system_socket_finds_the_rootless_one() {
    use std::os::unix::fs::PermissionsExt;
    let influx = shared();
    let db = "rootless_discovery";
    let containers = TestContainers::new("rootless");
    let idle = containers.idle("idle");
    let runtime = support::influx::tempdir("dss-runtime");
    let socket = format!("{runtime}/docker.sock");
    let _proxy = DockerProxy::start_at(socket.clone()).await;
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut service =
        Service::start_as_nobody_without_the_socket(influx, db, &[("XDG_RUNTIME_DIR", &runtime)]);
    service
        .wait_for_log(
            &format!("at {socket} (found: rootless Docker's socket"),
            Duration::from_secs(20),
        )
        .await;
    wait_for_points(influx, db, &idle, Duration::from_secs(20)).await;
    assert!(service.terminate().await.success(), "{}", service.logs());
}

#[test]
fn the_test_proxy_refuses_what_a_read_only_proxy_refuses() {
    use support::docker_proxy::read_only_allows;
    for allowed in [
        "GET /v1.41/version HTTP/1.1",
        "GET /info HTTP/1.1",
        "GET /v1.41/events?since=1.5&filters=%7B%7D HTTP/1.1",
        "GET /v1.41/containers/json?all=false HTTP/1.1",
        "GET /v1.41/containers/abc123/json HTTP/1.1",
        "GET /v1.41/containers/abc123/stats?stream=1 HTTP/1.1",
    ] {
        assert!(read_only_allows(allowed), "{allowed}");
    }
    for refused in [
        "POST /v1.41/containers/create HTTP/1.1",
        "POST /v1.41/containers/abc/start HTTP/1.1",
        "DELETE /v1.41/containers/abc HTTP/1.1",
        "GET /v1.41/containers/abc/logs HTTP/1.1",
        "GET /v1.41/images/json HTTP/1.1",
        "GET /v1.41/containers/abc/archive?path=/ HTTP/1.1",
        "GET /v1.41/secrets HTTP/1.1",
    ] {
        assert!(!read_only_allows(refused), "{refused}");
    }
}
