//! `record` and `report` end to end, against the real engine and a real
//! influxd: one recorded run over containers with known loads, its summary
//! in every form, the same numbers read back from `points.lp` and from
//! InfluxDB, and budgets deciding the exit code.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::browser;
use support::containers::{docker, TestContainers};
use support::influx::{shared, tempdir};
use support::service::{describe, read_json, Service, BINARY};

const MIB: f64 = 1024.0 * 1024.0;

/// The environment that points `record` and `report` at the test's InfluxDB.
fn influx_env(database: &str) -> Vec<(&'static str, String)> {
    let influx = shared();
    vec![
        ("INFLUXDB_HOST", "127.0.0.1".into()),
        ("INFLUXDB_PORT", influx.port.to_string()),
        ("INFLUXDB_DB", database.into()),
    ]
}

fn command(args: &[&str], env: &[(&str, String)]) -> Command {
    let mut command = Command::new(BINARY);
    command.args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

fn run(args: &[&str], env: &[(&str, String)]) -> Output {
    command(args, env)
        .output()
        .expect("running the service binary")
}

fn container<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not in the summary: {summary:#}"))
}

fn number(value: &Value, path: &str) -> f64 {
    let mut at = value;
    for key in path.split('.') {
        at = &at[key];
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number in {value:#}"))
}

/// `docker stats`' memory usage of a container, in bytes.
fn docker_stats_memory(name: &str) -> f64 {
    let usage = docker(&["stats", "--no-stream", "--format", "{{.MemUsage}}", name]);
    let used = usage.split('/').next().unwrap().trim();
    let (number, unit) = used.split_at(used.find(|c: char| c.is_alphabetic()).unwrap());
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => MIB,
        "GiB" => MIB * 1024.0,
        other => panic!("unexpected unit {other} in {usage}"),
    };
    number.parse::<f64>().unwrap() * scale
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// One run answers the questions about every kind of container;
/// the file, the table, InfluxDB and the report of either agree.
#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_run_answers_for_every_container_and_reads_back_the_same() {
    let containers = TestContainers::new("loadtest");
    let burner = containers.name("burner");
    let idle = containers.name("idle");
    let memory = containers.name("memory");
    let oom = containers.name("oom");
    let late = containers.name("late");
    containers.run(
        "burner",
        &["--cpus", "0.5"],
        &["sh", "-c", "while :; do :; done"],
    );
    containers.idle("idle");
    containers.run(
        "memory",
        &[
            "--memory",
            "96m",
            "--memory-swap",
            "96m",
            "--shm-size",
            "128m",
        ],
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/shm/fill bs=1M count=60 && sleep 3600",
        ],
    );
    containers.run(
        "oom",
        &["--memory", "32m", "--memory-swap", "32m"],
        &["sh", "-c", "sleep 6; tail /dev/zero"],
    );

    let dir = PathBuf::from(tempdir("dss-loadtest"));
    let out = dir.join("run");
    let database = format!("loadtest_{}", std::process::id());
    let env = influx_env(&database);
    // The long-running service writes the same containers to the same
    // database, as the docs recommend: a report of the run must give
    // the numbers record printed all the same.
    let mut service = Service::start(shared(), &database, &[]);
    let filter = format!("{}*", containers.name(""));
    let budget_pass = format!("{filter}:oom_kills<=1");
    let record = command(
        &[
            "record",
            "--containers",
            &filter,
            "--interval",
            "100ms",
            "--out",
            out.to_str().unwrap(),
            "--budget",
            &budget_pass,
            "--",
            "sh",
            "-c",
            "sleep 20",
        ],
        &env,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Halfway through, a container starts: it covers its own half.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let late_started_ns = now_ns();
    containers.run("late", &[], &["sh", "-c", "while :; do :; done"]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let memory_by_docker = docker_stats_memory(&memory);
    let output = tokio::task::spawn_blocking(move || record.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("sampling every 100ms from the cgroup files"),
        "{stderr}"
    );
    assert!(stderr.contains("also writing to InfluxDB"), "{stderr}");

    let summary = read_json(&out.join("summary.json"));
    let the_run = &summary["run"];
    let window_s = (number(the_run, "end_ns") - number(the_run, "start_ns")) / 1e9;
    assert!(
        (19.5..25.0).contains(&window_s),
        "the run lasts the command: {window_s}s"
    );

    // Containers running before the run are sampled from its first beat
    // (the run starts once every one of them has been read).
    let start_ns = number(the_run, "start_ns");
    for name in [&burner, &idle, &memory, &oom] {
        let first = number(container(&summary, name), "first_sample_ns");
        assert!(
            first - start_ns < 500e6,
            "{name}: first sample {} ms into the run",
            (first - start_ns) / 1e6
        );
    }

    // The burner at --cpus 0.5: half a core, its whole limit, throttled.
    let b = container(&summary, &burner);
    let cpu_p50 = number(b, "cpu_percent.p50");
    assert!((cpu_p50 - 50.0).abs() <= 2.0, "burner CPU p50 {cpu_p50}");
    let of_limit = number(b, "cpu_limit_percent.p50");
    assert!(
        (of_limit - 100.0).abs() <= 4.0,
        "burner CPU of limit p50 {of_limit}"
    );
    assert!(number(b, "throttled_share") > 0.5, "{b:#}");
    assert!(number(b, "throttled_time_s") > 1.0, "{b:#}");
    // Runnable all the time, throttled half of it: it waits for a CPU
    // about half the time, where the kernel has per-container pressure
    // (cgroup v2, or v1's hybrid unified mount as on this machine).
    let has_pressure = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .any(|root| Path::new(root).join("cgroup.controllers").exists());
    if has_pressure {
        let stalled = number(b, "cpu_pressure_percent.mean");
        assert!(stalled > 20.0, "burner stalled {stalled}% of the time");
        let idle_stall = number(container(&summary, &idle), "cpu_pressure_percent.p95");
        assert!(idle_stall < 2.0, "idle container stalled {idle_stall}%");
    }
    // Every 100 ms for the whole run, as achieved.
    let samples = number(b, "samples");
    assert!(
        samples >= window_s * 10.0 * 0.9,
        "{samples} samples in {window_s}s"
    );
    let interval = number(b, "interval_ms");
    assert!((95.0..=110.0).contains(&interval), "interval {interval}");

    let i = container(&summary, &idle);
    assert!(number(i, "cpu_percent.p95") < 2.0, "{i:#}");
    assert!(i["cpu_limit_percent"].is_null(), "no limit, no share of it");

    // 60 MiB under a 96 MiB limit, as docker stats sees it.
    let m = container(&summary, &memory);
    let max = number(m, "mem_used.max");
    assert!(
        (max - memory_by_docker).abs() <= 0.03 * memory_by_docker,
        "memory max {max} vs docker stats {memory_by_docker}"
    );
    assert!(max >= 60.0 * MIB, "{max}");
    assert!(number(m, "mem_peak_since_start_bytes") >= max, "{m:#}");
    assert_eq!(number(m, "mem_limit_bytes"), 96.0 * MIB);
    let percent = number(m, "mem_percent.max");
    assert!(
        (percent - max / (96.0 * MIB) * 100.0).abs() < 0.5,
        "{percent}% of limit for {max} bytes"
    );

    // Killed by the OOM killer during the run: counted, and in the events.
    let o = container(&summary, &oom);
    assert_eq!(number(o, "oom_kills"), 1.0, "{o:#}");
    let oom_id = o["id"].as_str().unwrap();
    let actions: Vec<&str> = summary["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["container_id"] == oom_id)
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"oom") && actions.contains(&"die"),
        "{actions:?}"
    );

    // Started halfway: it covers its own time only.
    let l = container(&summary, &late);
    let first = number(l, "first_sample_ns") as i64;
    assert!(first >= late_started_ns, "sampled before it started");
    assert!(
        first - late_started_ns < 3_000_000_000,
        "first sample {} s after it started",
        (first - late_started_ns) as f64 / 1e9
    );
    let late_samples = number(l, "samples");
    assert!(
        late_samples > samples * 0.25 && late_samples < samples * 0.7,
        "{late_samples} of {samples}"
    );

    // The table says what the JSON says.
    let table = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(table.lines().all(|l| l.chars().count() <= 100), "{table}");
    let burner_row = table
        .lines()
        .find(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|n| n.ends_with("-burner"))
        })
        .unwrap_or_else(|| panic!("no row for the burner in\n{table}"));
    let expected_cpu = format!(
        "{:.1}/{:.1}/{:.1}",
        cpu_p50,
        number(b, "cpu_percent.p95"),
        number(b, "cpu_percent.max")
    );
    assert!(
        burner_row.contains(&expected_cpu),
        "{burner_row} vs {expected_cpu}"
    );
    assert!(
        table.contains(&format!("PASS {budget_pass}: highest")),
        "{table}"
    );
    assert_eq!(summary["budgets"][0]["passed"], true);

    // The CSV has a row per container with the same numbers.
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        1 + summary["containers"].as_array().unwrap().len()
    );
    assert!(csv.contains(&cpu_p50.to_string()), "{csv}");

    // report --file on the run's points gives the same numbers.
    let points = out.join("points.lp");
    let from_file = run(
        &[
            "report",
            "--file",
            points.to_str().unwrap(),
            "--format",
            "json",
        ],
        &env,
    );
    assert_eq!(from_file.status.code(), Some(0), "{}", describe(&from_file));
    let from_file: Value = serde_json::from_slice(&from_file.stdout).unwrap();
    assert_eq!(from_file["containers"], summary["containers"]);
    assert_eq!(from_file["run"], summary["run"]);

    // report --run reads the same run back from InfluxDB.
    let run_id = the_run["id"].as_str().unwrap();
    let from_influx = run(&["report", "--run", run_id, "--format", "json"], &env);
    assert_eq!(
        from_influx.status.code(),
        Some(0),
        "{}",
        describe(&from_influx)
    );
    let from_influx: Value = serde_json::from_slice(&from_influx.stdout).unwrap();
    assert_eq!(from_influx["run"], summary["run"]);
    assert_eq!(from_influx["containers"], summary["containers"]);
    assert_eq!(from_influx["events"], summary["events"]);

    // The same window by time holds both writers' samples of each
    // container: one is picked per container (the run's, which has the
    // most), and the report says which.
    let rfc3339 = |path: &str| {
        let ns = number(the_run, path) as u64;
        humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(ns)).to_string()
    };
    let by_time = run(
        &[
            "report",
            "--from",
            &rfc3339("start_ns"),
            "--to",
            &rfc3339("end_ns"),
            "--containers",
            &filter,
            "--format",
            "json",
        ],
        &env,
    );
    assert_eq!(by_time.status.code(), Some(0), "{}", describe(&by_time));
    let by_time_summary: Value = serde_json::from_slice(&by_time.stdout).unwrap();
    assert_eq!(by_time_summary["containers"], summary["containers"]);
    let said = String::from_utf8_lossy(&by_time.stderr);
    assert!(
        said.contains(&format!("{burner}: samples from 2 writers"))
            && said.contains("leaving out the collector (stream"),
        "{said}"
    );
    assert!(service.terminate().await.success(), "{}", service.logs());

    report_reads_well_in_a_browser(&out.join("report.html"), &summary);
    the_dashboard_draws_the_run_as_a_region(&database, the_run).await;

    // A failing budget on the same points: exit 3, and it says why.
    let failing = format!("{burner}:cpu_limit_percent.p50<50");
    let judged = run(
        &[
            "report",
            "--file",
            points.to_str().unwrap(),
            "--budget",
            &failing,
        ],
        &env,
    );
    assert_eq!(judged.status.code(), Some(3), "{}", describe(&judged));
    let text = String::from_utf8_lossy(&judged.stdout);
    assert!(text.contains(&format!("FAIL {failing}")), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The dashboard's "Load-test runs" annotation, run as Grafana would
/// (host variable and time filter substituted) against the run's database:
/// one region from the run's start to its end, titled with its command.
async fn the_dashboard_draws_the_run_as_a_region(database: &str, run: &Value) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/docker-stats.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let annotation = dashboard["annotations"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "Load-test runs")
        .expect("a Load-test runs annotation");
    let start_ms = number(run, "start_ns") as i64 / 1_000_000;
    let end_ms = number(run, "end_ns") as i64 / 1_000_000;
    let query = annotation["query"]
        .as_str()
        .unwrap()
        .replace("$host", &format!("({})", run["host"].as_str().unwrap()))
        .replace(
            "$timeFilter",
            &format!(
                "time >= {}ms and time <= {}ms",
                start_ms - 60_000,
                end_ms + 60_000
            ),
        );
    let rows = shared().rows(database, &query).await;
    assert_eq!(rows.len(), 1, "{query}: {rows:?}");
    let row = &rows[0];
    let text = annotation["textColumn"].as_str().unwrap();
    let time_end = annotation["timeEndColumn"].as_str().unwrap();
    assert_eq!(row[text], run["command"]);
    assert_eq!(row[time_end].as_i64(), Some(end_ms));
    assert_eq!(row["exit_code"].as_i64(), Some(0));
}

