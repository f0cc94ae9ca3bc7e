//! The service beside rootless Podman and rootless Docker, in the platform
//! lane's VM (scripts/platform-lane): a user's engine on the user's own
//! socket, its containers in scopes of the user's systemd manager
//! (`user@1000.service`, which delegates the cpu, memory and pids
//! controllers). Each engine is proven on both sources, once with the
//! service run by that user (finding the socket by itself) and once run by
//! root and pointed at the user's socket. Neither engine is installed on the
//! host, so this target is built with `test = false` and run by the lane
//! (tests/platform/tests).

mod support;

use std::time::Duration;

use serde_json::Value;
use support::containers::{stats_mem_usage, TestContainers};
use support::influx::shared;
use support::rootless::{RootlessEngine, RUNTIME_DIR, UID};
use support::samples::{float, mean_after, stored_points, wait_for_count, wait_for_points};
use support::service::Service;

/// One rootless engine and one service at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const BUSY: &[&str] = &["sh", "-c", "while :; do :; done"];
/// 20 MB of anonymous memory: dd's buffer, filled and then held while dd
/// waits to write into a pipe nobody reads.
const HOLDS_MEMORY: &[&str] = &["sh", "-c", "dd if=/dev/zero bs=20M count=1 | sleep 3600"];

/// Who runs the service, and how it finds the engine.
enum RunBy {
    /// The engine's user, with no socket configured: discovery finds it in
    /// `$XDG_RUNTIME_DIR` (/var/run/docker.sock is root's and the docker
    /// group's).
    TheUser,
    /// root, with `DOCKER_SOCKET_PATH` set to the user's socket.
    Root,
}

#[derive(Clone, Copy, PartialEq)]
enum Source {
    Stream,
    Cgroup,
}

