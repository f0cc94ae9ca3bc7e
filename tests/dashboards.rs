//! The dashboard and the deployment files: every query of every panel,
//! variable and annotation, with Grafana's macros and variables substituted
//! as Grafana does, runs against a real InfluxDB filled by the real service
//! from real containers and returns what the panel expects; the provisioning
//! and compose files parse, agree with each other and point at files that
//! exist.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use support::containers::TestContainers;
use support::influx::shared;
use support::samples::wait_for_points;
use support::service::Service;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn dashboard() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(format!("{ROOT}/dashboards/docker-stats.json")).unwrap(),
    )
    .unwrap()
}

fn yaml(path: &str) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Grafana's value for a multi-value variable in a regex: the values with
/// regex metacharacters escaped, joined as an alternation.
fn regex_values(values: &[String]) -> String {
    let escaped: Vec<String> = values
        .iter()
        .map(|v| {
            v.chars()
                .flat_map(|c| {
                    let special = "\\^$.|?*+()[]{}/".contains(c);
                    special
                        .then_some('\\')
                        .into_iter()
                        .chain(std::iter::once(c))
                })
                .collect()
        })
        .collect();
    format!("({})", escaped.join("|"))
}

struct Substitution {
    time_filter: String,
    host: String,
    container: String,
}

impl Substitution {
    fn apply(&self, query: &str) -> String {
        query
            .replace("$timeFilter", &self.time_filter)
            .replace("$__interval", "1s")
            .replace("$host", &self.host)
            .replace("$container", &self.container)
    }
}

/// The two runs of the service below each hold a container at half a core
/// and judge its throttling: one at a time, so neither takes the other's CPU.
static ONE_SERVICE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Panels of fields only the cgroup source writes (pressure, peaks): the
/// stream-sampled run below has none, so a run of their own proves them.
fn needs_cgroup_readings(query: &str) -> bool {
    query.contains("_pressure_") || query.contains("mem_peak")
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// One panel's query, run: its series by container name.
async fn panel_series(
    influx: &support::influx::InfluxServer,
    db: &str,
    panel: &Value,
    substitution: &Substitution,
) -> Vec<Value> {
    let title = panel["title"].as_str().unwrap();
    let query = substitution.apply(panel["targets"][0]["query"].as_str().unwrap());
    let result = influx.query(db, &query).await;
    assert!(
        result["results"][0]["error"].is_null(),
        "{title}: {query}: {result}"
    );
    result["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{title} returned no series: {query}"))
}