/// The charts each container gets: CPU, memory and network, and CPU of
/// its limit and throttling where it has a CPU limit.
fn expected_charts(container: &Value) -> Vec<&'static str> {
    let mut charts = vec!["cpu", "memory", "network"];
    if !container["cpu_limit_cores"].is_null() {
        charts.extend(["cpu_limit", "throttled"]);
    }
    charts
}

/// `report.html` in headless chromium: a chart per container and metric,
/// no request leaves the page, and the charts are drawn (their line colours
/// cover as many pixels as a line across each chart would).
fn report_reads_well_in_a_browser(page: &Path, summary: &Value) {
    let containers = summary["containers"].as_array().unwrap();
    let rendered = browser::render(page, 1240, 900 + 750 * containers.len() as u32);
    let mut total = 0;
    let mut limited = 0;
    for container in containers {
        let name = container["name"].as_str().unwrap();
        for metric in expected_charts(container) {
            let figure =
                format!("<figure data-container=\"{name}\" data-metric=\"{metric}\"><figcaption>");
            assert_eq!(
                rendered.dom.matches(&figure).count(),
                1,
                "no {metric} chart for {name}"
            );
            total += 1;
        }
        limited += usize::from(!container["cpu_limit_cores"].is_null());
    }
    assert_eq!(rendered.dom.matches("<figure ").count(), total);
    assert!(
        rendered.page_requests.is_empty(),
        "the page made requests: {:?}",
        rendered.page_requests
    );
    // A 2-pixel line across a 480-pixel plot is ~900 pixels; ask for a
    // third of that per chart drawn in each colour.
    let per_chart = 300;
    let cpu_charts = containers.len() + limited;
    let colours = [
        ("CPU", [31, 119, 180], cpu_charts),
        ("memory", [44, 160, 44], containers.len()),
        ("throttling", [255, 127, 14], limited),
        ("network received", [148, 103, 189], containers.len()),
    ];
    for (what, colour, charts) in colours {
        let drawn = rendered.pixels_near(colour, 8);
        assert!(
            drawn >= per_chart * charts,
            "{what}: {drawn} pixels for {charts} charts in {} ({}x{})",
            rendered.png.display(),
            rendered.width,
            rendered.height
        );
    }
}