impl Source {
    /// The `source` tag of its points.
    fn tag(self) -> &'static str {
        match self {
            Source::Stream => "stream",
            Source::Cgroup => "cgroup",
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rootless_podman_on_both_sources() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let engine = RootlessEngine::podman();
    prove(
        &engine,
        "rootless_podman",
        [
            (RunBy::TheUser, Source::Stream),
            (RunBy::Root, Source::Cgroup),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rootless_docker_on_both_sources() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let engine = RootlessEngine::docker();
    prove(
        &engine,
        "rootless_docker",
        [
            (RunBy::Root, Source::Stream),
            (RunBy::TheUser, Source::Cgroup),
        ],
    )
    .await;
}

/// A user without a systemd session: Podman falls back to its cgroupfs
/// manager, and the container runs in the cgroup of the Podman process that
/// started it, without its limit (`podman stats` showed 716% and 1042% for
/// it). The service says so once and writes the container's network
/// fields only, from the stream, even when told to sample cgroups: never a
/// CPU or memory figure of another cgroup.
#[tokio::test(flavor = "multi_thread")]
async fn rootless_podman_without_a_user_session_writes_only_what_is_the_containers() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let engine = support::rootless::sessionless_podman();
    let influx = shared();
    let db = "rootless_sessionless";
    let containers = TestContainers::with_cli(engine.cli, db);
    let busy = containers.run("busy", &["--cpus", "0.5"], BUSY);
    let mut service = Service::start(
        influx,
        db,
        &[
            ("DOCKER_SOCKET_PATH", &engine.socket),
            ("STATS_SAMPLING", "cgroup"),
        ],
    );
    let counted =
        format!("SELECT count(net_in_bytes) FROM docker_stats WHERE container_id = '{busy}'");
    support::eventually(Duration::from_secs(60), "network points", || async {
        (influx.count(db, &counted).await >= 3).then_some(())
    })
    .await;
    assert!(service.terminate().await.success(), "{}", service.logs());
    let logs = service.logs();
    let warning = "runs its containers without cgroups of their own (cgroupfs cgroup driver";
    assert_eq!(logs.matches(warning).count(), 1, "{logs}");
    assert!(!logs.contains("cannot sample container"), "{logs}");
    let points = stored_points(influx, db, &busy).await;
    assert!(points.len() >= 3);
    for (time, row) in &points {
        assert_eq!(row["source"], "stream", "at {time}");
        assert!(float(row, "net_in_bytes").is_some(), "at {time}: {row:?}");
        for other in [
            "cpu_percent",
            "cpu_total_usage",
            "mem_used",
            "mem_usage",
            "pids_current",
            "blkio_read_bytes",
        ] {
            assert!(
                row.get(other).is_none_or(Value::is_null),
                "{other} stored at {time}: {row:?}"
            );
        }
    }
}

/// What `tests/podman.rs` and the collector's tests prove of a rootful
/// engine, here of a rootless one, by two services at once (one per
/// source, one run by the user and one by root) watching the same
/// containers, each writing to its own database: a container held at half
/// a core reads 50 ± 4 % (and, from cpu.stat, is throttled); memory within
/// 5% of the engine's own `stats`; name, image and a label tagged; a
/// container started later found through the events.
async fn prove(engine: &RootlessEngine, db: &str, services: [(RunBy, Source); 2]) {
    let influx = shared();
    let containers = TestContainers::with_cli(engine.cli, db);
    let busy = containers.run("busy", &["--cpus", "0.5", "--label", "team=load"], BUSY);
    let memory = containers.run("memory", &[], HOLDS_MEMORY);
    let podman = engine.cli.ends_with("podman");

    let mut running = Vec::new();
    for (run_by, source) in services {
        let db = format!("{db}_{}", source.tag());
        let mut env = vec![("STATS_LABEL_TAGS", "team")];
        if source == Source::Cgroup {
            env.extend([("STATS_SAMPLING", "cgroup"), ("STATS_INTERVAL", "100ms")]);
        }
        let service = match run_by {
            RunBy::TheUser => {
                env.push(("XDG_RUNTIME_DIR", RUNTIME_DIR));
                Service::start_as_user(UID, influx, &db, &env)
            }
            RunBy::Root => {
                env.push(("DOCKER_SOCKET_PATH", &engine.socket));
                Service::start(influx, &db, &env)
            }
        };
        running.push((service, db, run_by, source));
    }
    for (service, db, run_by, source) in &running {
        let connected = if podman {
            "connected to rootless Podman's Docker-compatible API"
        } else {
            "connected to rootless Docker engine"
        };
        service
            .wait_for_log(connected, Duration::from_secs(30))
            .await;
        if let RunBy::TheUser = run_by {
            let found = if podman {
                "(found: Podman's socket"
            } else {
                "(found: rootless Docker's socket"
            };
            let logs = service.logs();
            assert!(
                logs.contains(&format!("at {} {found}", engine.socket)),
                "{logs}"
            );
        }
        if *source == Source::Cgroup {
            service
                .wait_for_log(
                    &format!("rootless under user@{UID}.service"),
                    Duration::from_secs(5),
                )
                .await;
        }
        // Podman's stream sends a sample every 5 s, Docker's every second;
        // the first has no CPU %. The cgroup source reads every 100 ms.
        let enough = match (source, podman) {
            (Source::Cgroup, _) => 40,
            (Source::Stream, true) => 4,
            (Source::Stream, false) => 8,
        };
        wait_for_count(influx, db, &busy, enough).await;
        wait_for_count(influx, db, &memory, 2).await;
    }
    let shown = stats_mem_usage(engine.cli, &containers.name("memory"));

    // A container started now is found through the engine's events.
    let late = containers.run("late", &[], &["sleep", "3600"]);
    for (service, db, _, source) in &mut running {
        wait_for_points(influx, db, &late, Duration::from_secs(30)).await;
        assert!(service.terminate().await.success(), "{}", service.logs());
        let logs = service.logs();
        assert!(!logs.contains("cannot sample container"), "{logs}");

        let points = stored_points(influx, db, &busy).await;
        assert!(
            points
                .values()
                .all(|row| row["source"].as_str() == Some(source.tag())),
            "a point not from the {} source",
            source.tag()
        );
        let first = points.values().next().unwrap();
        assert_eq!(first["container_name"], containers.name("busy"));
        assert_eq!(first["team"], "load");
        assert!(
            first["image"]
                .as_str()
                .unwrap()
                .contains("dss-test/busybox"),
            "{first:?}"
        );
        let cpu = mean_after(&points, "cpu_percent", 1);
        assert!((cpu - 50.0).abs() <= 4.0, "{db}: mean cpu_percent {cpu}");
        if *source == Source::Cgroup {
            // cpu.stat's throttling, there because the cpu controller is
            // delegated to the user's manager.
            let throttled = points
                .values()
                .filter_map(|row| float(row, "cpu_throttled_periods"))
                .fold(0.0, f64::max);
            assert!(
                throttled > 0.0,
                "a container held at half a core is throttled"
            );
        }

        let stored = stored_points(influx, db, &memory)
            .await
            .values()
            .last()
            .and_then(|row| float(row, "mem_used"))
            .unwrap();
        assert!(
            (stored - shown).abs() <= 0.05 * shown,
            "{db}: mem_used {stored} vs {} stats {shown}",
            engine.cli
        );
        assert!(stored > 20e6, "dd holds 20 MB, mem_used {stored}");
    }
}