/// A column of one series, without nulls.
fn column(series: &[Value], container: &str, name: &str) -> Vec<f64> {
    let ours = series
        .iter()
        .find(|s| s["tags"]["container_name"] == container)
        .unwrap_or_else(|| panic!("no series for {container}"));
    let index = ours["columns"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name} in {}", ours["columns"]));
    ours["values"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|row| row[index].as_f64())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_between_readings_panels_and_oom_kills_show_what_the_cgroup_source_stored() {
    let _alone = ONE_SERVICE_AT_A_TIME.lock().await;
    let influx = shared();
    let db = "dashboard_cgroup";
    let containers = TestContainers::new("dash-cgroup");
    let starved = containers.cpu_starved("starved");
    let oom = containers.oom_worker("oom");
    let start_ms = now_ms() - 60_000;
    let mut service = Service::start(
        influx,
        db,
        &[("STATS_SAMPLING", "cgroup"), ("STATS_INTERVAL", "100ms")],
    );
    wait_for_points(influx, db, &oom, Duration::from_secs(20)).await;
    wait_for_points(influx, db, &starved, Duration::from_secs(20)).await;
    containers.kill_worker(&oom);
    let kill =
        support::samples::wait_for_event(influx, db, &oom, "oom_kill", Duration::from_secs(30))
            .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(service.terminate().await.success());
    let (starved_name, oom_name) = (containers.name("starved"), containers.name("oom"));
    let substitution = Substitution {
        time_filter: format!("time >= {start_ms}ms and time <= {}ms", now_ms() + 1_000),
        host: ".*".to_string(),
        container: regex_values(&[starved_name.clone(), oom_name.clone()]),
    };
    let dashboard = dashboard();
    let panel = |title: &str| {
        dashboard["panels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("no panel {title}"))
            .clone()
    };

    let pressure = panel("Pressure (% of time stalled)");
    assert_eq!(pressure["fieldConfig"]["defaults"]["unit"], "percent");
    let series = panel_series(influx, db, &pressure, &substitution).await;
    let cpu_some = column(&series, &starved_name, "cpu some");
    let mean = cpu_some.iter().sum::<f64>() / cpu_some.len().max(1) as f64;
    assert!(
        mean > 20.0 && cpu_some.iter().all(|v| (0.0..=101.0).contains(v)),
        "three threads held to half a core stall on CPU: {cpu_some:?}"
    );
    for name in [
        "cpu full",
        "memory some",
        "memory full",
        "io some",
        "io full",
    ] {
        assert!(!column(&series, &starved_name, name).is_empty(), "{name}");
    }

    let peak = panel("Peak memory vs limit");
    assert_eq!(peak["fieldConfig"]["defaults"]["unit"], "bytes");
    let series = panel_series(influx, db, &peak, &substitution).await;
    let limit = column(&series, &oom_name, "limit");
    let since_start = column(&series, &oom_name, "peak since start");
    assert!(
        limit.iter().all(|l| *l == (32 << 20) as f64),
        "the limit is 32 MiB: {limit:?}"
    );
    let highest = since_start.iter().cloned().fold(0.0, f64::max);
    assert!(
        highest >= 0.9 * (32 << 20) as f64,
        "the OOM-killed worker took usage to its limit: {since_start:?}"
    );
    // Empty where the kernel cannot reset memory.peak per reader (v1 here).
    column(&series, &oom_name, "peak");

    // The OOM kill is its own annotation, and only there.
    for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
        let Some(query) = annotation["query"].as_str() else {
            continue;
        };
        if !query.contains("docker_events") {
            continue;
        }
        let rows = influx.rows(db, &substitution.apply(query)).await;
        let text = annotation["textColumn"].as_str().unwrap();
        let kills: Vec<&str> = rows
            .iter()
            .filter_map(|r| r[text].as_str())
            .filter(|message| message.contains("oom_kill"))
            .collect();
        if annotation["name"] == "OOM kills" {
            assert_eq!(
                kills,
                [format!("{oom_name}: oom_kill (1 process killed)")],
                "{rows:?}"
            );
            assert_eq!(rows.len(), 1, "{rows:?}");
            assert_eq!(rows[0]["time"], kill["time"]);
        } else {
            assert!(kills.is_empty(), "{}: {kills:?}", annotation["name"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_query_returns_the_series_its_panel_expects() {
    let _alone = ONE_SERVICE_AT_A_TIME.lock().await;
    let influx = shared();
    let db = "dashboard";
    let containers = TestContainers::new("dash");
    let network = containers.network("net");
    let net = format!("--network={network}");
    let busy = containers.run(
        "busy",
        &["--cpus", "0.5", &net],
        &["sh", "-c", "while :; do :; done"],
    );
    let server = containers.name("server");
    containers.run(
        "server",
        &[&net, "-m", "64m"],
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/www/blob bs=1k count=128 2>/dev/null; httpd -f -p 8080 -h /www",
        ],
    );
    let fetch =
        format!("while :; do wget -q -O /dev/null http://{server}:8080/blob; sleep 0.2; done");
    containers.run("client", &[&net], &["sh", "-c", &fetch]);
    let start_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 60_000;
    let mut service = Service::start(influx, db, &[]);
    wait_for_points(influx, db, &busy, Duration::from_secs(20)).await;
    containers.run("brief", &[], &["sh", "-c", "exit 7"]);
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(service.terminate().await.success());
    let end_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 1_000;

    let ours: Vec<String> = ["busy", "server", "client", "brief"]
        .iter()
        .map(|s| containers.name(s))
        .collect();
    let host = influx
        .rows(
            db,
            "SHOW TAG VALUES FROM \"docker_stats\" WITH KEY = \"host\"",
        )
        .await
        .first()
        .map(|r| r["value"].as_str().unwrap().to_string())
        .expect("a host tag");
    let substitution = Substitution {
        time_filter: format!("time >= {start_ms}ms and time <= {end_ms}ms"),
        host: regex_values(&[host]),
        container: regex_values(&ours),
    };
    let dashboard = dashboard();

    // Template variables: each lists what the dashboard filters by.
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        let query = substitution.apply(variable["query"].as_str().unwrap());
        let rows = influx.rows(db, &query).await;
        let values: Vec<&str> = rows.iter().filter_map(|r| r["value"].as_str()).collect();
        assert!(
            !values.is_empty(),
            "variable {} returned nothing: {query}",
            variable["name"]
        );
        if variable["name"] == "container" {
            assert!(
                values.contains(&containers.name("busy").as_str()),
                "{values:?}"
            );
        }
    }

    // Panels: every query returns series for our containers, with the
    // columns the panel names, in values that fit the panel's unit.
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = panel["title"].as_str().unwrap();
        let unit = panel["fieldConfig"]["defaults"]["unit"].as_str().unwrap();
        for target in panel["targets"].as_array().unwrap() {
            assert_eq!(
                target["rawQuery"], true,
                "{title}: queries are raw InfluxQL"
            );
            let query = substitution.apply(target["query"].as_str().unwrap());
            if needs_cgroup_readings(&query) {
                // Proven by the_between_readings_panels_and_oom_kills_show_what_the_cgroup_source_stored.
                continue;
            }
            let result = influx.query(db, &query).await;
            assert!(
                result["results"][0]["error"].is_null(),
                "{title}: {query}: {result}"
            );
            let series = result["results"][0]["series"]
                .as_array()
                .unwrap_or_else(|| panic!("{title} returned no series: {query}"));
            let names: Vec<&str> = series
                .iter()
                .filter_map(|s| s["tags"]["container_name"].as_str())
                .collect();
            let expected = match title {
                t if t.contains("of the container's limit") || t.contains("throttling") => {
                    containers.name("busy")
                }
                t if t.contains("Network") => containers.name("client"),
                _ => containers.name("busy"),
            };
            assert!(
                names.contains(&expected.as_str()),
                "{title}: no series for {expected} in {names:?}"
            );
            let ours = series
                .iter()
                .find(|s| s["tags"]["container_name"] == expected.as_str())
                .unwrap();
            let columns: Vec<&str> = ours["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            let values: Vec<f64> = ours["values"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|row| {
                    row.as_array().unwrap()[1..]
                        .iter()
                        .filter_map(Value::as_f64)
                        .collect::<Vec<_>>()
                })
                .collect();
            assert!(!values.is_empty(), "{title}: only nulls for {expected}");
            assert!(
                values.iter().all(|v| *v >= 0.0),
                "{title}: negative values {values:?}"
            );
            match unit {
                "percent" => {
                    let max = values.iter().cloned().fold(0.0, f64::max);
                    assert!(
                        max <= 200.0 * 2.0,
                        "{title}: {max} is not a percentage of this 2-core machine"
                    );
                }
                "bytes" => assert!(
                    columns.contains(&"used") && columns.contains(&"limit"),
                    "{title}: {columns:?}"
                ),
                "Bps" => assert!(
                    columns.len() == 3,
                    "{title}: two rates expected, got {columns:?}"
                ),
                _ => {}
            }
            if title.starts_with("CPU % of") || title.starts_with("CPU throttling") {
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                assert!(
                    mean > 50.0,
                    "{title}: a busy loop under --cpus 0.5 gave a mean of {mean}"
                );
            }
            if title.starts_with("Network") {
                assert!(
                    values.iter().any(|v| *v > 10_000.0),
                    "{title}: no traffic in {values:?}"
                );
            }
        }
    }

    // Annotations: lifecycle events with their text and action. (The
    // load-test run regions are proven on a recorded run, in
    // tests/load_test.rs.)
    for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
        if annotation["name"] != "Container events" {
            continue;
        }
        let query = annotation["query"].as_str().unwrap();
        let rows = influx.rows(db, &substitution.apply(query)).await;
        let text = annotation["textColumn"].as_str().unwrap();
        let brief = containers.name("brief");
        let died = rows
            .iter()
            .find(|r| r["action"] == "die" && r[text].as_str().unwrap_or("").starts_with(&brief));
        let died = died.unwrap_or_else(|| panic!("no die event for {brief} in {rows:?}"));
        assert!(died[text].as_str().unwrap().contains("exit code 7"));
    }
}

#[test]
fn provisioning_points_at_the_dashboard_and_the_datasource_it_uses() {
    let datasources = yaml("deploy/grafana/provisioning/datasources/influxdb.yml");
    let datasource = &datasources["datasources"][0];
    let uid = datasource["uid"].as_str().unwrap();
    assert_eq!(datasource["type"], "influxdb");
    assert_eq!(datasource["jsonData"]["dbName"], "docker-stats");
    let dashboard = dashboard();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert_eq!(panel["datasource"]["uid"], uid, "{}", panel["title"]);
    }

    let providers = yaml("deploy/grafana/provisioning/dashboards/docker-stats.yml");
    let path = providers["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    // The compose file mounts dashboards/ and the provisioning directory
    // where Grafana and the provider expect them.
    let compose = yaml("deploy/docker-compose.yml");
    let mounts: Vec<&str> = compose["services"]["grafana"]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let deploy = Path::new(ROOT).join("deploy");
    let mut found_dashboards = false;
    for mount in &mounts {
        let mut parts = mount.split(':');
        let (source, target) = (parts.next().unwrap(), parts.next().unwrap());
        if source.starts_with('.') {
            let source = deploy.join(source);
            assert!(
                source.exists(),
                "{mount}: {} does not exist",
                source.display()
            );
            if target == path {
                assert!(source.join("docker-stats.json").is_file());
                found_dashboards = true;
            }
            if target == "/etc/grafana/provisioning" {
                assert!(source.join("datasources/influxdb.yml").is_file());
                assert!(source.join("dashboards/docker-stats.yml").is_file());
            }
        }
    }
    assert!(
        found_dashboards,
        "no volume mounts the dashboards at {path}: {mounts:?}"
    );
    let ports: Vec<&str> = compose["services"]["grafana"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(ports, ["3009:3000"]);
}

/// The Compose program to check the files with: `DSS_COMPOSE` names it (the
/// platform lane's VM sets `docker compose`, Compose v2), else this
/// machine's `docker-compose` (1.29 on Debian 12).
fn compose_command() -> Command {
    let program = std::env::var("DSS_COMPOSE").unwrap_or_else(|_| "docker-compose".into());
    let mut words = program.split_whitespace();
    let mut command = Command::new(words.next().expect("DSS_COMPOSE is empty"));
    command.args(words);
    command
}

#[test]
fn the_compose_and_stack_files_are_accepted_by_docker_compose() {
    let version = compose_command().arg("version").output().expect("compose");
    println!("{}", String::from_utf8_lossy(&version.stdout).trim());
    for files in [
        vec!["deploy/docker-compose.yml"],
        vec![
            "deploy/docker-compose.yml",
            "deploy/docker-compose.influxdb2.yml",
        ],
        vec![
            "deploy/docker-compose.yml",
            "deploy/docker-compose.cgroup.yml",
        ],
        vec!["deploy/docker-stack.yml"],
    ] {
        let mut command = compose_command();
        command.current_dir(ROOT);
        for file in &files {
            command.args(["-f", file]);
        }
        let output = command.args(["config", "-q"]).output().expect("compose");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{files:?}: {stderr}");
        // No warnings either, but Compose v2's about the stack file's
        // version key, which `docker stack deploy` needs.
        let warnings: Vec<&str> = stderr
            .lines()
            .filter(|line| !(files == ["deploy/docker-stack.yml"] && line.contains("`version`")))
            .collect();
        assert!(warnings.is_empty(), "{files:?}: {warnings:?}");
    }
    // Compose v2 warns that `version:` is obsolete; v1.27+ needs none.
    for file in [
        "deploy/docker-compose.yml",
        "deploy/docker-compose.influxdb2.yml",
        "deploy/docker-compose.cgroup.yml",
    ] {
        assert!(
            yaml(file).get("version").is_none(),
            "{file} has a version key"
        );
    }
    let compose = yaml("deploy/docker-compose.yml");
    let collector = &compose["services"]["docker-stats"];
    assert_eq!(collector["restart"], "unless-stopped");
    assert!(collector["volumes"][0]
        .as_str()
        .unwrap()
        .ends_with("docker.sock:ro"));
    // The cgroup override mounts what tests/image.rs proves is enough.
    let cgroup = yaml("deploy/docker-compose.cgroup.yml");
    let collector = &cgroup["services"]["docker-stats"];
    assert_eq!(collector["environment"]["STATS_SAMPLING"], "cgroup");
    let proc_root = collector["environment"]["PROC_ROOT"].as_str().unwrap();
    let volumes: Vec<&str> = collector["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        volumes.contains(&"/sys/fs/cgroup:/sys/fs/cgroup:ro"),
        "{volumes:?}"
    );
    assert!(
        volumes.contains(&format!("/proc:{proc_root}:ro").as_str()),
        "{volumes:?}"
    );
    let stack = yaml("deploy/docker-stack.yml");
    let stacked = &stack["services"]["docker-stats"];
    assert_eq!(stacked["deploy"]["mode"], "global");
    // Two collectors on one node during an update would count its
    // containers twice: one node at a time, the old one stopped first.
    assert_eq!(stacked["deploy"]["update_config"]["parallelism"], 1);
    assert_eq!(stacked["deploy"]["update_config"]["order"], "stop-first");
    // Swarm replaces unhealthy tasks: an InfluxDB outage must not make the
    // collectors unhealthy there (scripts/test-cluster found it did).
    assert_eq!(
        stacked["healthcheck"]["test"].as_sequence().unwrap().last(),
        Some(&serde_yaml::Value::from("--liveness"))
    );
    // Both run the collector with the settings tests/image.rs runs it with.
    for (file, document) in [("compose", &compose), ("stack", &stack)] {
        let collector = &document["services"]["docker-stats"];
        let caps: Vec<&str> = collector["cap_drop"]
            .as_sequence()
            .map(|s| s.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        assert_eq!(caps, ["ALL"], "{file}: cap_drop");
        assert_eq!(collector["read_only"], true, "{file}: read_only");
        let grace =
            humantime::parse_duration(collector["stop_grace_period"].as_str().unwrap()).unwrap();
        let shutdown: u64 = collector["environment"]["SHUTDOWN_TIMEOUT_MS"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            grace > Duration::from_millis(shutdown),
            "{file}: the grace period must outlast the flush"
        );
        assert_eq!(
            collector["security_opt"][0], "no-new-privileges:true",
            "{file}: security_opt"
        );
        let buffer = collector["environment"]["BUFFER_DIR"]
            .as_str()
            .unwrap_or_default();
        let mounted = collector["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .any(|v| v.ends_with(&format!(":{buffer}")) && !v.starts_with('/'));
        assert!(
            !buffer.is_empty() && mounted,
            "{file}: the disk buffer needs a named volume at BUFFER_DIR"
        );
        assert!(
            collector["environment"]["SPOOL_DIR"].is_null(),
            "{file}: SPOOL_DIR with BUFFER_DIR is a configuration error"
        );
    }
}
