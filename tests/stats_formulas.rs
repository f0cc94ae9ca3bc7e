//! The `docker stats` arithmetic on payloads recorded from this machine's
//! engine (cgroup v1) and hand-made cgroup v2 and Windows payloads. Expected
//! values were worked out by hand from each payload with the Docker CLI's
//! formulas.

use bollard::models::ContainerStatsResponse;
use docker_stats_service::docker::stats::{compute_fields, read_time_ns, FieldValue, Platform};

fn fixture(name: &str) -> ContainerStatsResponse {
    let path = format!("{}/tests/fixtures/stats/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn field(
    fields: &[(std::borrow::Cow<'static, str>, FieldValue)],
    name: &str,
) -> Option<FieldValue> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

fn float(fields: &[(std::borrow::Cow<'static, str>, FieldValue)], name: &str) -> Option<f64> {
    match field(fields, name)? {
        FieldValue::Float(v) => Some(v),
        FieldValue::Int(v) => panic!("{name} is the integer {v}, expected a float"),
    }
}

fn int(fields: &[(std::borrow::Cow<'static, str>, FieldValue)], name: &str) -> Option<u64> {
    match field(fields, name)? {
        FieldValue::Int(v) => Some(v),
        FieldValue::Float(v) => panic!("{name} is the float {v}, expected an integer"),
    }
}

fn assert_close(actual: Option<f64>, expected: f64, what: &str) {
    let actual = actual.unwrap_or_else(|| panic!("{what} missing"));
    assert!(
        (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{what}: {actual} != {expected}"
    );
}

struct Case {
    fixture: &'static str,
    cpu_percent: Option<f64>,
    mem_used: u64,
    mem_total: u64,
    net: (u64, u64),
}

#[test]
fn recorded_cgroup_v1_samples_give_the_cli_figures() {
    let cases = [
        Case {
            fixture: "v1_idle.json",
            cpu_percent: Some(0.0),
            mem_used: 581_632,
            mem_total: 25_276_502_016,
            net: (876, 0),
        },
        Case {
            fixture: "v1_cpu_limited.json",
            cpu_percent: Some(49.78137920792079),
            mem_used: 528_384,
            mem_total: 25_276_502_016,
            net: (766, 0),
        },
        // -m 64m with 30 MB written to /tmp: the inactive file cache is not "used".
        Case {
            fixture: "v1_mem_limited.json",
            cpu_percent: Some(0.0),
            mem_used: 1_318_912,
            mem_total: 67_108_864,
            net: (656, 0),
        },
        // 50 MB read through the page cache: usage 53.9 MB, used 1.9 MB.
        Case {
            fixture: "v1_page_cache.json",
            cpu_percent: Some(0.0),
            mem_used: 1_875_968,
            mem_total: 25_276_502_016,
            net: (516, 0),
        },
    ];
    for case in cases {
        let stats = fixture(case.fixture);
        let fields = compute_fields(&stats, Platform::Linux, None);
        match case.cpu_percent {
            Some(expected) => assert_close(float(&fields, "cpu_percent"), expected, case.fixture),
            None => assert_eq!(field(&fields, "cpu_percent"), None),
        }
        assert_eq!(
            int(&fields, "mem_used"),
            Some(case.mem_used),
            "{}",
            case.fixture
        );
        assert_eq!(
            int(&fields, "mem_total"),
            Some(case.mem_total),
            "{}",
            case.fixture
        );
        let pct = case.mem_used as f64 / case.mem_total as f64 * 100.0;
        assert_close(float(&fields, "mem_percent"), pct, case.fixture);
        assert_eq!(
            int(&fields, "net_in_bytes"),
            Some(case.net.0),
            "{}",
            case.fixture
        );
        assert_eq!(
            int(&fields, "net_out_bytes"),
            Some(case.net.1),
            "{}",
            case.fixture
        );
        assert_eq!(int(&fields, "pids_current"), Some(1), "{}", case.fixture);
    }
}

#[test]
fn first_sample_of_a_stream_has_no_cpu_percent() {
    let fields = compute_fields(&fixture("v1_idle_first.json"), Platform::Linux, Some(1.0));
    assert_eq!(field(&fields, "cpu_percent"), None);
    assert_eq!(field(&fields, "cpu_limit_percent"), None);
    assert_close(float(&fields, "cpu_limit_cores"), 1.0, "cpu_limit_cores");
    assert_eq!(int(&fields, "mem_used"), Some(581_632));
}

#[test]
fn cpu_limit_percent_is_the_share_of_the_containers_own_limit() {
    let fields = compute_fields(&fixture("v1_cpu_limited.json"), Platform::Linux, Some(0.5));
    assert_close(
        float(&fields, "cpu_limit_percent"),
        49.78137920792079 / 0.5,
        "cpu_limit_percent",
    );
    assert_eq!(int(&fields, "cpu_throttling_periods"), Some(170));
    assert_eq!(int(&fields, "cpu_throttled_periods"), Some(169));
}

#[test]
fn samples_after_a_container_stopped_are_empty() {
    for name in ["v1_just_stopped.json", "v1_stopped_empty.json"] {
        assert_eq!(read_time_ns(&fixture(name)), None, "{name}");
    }
    assert_eq!(
        read_time_ns(&fixture("v1_idle.json")),
        Some(1_795_500_102_230_297_079)
    );
}

#[test]
fn cgroup_v2_uses_inactive_file_and_lowercase_block_io_ops() {
    let fields = compute_fields(&fixture("handmade_cgroup_v2.json"), Platform::Linux, None);
    // (3.0e9 - 2.5e9) / (100000e9 - 99996e9) * 4 cores * 100
    assert_close(float(&fields, "cpu_percent"), 50.0, "cpu_percent");
    assert_eq!(int(&fields, "mem_used"), Some(209_715_200 - 52_428_800));
    assert_close(float(&fields, "mem_percent"), 29.296875, "mem_percent");
    assert_eq!(int(&fields, "blkio_read_bytes"), Some(4_097_000));
    assert_eq!(int(&fields, "blkio_write_bytes"), Some(1_024_024));
    assert_eq!(int(&fields, "net_in_bytes"), Some(1300));
    assert_eq!(int(&fields, "net_out_bytes"), Some(2400));
    assert_eq!(int(&fields, "net_eth1_out_dropped"), Some(1));
    assert_eq!(int(&fields, "net_in_errors"), Some(1));
    assert_eq!(int(&fields, "mem_cache"), Some(94_371_840), "v2 `file`");
    assert_eq!(int(&fields, "mem_rss"), Some(104_857_600), "v2 `anon`");
    assert_eq!(int(&fields, "pids_limit"), Some(4915));
    assert_eq!(
        field(&fields, "cpu_core_0_usage"),
        None,
        "v2 has no per-core usage"
    );
}

#[test]
fn windows_uses_100ns_intervals_private_working_set_and_storage_stats() {
    let fields = compute_fields(&fixture("handmade_windows.json"), Platform::Windows, None);
    // 5e6 intervals used of (1 s / 100 ns) * 2 processors = 2e7
    assert_close(float(&fields, "cpu_percent"), 25.0, "cpu_percent");
    assert_eq!(int(&fields, "mem_used"), Some(104_857_600));
    assert_eq!(
        field(&fields, "mem_percent"),
        None,
        "Windows reports no memory limit"
    );
    assert_eq!(int(&fields, "blkio_read_bytes"), Some(2048));
    assert_eq!(int(&fields, "blkio_write_bytes"), Some(4096));
    assert_eq!(int(&fields, "mem_commit_peak_bytes"), Some(314_572_800));
    assert_eq!(int(&fields, "net_in_bytes"), Some(5000));
}

#[test]
fn block_io_ops_match_either_case_and_ignore_totals() {
    use bollard::models::ContainerBlkioStatEntry;
    use docker_stats_service::docker::stats::sum_read_write;
    let entry = |op: &str, value| ContainerBlkioStatEntry {
        major: Some(8),
        minor: Some(0),
        op: Some(op.into()),
        value: Some(value),
    };
    let v1 = [
        entry("Read", 10),
        entry("Write", 20),
        entry("Sync", 30),
        entry("Async", 0),
        entry("Total", 30),
    ];
    assert_eq!(sum_read_write(&v1), (10, 20));
    let v2 = [entry("read", 1), entry("write", 2), entry("discard", 4)];
    assert_eq!(sum_read_write(&v2), (1, 2));
}

#[test]
fn every_field_name_produced_is_a_known_name() {
    for name in [
        "v1_cpu_limited.json",
        "handmade_cgroup_v2.json",
        "handmade_windows.json",
    ] {
        let platform = if name.contains("windows") {
            Platform::Windows
        } else {
            Platform::Linux
        };
        for (field, _) in compute_fields(&fixture(name), platform, Some(1.0)) {
            assert!(
                docker_stats_service::docker::fields::is_known(&field),
                "{field} from {name} is not accepted by STATS_FIELDS"
            );
        }
    }
}