/// The request detector sees a page's request when there is one: a page
/// without the report's CSP that loads an image.
#[test]
fn the_browser_check_sees_a_request_the_page_makes() {
    let dir = PathBuf::from(tempdir("dss-browser-control"));
    let page = dir.join("control.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><img src=\"http://127.0.0.1:9/pixel.png\"></body></html>",
    )
    .unwrap();
    let rendered = browser::render(&page, 400, 300);
    assert_eq!(
        rendered.page_requests,
        vec!["http://127.0.0.1:9/pixel.png".to_string()]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A budget that fails makes `record` exit 3 after writing everything; a
/// malformed one is refused before anything is sampled or run. (This run
/// cannot read the cgroup files, so it also shows the fall-back to the
/// engine's stream, judged against the stream's interval.)
#[test]
fn budgets_decide_the_exit_code_and_bad_ones_stop_the_run_before_it_starts() {
    let containers = TestContainers::new("budget");
    containers.idle("idle");
    let filter = format!("{}*", containers.name(""));
    let dir = PathBuf::from(tempdir("dss-budget"));
    let out = dir.join("run");
    let mut env = influx_env("budget_unused");
    env.push(("CGROUP_ROOT", "/nonexistent".into()));
    let failing = run(
        &[
            "record",
            "--containers",
            &filter,
            "--duration",
            "2s",
            "--out",
            out.to_str().unwrap(),
            "--budget",
            &format!("{filter}:samples<1"),
        ],
        &env,
    );
    assert_eq!(failing.status.code(), Some(3), "{}", describe(&failing));
    let stderr = String::from_utf8_lossy(&failing.stderr);
    assert!(
        stderr.contains("sampling the engine's stats stream instead"),
        "{stderr}"
    );
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["budgets"][0]["passed"], false);
    assert_eq!(summary["window"]["requested_interval_ns"], 1_000_000_000i64);
    let sampled = container(&summary, &containers.name("idle"));
    assert_eq!(sampled["source"], "stream");
    assert_eq!(sampled["gaps"], 0, "{sampled:#}");
    assert!(out.join("report.html").exists() && out.join("points.lp").exists());

    let marker = dir.join("command-ran");
    let malformed_out = dir.join("never");
    let started = Instant::now();
    let malformed = run(
        &[
            "record",
            "--out",
            malformed_out.to_str().unwrap(),
            "--budget",
            "web:cpu_percent<=90",
            "--",
            "touch",
            marker.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(malformed.status.code(), Some(2), "{}", describe(&malformed));
    let stderr = String::from_utf8_lossy(&malformed.stderr);
    assert!(
        stderr.contains("web:cpu_percent<=90") && stderr.contains("needs a statistic"),
        "{stderr}"
    );
    assert!(!marker.exists(), "the command ran despite the bad budget");
    assert!(
        !malformed_out.exists(),
        "the run started despite the bad budget"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run whose own points are not in InfluxDB (it sampled no container,
/// or an outage dropped them) is summarised empty by `report --run`, as
/// `record` summarised it, and the reason said: never from what other
/// writers (the collector, other runs) wrote in its window.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_without_its_own_points_is_not_mixed_with_other_writers() {
    let database = format!("lostrun_{}", std::process::id());
    let start = now_ns() - 60_000_000_000;
    let second = 1_000_000_000;
    let lines = [
        format!(
            "docker_runs,host=h,run_id=lost command=\"make load\",end_ns={}i,interval_ns=100000000i {start}",
            start + 10 * second
        ),
        format!(
            "docker_stats,container_id=c1,container_name=collector-only,host=h,source=stream cpu_percent=12 {}",
            start + second
        ),
        format!(
            "docker_stats,container_id=c1,container_name=collector-only,host=h,source=stream cpu_percent=13 {}",
            start + 2 * second
        ),
    ];
    shared().write(&database, &lines.join("\n")).await;
    let output = run(
        &["report", "--run", "lost", "--format", "json"],
        &influx_env(&database),
    );
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("run \"lost\" has no stats points tagged run_id=lost"),
        "{stderr}"
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["run"]["id"], "lost");
    assert_eq!(summary["containers"], serde_json::json!([]), "{summary:#}");
}
