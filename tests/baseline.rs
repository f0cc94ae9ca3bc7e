//! `--baseline` end to end, against the real engine and a real influxd:
//! the same load recorded three times changes nothing beyond the noise; a
//! doubled load is called beyond it, fails its regression rule with exit 3,
//! and says so in every format CI reads (markdown, JUnit, JSON, CSV, HTML);
//! containers are matched across runs by Compose service or name; and a
//! comparison of stored runs gives the same answer as the files.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::browser;
use support::containers::{docker, TestContainers};
use support::influx::{shared, tempdir};
use support::service::{describe, read_json, BINARY};

const MIB: f64 = 1024.0 * 1024.0;

fn run(args: &[&str], database: &str) -> Output {
    let influx = shared();
    Command::new(BINARY)
        .args(args)
        .env("INFLUXDB_HOST", "127.0.0.1")
        .env("INFLUXDB_PORT", influx.port.to_string())
        .env("INFLUXDB_DB", database)
        .output()
        .expect("running the service binary")
}

/// The change of `metric` for the container whose name ends with `suffix`.
fn change<'a>(comparison: &'a Value, suffix: &str, metric: &str) -> &'a Value {
    comparison["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().ends_with(suffix))
        .unwrap_or_else(|| panic!("no {suffix} in {comparison:#}"))["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == metric)
        .unwrap_or_else(|| panic!("no {metric} for {suffix}"))
}

fn f(value: &Value, key: &str) -> f64 {
    value[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} in {value:#}"))
}

/// The rules a same-load pair must pass: the load's main numbers, under
/// the noise and under a 10% budget.
const SAME_LOAD_RULES: [&str; 6] = [
    "*-burn:cpu_percent.p50:noise",
    "*-burn:cpu_percent.p50:+10%",
    "*-burn:cpu_percent.mean:noise",
    "*-burn:throttled_share:noise",
    "*-hold:mem_used.max:noise",
    "*-hold:mem_used.max:+10%",
];

#[tokio::test(flavor = "multi_thread")]
async fn a_doubled_load_is_a_regression_and_the_same_load_is_not() {
    let containers = TestContainers::new("baseline");
    let prefix = containers.name("");
    let filter = format!("{prefix}*");
    let database = format!("baseline_{}", std::process::id());
    let dir = PathBuf::from(tempdir("dss-baseline"));

    containers.run(
        "burn",
        &["--cpus", "0.3"],
        &["sh", "-c", "while :; do :; done"],
    );
    containers.run(
        "hold",
        &[
            "--memory",
            "128m",
            "--memory-swap",
            "128m",
            "--shm-size",
            "256m",
        ],
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/dev/shm/a bs=1M count=30 && touch /tmp/held && sleep 3600",
        ],
    );
    containers.idle("idle");
    let project = format!("{prefix}shop");
    let compose_labels = [
        "--label".to_string(),
        format!("com.docker.compose.project={project}"),
        "--label".to_string(),
        "com.docker.compose.service=web".to_string(),
    ];
    let compose_options: Vec<&str> = compose_labels.iter().map(String::as_str).collect();
    let first_web = containers.run("shop-web-1", &compose_options, &["sleep", "3600"]);

    let record = |name: &str, extra: &[&str]| -> (PathBuf, Output) {
        let out = dir.join(name);
        let mut args = vec![
            "record",
            "--containers",
            &filter,
            "--interval",
            "100ms",
            "--duration",
            "5s",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let output = run(&args, &database);
        (out, output)
    };

    // The same load, three times, once it is the load: the 30 MiB are
    // written (which took over 3 s on this machine while other tests ran).
    let held = || {
        Command::new("docker")
            .args([
                "exec",
                &containers.name("hold"),
                "sh",
                "-c",
                "[ -f /tmp/held ]",
            ])
            .status()
            .is_ok_and(|s| s.success())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !held() {
        assert!(
            Instant::now() < deadline,
            "the holder never wrote its 30 MiB"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut same = Vec::new();
    for name in ["a1", "a2", "a3"] {
        let (out, output) = record(name, &[]);
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        same.push(out);
    }
    let mut largest: (f64, String) = (0.0, String::new());
    for (current, base) in [(1, 0), (2, 1), (2, 0)] {
        let mut args = vec![
            "report".to_string(),
            "--file".into(),
            same[current].join("points.lp").display().to_string(),
            "--baseline".into(),
            same[base].display().to_string(),
            "--format".into(),
            "json".into(),
        ];
        for rule in SAME_LOAD_RULES {
            args.extend(["--regression".to_string(), rule.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = run(&args, &database);
        assert_eq!(
            output.status.code(),
            Some(0),
            "a{} against a{}: a regression of the same load\n{}",
            current + 1,
            base + 1,
            describe(&output)
        );
        let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
        for rule in summary["comparison"]["regressions"].as_array().unwrap() {
            assert_eq!(rule["passed"], true, "{rule:#}");
            for check in rule["containers"].as_array().unwrap() {
                let percent = check["change_percent"].as_f64().unwrap_or(0.0).abs();
                if percent > largest.0 {
                    largest = (
                        percent,
                        format!("{} {}", check["container"], rule["metric"]),
                    );
                }
            }
        }
    }
    eprintln!(
        "largest change between runs of the same load: {:.2}% ({})",
        largest.0, largest.1
    );

    // The load doubles, a Compose container is replaced (a new id), and
    // one container is renamed.
    docker(&["update", "--cpus", "0.6", &containers.name("burn")]);
    docker(&[
        "exec",
        &containers.name("hold"),
        "dd",
        "if=/dev/zero",
        "of=/dev/shm/b",
        "bs=1M",
        "count=30",
    ]);
    containers.remove("shop-web-1");
    let second_web = containers.run("shop-web-1", &compose_options, &["sleep", "3600"]);
    assert_ne!(first_web, second_web);
    let renamed = containers.name("idle-renamed");
    docker(&["rename", &containers.name("idle"), &renamed]);

    let junit = dir.join("results.xml");
    let base = same[2].display().to_string();
    let (doubled, output) = record(
        "b",
        &[
            "--baseline",
            &base,
            "--regression",
            "*-burn:cpu_percent.p50:+10%",
            "--regression",
            "*-hold:mem_used.max:noise",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    let _ = docker(&["rm", "-f", &renamed]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("2 of 2 regression rule(s) failed"),
        "{stderr}"
    );

    let summary = read_json(&doubled.join("summary.json"));
    let comparison = &summary["comparison"];
    let cpu = change(comparison, "-burn", "cpu_percent.p50");
    // Within the end-to-end test's tolerance of a limited burner (±2).
    assert!((f(cpu, "baseline") - 30.0).abs() <= 2.0, "{cpu:#}");
    assert!((f(cpu, "current") - 60.0).abs() <= 2.0, "{cpu:#}");
    assert_eq!(cpu["beyond_noise"], true, "{cpu:#}");
    let memory = change(comparison, "-hold", "mem_used.max");
    // The held memory doubles: 30 MiB more, within the end-to-end test's
    // 3% (the container's own few MiB stay as they were).
    assert!(
        (f(memory, "change") - 30.0 * MIB).abs() <= 0.03 * 30.0 * MIB,
        "{memory:#}"
    );
    assert_eq!(memory["beyond_noise"], true, "{memory:#}");
    // Matched across runs: the Compose service by project, service and
    // replica; the renamed container is one removed and one added.
    let web = comparison["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().ends_with("-shop-web-1"))
        .unwrap_or_else(|| panic!("the Compose container is not matched: {comparison:#}"));
    assert_eq!(web["matched_by"], format!("compose={project}/web#1"));
    assert_eq!(
        comparison["removed"],
        serde_json::json!([containers.name("idle")])
    );
    assert_eq!(comparison["added"], serde_json::json!([renamed]));

    the_ci_formats_say_the_same(&doubled, &junit);
    the_report_draws_the_baseline_and_reads_well(&doubled.join("report.html"), &summary);

    // The last three runs as one rolling baseline: still a regression.
    let rolling = run(
        &[
            "report",
            "--file",
            doubled.join("points.lp").to_str().unwrap(),
            "--baseline",
            same[0].to_str().unwrap(),
            "--baseline",
            same[1].to_str().unwrap(),
            "--baseline",
            same[2].to_str().unwrap(),
            "--regression",
            "*-burn:cpu_percent.p50:noise",
            "--format",
            "markdown",
        ],
        &database,
    );
    assert_eq!(rolling.status.code(), Some(3), "{}", describe(&rolling));
    let text = String::from_utf8_lossy(&rolling.stdout);
    assert!(text.contains("and 2 more"), "{text}");

    // Stored runs compare as the files do.
    let run_id = |dir: &Path| {
        read_json(&dir.join("summary.json"))["run"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let stored = run(
        &[
            "report",
            "--run",
            &run_id(&doubled),
            "--containers",
            &filter,
            "--baseline",
            &format!("run:{}", run_id(&same[2])),
            "--format",
            "json",
        ],
        &database,
    );
    assert_eq!(stored.status.code(), Some(0), "{}", describe(&stored));
    let stored: Value = serde_json::from_slice(&stored.stdout).unwrap();
    let from_files = run(
        &[
            "report",
            "--file",
            doubled.join("points.lp").to_str().unwrap(),
            "--containers",
            &filter,
            "--baseline",
            &base,
            "--format",
            "json",
        ],
        &database,
    );
    let from_files: Value = serde_json::from_slice(&from_files.stdout).unwrap();
    for part in ["containers", "added", "removed"] {
        assert_eq!(
            stored["comparison"][part], from_files["comparison"][part],
            "{part} differ between InfluxDB and the files"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// summary.md renders as tables in a CommonMark/GFM parser, the JUnit file
/// is valid against junit-10.xsd and names the regression, and the CSV has
/// the change columns.
fn the_ci_formats_say_the_same(run: &Path, junit: &Path) {
    let markdown = python(&["markdown", run.join("summary.md").to_str().unwrap()]);
    let tables = markdown["tables"].as_array().unwrap();
    let source = std::fs::read_to_string(run.join("summary.md")).unwrap();
    let table_lines = source.lines().filter(|l| l.starts_with('|')).count();
    let rows: usize = tables.iter().map(|t| t.as_array().unwrap().len()).sum();
    // Every table line became a row, but the delimiter rows.
    assert_eq!(rows + tables.len(), table_lines, "{source}");
    let cells = |table: &Value| -> Vec<Vec<String>> {
        table
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_str().unwrap().to_string())
                    .collect()
            })
            .collect()
    };
    let all: Vec<Vec<Vec<String>>> = tables.iter().map(cells).collect();
    let rule_row = all
        .iter()
        .flatten()
        .find(|row| {
            row.get(1)
                .is_some_and(|c| c == "*-burn:cpu_percent.p50:+10%")
        })
        .unwrap_or_else(|| panic!("no row for the CPU rule in {all:?}"));
    assert!(rule_row[0].contains("FAIL"), "{rule_row:?}");
    assert!(rule_row[2].contains("-burn"), "{rule_row:?}");
    assert_eq!(
        all[0][0].len(),
        all[0][1].len(),
        "the container table's rows have its header's columns"
    );

    let xsd = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-tools/junit-10.xsd");
    assert!(
        xsd.exists(),
        "{} is missing: scripts/test fetches it (the README's test command)",
        xsd.display()
    );
    let report = python(&["junit", junit.to_str().unwrap(), xsd.to_str().unwrap()]);
    assert_eq!(report["valid"], true);
    let cases = report["cases"].as_array().unwrap();
    let cpu = cases
        .iter()
        .find(|c| c["name"] == "*-burn:cpu_percent.p50:+10%")
        .unwrap_or_else(|| panic!("no test case for the CPU rule: {cases:?}"));
    assert_eq!(cpu["suite"], "regressions");
    let message = cpu["failures"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("-burn") && message.contains("->"),
        "{message}"
    );

    let csv = std::fs::read_to_string(run.join("summary.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = header
        .iter()
        .position(|h| *h == "cpu_percent_p50_beyond_noise")
        .unwrap_or_else(|| panic!("no change columns in {header:?}"));
    let burn = lines
        .find(|l| l.split(',').next().is_some_and(|n| n.ends_with("-burn")))
        .unwrap();
    assert_eq!(burn.split(',').nth(column), Some("true"), "{burn}");
}

/// report.html at 1200 pixels: it makes no request, nothing scrolls sideways, no legend covers
/// a line, every chart of a limited container shows its limit with room
/// above, an unlimited container's memory chart shows none, and each chart
/// draws the baseline behind.
fn the_report_draws_the_baseline_and_reads_well(page: &Path, summary: &Value) {
    // The page itself, as a reader opens it: still self-contained.
    let rendered = browser::render(page, 1200, 1600);
    assert!(
        rendered.page_requests.is_empty(),
        "the page made requests: {:?}",
        rendered.page_requests
    );
    // The tables carry the change under each value; the doubled CPU is
    // marked beyond the noise.
    let html = std::fs::read_to_string(page).unwrap();
    assert!(
        html.contains("<span class=\"change beyond\" title=\"cpu_percent.p95 against baseline"),
        "no change beyond the noise in the summary table"
    );
    let layout = browser::layout(page, 1200, 4000);
    assert!(
        layout["scrollWidth"].as_f64() <= layout["clientWidth"].as_f64(),
        "the page scrolls sideways: {} > {}",
        layout["scrollWidth"],
        layout["clientWidth"]
    );
    let limit_stroke = "#d62728";
    let figures = layout["figures"].as_array().unwrap();
    assert!(!figures.is_empty());
    for figure in figures {
        let what = format!("{} {}", figure["container"], figure["metric"]);
        let legend = figure["legend"].as_array().unwrap();
        assert!(!legend.is_empty(), "{what}: no legend");
        for line in figure["lines"].as_array().unwrap() {
            let points: Vec<(f64, f64)> = line["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
                .collect();
            for key in legend {
                let b: Vec<f64> = key["box"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                assert!(
                    !crosses(&points, [b[0], b[1], b[2], b[3]]),
                    "{what}: the legend entry {} covers a line",
                    key["text"]
                );
            }
        }
        let container = summary["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == figure["container"])
            .unwrap();
        let limited = match figure["metric"].as_str().unwrap() {
            "cpu" | "cpu_limit" => !container["cpu_limit_cores"].is_null(),
            // The engine reports the host's memory for a container
            // without a limit.
            "memory" => {
                container["mem_limit_bytes"].as_f64() < summary["run"]["host_memory_bytes"].as_f64()
            }
            _ => continue,
        };
        let svg: Vec<f64> = figure["svg"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let limit = figure["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["stroke"] == limit_stroke);
        match (limited, limit) {
            (true, Some(line)) => {
                let y = line["points"][0][1].as_f64().unwrap();
                let height = svg[3] - svg[1];
                assert!(
                    y > svg[1] + 0.15 * height && y < svg[3],
                    "{what}: the limit at y={y} is not within the plot with room above ({svg:?})"
                );
            }
            (true, None) => panic!("{what}: a limited container's chart without its limit"),
            (false, Some(_)) => panic!("{what}: a limit drawn for a container without one"),
            (false, None) => {}
        }
        let has_baseline = legend
            .iter()
            .any(|k| k["text"].as_str().unwrap().starts_with("baseline"));
        let matched = summary["comparison"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == figure["container"]);
        assert_eq!(
            has_baseline, matched,
            "{what}: baseline drawn {has_baseline}"
        );
    }
    let held = summary["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().ends_with("-hold"))
        .unwrap();
    assert_eq!(held["mem_limit_bytes"].as_f64(), Some(128.0 * MIB));
    let idle = summary["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().ends_with("-idle-renamed"))
        .unwrap();
    assert_eq!(
        idle["mem_limit_bytes"].as_f64(),
        summary["run"]["host_memory_bytes"].as_f64(),
        "without a limit, the engine reports the host's memory: {idle:#}"
    );
}

/// Whether a polyline passes through a box (edges included), checked
/// every half pixel along each segment.
fn crosses(points: &[(f64, f64)], [left, top, right, bottom]: [f64; 4]) -> bool {
    let inside = |(x, y): (f64, f64)| x >= left && x <= right && y >= top && y <= bottom;
    points.windows(2).any(|w| {
        let (a, b) = (w[0], w[1]);
        let steps = ((b.0 - a.0).hypot(b.1 - a.1) * 2.0).ceil().max(1.0) as usize;
        (0..=steps).any(|i| {
            let t = i as f64 / steps as f64;
            inside((a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t))
        })
    }) || points.first().is_some_and(|p| inside(*p))
}

fn python(args: &[&str]) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/ci_formats.py");
    let output = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .expect("python3 (scripts/test installs it)");
    assert!(
        output.status.success(),
        "{} {args:?} failed (scripts/test installs markdown-it-py, junitparser and xmlschema):\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A regression rule that cannot be read, or one without a baseline, and
/// a baseline that cannot be found, are refused before anything runs.
#[test]
fn bad_rules_and_baselines_stop_the_run_before_it_starts() {
    let dir = PathBuf::from(tempdir("dss-baseline-bad"));
    let marker = dir.join("command-ran");
    let out = dir.join("never");
    let missing = dir.join("no-such-run");
    let cases: [(Vec<&str>, &str); 3] = [
        (
            vec![
                "--baseline",
                dir.to_str().unwrap(),
                "--regression",
                "web:cpu_pct.p50:+10%",
            ],
            "unknown metric",
        ),
        (
            vec!["--regression", "web:cpu_percent.p50:+10%"],
            "--baseline",
        ),
        (
            vec!["--baseline", missing.to_str().unwrap()],
            "no such file or directory",
        ),
    ];
    for (options, expected) in cases {
        let mut args = vec!["record", "--out", out.to_str().unwrap()];
        args.extend(&options);
        args.extend(["--", "touch", marker.to_str().unwrap()]);
        let output = run(&args, "baseline_unused");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{options:?}: {}",
            describe(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{options:?}: {stderr}");
        assert!(!marker.exists(), "{options:?}: the command ran");
        assert!(!out.exists(), "{options:?}: the run started");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
