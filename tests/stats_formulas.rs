//! The `docker stats` arithmetic on payloads recorded from this machine's
//! engine (cgroup v1) and hand-made cgroup v2 and Windows payloads. Expected
//! values were worked out by hand from each payload with the Docker CLI's
//! formulas.

use bollard::models::ContainerStatsResponse;
use docker_stats_service::engine::client::Platform;
use docker_stats_service::schema::point::FieldValue;
use docker_stats_service::sources::stream::fields::{compute_fields, read_time_ns};
use docker_stats_service::sources::stream::sample::{BlkioEntry, Sample};

const FIXTURES: &[&str] = &[
    "v1_cpu_limited.json",
    "v1_idle.json",
    "v1_idle_first.json",
    "v1_just_stopped.json",
    "v1_mem_limited.json",
    "v1_page_cache.json",
    "v1_stopped_empty.json",
    "handmade_cgroup_v2.json",
    "handmade_windows.json",
    // Recorded in the platform lane's VM (tests/platform/record-fixtures.sh).
    "docker26_v2_cpu_limited.json",
    "docker26_v2_idle.json",
    "docker26_v2_just_stopped.json",
    "docker26_v2_mem_limited.json",
    "docker26_v2_page_cache.json",
    "podman5_v2_cpu_limited.json",
    "podman5_v2_idle.json",
    "podman5_v2_mem_limited.json",
    "podman5_v2_page_cache.json",
    "docker28_v2_cpu_limited.json",
    "docker28_v2_idle.json",
    "docker28_v2_just_stopped.json",
    "docker28_v2_mem_limited.json",
    "docker28_v2_page_cache.json",
    "podman58_v2_cpu_limited.json",
    "podman58_v2_idle.json",
    "podman58_v2_mem_limited.json",
    "podman58_v2_page_cache.json",
];

fn fixture_text(name: &str) -> &'static str {
    let path = format!("{}/tests/fixtures/stats/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap().leak()
}

fn fixture(name: &str) -> Sample<'static> {
    Sample::decode(fixture_text(name).as_bytes()).unwrap()
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
    check_cli_figures(&cases, Platform::Linux);
}

/// Each case's fields as `docker stats` computes them from the same sample.
fn check_cli_figures(cases: &[Case], platform: Platform) {
    for case in cases {
        let stats = fixture(case.fixture);
        let fields = compute_fields(&stats, platform, None);
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
fn recorded_docker_26_cgroup_v2_samples_give_the_cli_figures() {
    let cases = [
        Case {
            fixture: "docker26_v2_idle.json",
            cpu_percent: Some(0.0),
            mem_used: 344_064,
            mem_total: 3_053_305_856,
            net: (876, 0),
        },
        Case {
            fixture: "docker26_v2_cpu_limited.json",
            cpu_percent: Some(51.28037558685447),
            mem_used: 352_256,
            mem_total: 3_053_305_856,
            net: (656, 0),
        },
        // -m 64m with 30 MB written to /tmp: v2's inactive_file is not "used".
        Case {
            fixture: "docker26_v2_mem_limited.json",
            cpu_percent: Some(0.0),
            mem_used: 1_269_760,
            mem_total: 67_108_864,
            net: (656, 0),
        },
        // 60 MB written and read back under -m 256m.
        Case {
            fixture: "docker26_v2_page_cache.json",
            cpu_percent: Some(0.0),
            mem_used: 2_203_648,
            mem_total: 268_435_456,
            net: (656, 0),
        },
    ];
    check_cli_figures(&cases, Platform::Linux);
    let fields = compute_fields(
        &fixture("docker26_v2_cpu_limited.json"),
        Platform::Linux,
        None,
    );
    assert_eq!(
        int(&fields, "pids_limit"),
        Some(3443),
        "the systemd scope's"
    );
    assert!(int(&fields, "cpu_throttled_periods").unwrap() > 0);
    assert_eq!(
        read_time_ns(&fixture("docker26_v2_just_stopped.json")),
        None,
        "the zero sample after a stop"
    );
}

/// Podman's CPU % is its container time over the samples' wall-clock
/// interval; what it sends wrong is left out.
#[test]
fn recorded_podman_5_samples_give_what_can_be_computed_and_omit_the_rest() {
    let cases = [
        Case {
            fixture: "podman5_v2_idle.json",
            cpu_percent: Some(0.0),
            mem_used: 49_152,
            mem_total: 3_053_305_856,
            net: (4000, 698),
        },
        // 14375694000 - 11858969000 ns of CPU over 5.032379718 s.
        Case {
            fixture: "podman5_v2_cpu_limited.json",
            cpu_percent: Some(2_516_725_000.0 / 5_032_379_718.0 * 100.0),
            mem_used: 61_440,
            mem_total: 3_053_305_856,
            net: (3044, 698),
        },
        Case {
            fixture: "podman5_v2_mem_limited.json",
            cpu_percent: Some(0.0),
            mem_used: 53_248,
            mem_total: 67_108_864,
            net: (2528, 768),
        },
    ];
    check_cli_figures(&cases, Platform::Podman);
    let fields = compute_fields(
        &fixture("podman5_v2_cpu_limited.json"),
        Platform::Podman,
        None,
    );
    for wrong in [
        "cpu_system_usage",
        "cpu_kernel_usage",
        "cpu_user_usage",
        "cpu_throttling_periods",
        "cpu_throttled_periods",
        "cpu_throttled_time",
    ] {
        assert_eq!(field(&fields, wrong), None, "{wrong}");
    }
    assert_eq!(int(&fields, "cpu_total_usage"), Some(14_375_694_000));
    // Through Docker's formula the same sample reads 192%.
    let docker = compute_fields(
        &fixture("podman5_v2_cpu_limited.json"),
        Platform::Linux,
        None,
    );
    assert!(float(&docker, "cpu_percent").unwrap() > 190.0);
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
    // Podman ends such a stream with an error object in place of a sample:
    // it decodes to a sample without a time, which is counted as empty.
    for name in [
        "v1_just_stopped.json",
        "v1_stopped_empty.json",
        "docker26_v2_just_stopped.json",
        "podman5_v2_stopped_error.json",
        "docker28_v2_just_stopped.json",
        "podman58_v2_stopped_error.json",
    ] {
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
    use docker_stats_service::sources::stream::fields::sum_read_write;
    let entry = |op: &'static str, value| BlkioEntry {
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
                docker_stats_service::schema::fields::is_known(&field),
                "{field} from {name} is not accepted by STATS_FIELDS"
            );
        }
    }
}

/// An interface's eight counters, from the lean or bollard's type alike
/// (the same field names on two types).
macro_rules! net_counters {
    ($s:expr) => {
        [
            $s.rx_bytes,
            $s.tx_bytes,
            $s.rx_packets,
            $s.tx_packets,
            $s.rx_errors,
            $s.tx_errors,
            $s.rx_dropped,
            $s.tx_dropped,
        ]
    };
}

/// The service decodes only the numbers it uses (`sources::stream::sample`); bollard
/// decodes the whole payload. On every recorded and hand-made payload the
/// two must read the same numbers, or a misspelt name would silently turn a
/// field into "absent".
#[test]
fn the_lean_decoder_reads_what_bollard_reads() {
    for name in FIXTURES {
        let full: ContainerStatsResponse = serde_json::from_str(fixture_text(name)).unwrap();
        let lean = fixture(name);
        assert_eq!(lean.read.as_deref(), full.read.as_deref(), "{name} read");
        assert_eq!(lean.preread.as_deref(), full.preread.as_deref(), "{name}");
        assert_eq!(lean.num_procs, full.num_procs, "{name} num_procs");
        for (lean_cpu, full_cpu) in [
            (&lean.cpu_stats, &full.cpu_stats),
            (&lean.precpu_stats, &full.precpu_stats),
        ] {
            let (l, f) = (lean_cpu.as_ref(), full_cpu.as_ref());
            assert_eq!(l.is_some(), f.is_some(), "{name} cpu stats");
            let (lu, fu) = (
                l.and_then(|c| c.cpu_usage.as_ref()),
                f.and_then(|c| c.cpu_usage.as_ref()),
            );
            assert_eq!(
                lu.and_then(|u| u.total_usage),
                fu.and_then(|u| u.total_usage)
            );
            assert_eq!(
                lu.and_then(|u| u.percpu_usage.clone()),
                fu.and_then(|u| u.percpu_usage.clone())
            );
            assert_eq!(
                lu.and_then(|u| u.usage_in_kernelmode),
                fu.and_then(|u| u.usage_in_kernelmode)
            );
            assert_eq!(
                lu.and_then(|u| u.usage_in_usermode),
                fu.and_then(|u| u.usage_in_usermode)
            );
            assert_eq!(
                l.and_then(|c| c.system_cpu_usage),
                f.and_then(|c| c.system_cpu_usage)
            );
            assert_eq!(l.and_then(|c| c.online_cpus), f.and_then(|c| c.online_cpus));
            let (lt, ft) = (
                l.and_then(|c| c.throttling_data.as_ref()),
                f.and_then(|c| c.throttling_data.as_ref()),
            );
            assert_eq!(
                lt.map(|t| (t.periods, t.throttled_periods, t.throttled_time)),
                ft.map(|t| (t.periods, t.throttled_periods, t.throttled_time)),
                "{name} throttling"
            );
        }
        let (lm, fm) = (lean.memory_stats.as_ref(), full.memory_stats.as_ref());
        assert_eq!(
            lm.map(|m| (m.usage, m.max_usage, m.failcnt, m.limit)),
            fm.map(|m| (m.usage, m.max_usage, m.failcnt, m.limit)),
            "{name} memory"
        );
        assert_eq!(
            lm.map(|m| (m.commitbytes, m.commitpeakbytes, m.privateworkingset)),
            fm.map(|m| (m.commitbytes, m.commitpeakbytes, m.privateworkingset)),
            "{name} windows memory"
        );
        let (ls, fs) = (
            lm.and_then(|m| m.stats.as_ref()),
            fm.and_then(|m| m.stats.as_ref()),
        );
        if let Some(ls) = ls {
            let lean_counters = [
                ("total_inactive_file", ls.total_inactive_file),
                ("inactive_file", ls.inactive_file),
                ("total_active_file", ls.total_active_file),
                ("active_file", ls.active_file),
                ("total_cache", ls.total_cache),
                ("cache", ls.cache),
                ("file", ls.file),
                ("total_rss", ls.total_rss),
                ("rss", ls.rss),
                ("anon", ls.anon),
                ("total_mapped_file", ls.total_mapped_file),
                ("mapped_file", ls.mapped_file),
                ("file_mapped", ls.file_mapped),
                ("total_pgfault", ls.total_pgfault),
                ("pgfault", ls.pgfault),
                ("total_pgmajfault", ls.total_pgmajfault),
                ("pgmajfault", ls.pgmajfault),
            ];
            for (key, value) in lean_counters {
                let expected = fs.and_then(|s| s.get(key)).copied();
                assert_eq!(value, expected, "{name} memory_stats.stats.{key}");
            }
        } else {
            assert!(fs.is_none(), "{name} memory_stats.stats");
        }
        let lean_nets: Vec<_> = lean
            .networks
            .iter()
            .flatten()
            .map(|(n, s)| (n.to_string(), net_counters!(s)))
            .collect();
        let mut full_nets: Vec<_> = full
            .networks
            .iter()
            .flatten()
            .map(|(n, s)| (n.clone(), net_counters!(s)))
            .collect();
        full_nets.sort();
        assert_eq!(lean_nets, full_nets, "{name} networks");
        let (lb, fb) = (lean.blkio_stats.as_ref(), full.blkio_stats.as_ref());
        assert_eq!(
            lean_ops(lb.and_then(|b| b.io_service_bytes_recursive.as_ref())),
            full_ops(fb.and_then(|b| b.io_service_bytes_recursive.as_ref())),
            "{name} io_service_bytes_recursive"
        );
        assert_eq!(
            lean_ops(lb.and_then(|b| b.io_serviced_recursive.as_ref())),
            full_ops(fb.and_then(|b| b.io_serviced_recursive.as_ref())),
            "{name} io_serviced_recursive"
        );
        assert_eq!(
            lean.pids_stats.as_ref().map(|p| (p.current, p.limit)),
            full.pids_stats.as_ref().map(|p| (p.current, p.limit)),
            "{name} pids"
        );
        assert_eq!(
            lean.storage_stats
                .as_ref()
                .map(|s| (s.read_size_bytes, s.write_size_bytes)),
            full.storage_stats
                .as_ref()
                .map(|s| (s.read_size_bytes, s.write_size_bytes)),
            "{name} storage"
        );
    }
}

type Ops = Option<Vec<(Option<String>, Option<u64>)>>;

fn lean_ops(entries: Option<&Vec<BlkioEntry>>) -> Ops {
    let ops = entries?.iter();
    Some(
        ops.map(|e| (e.op.as_deref().map(str::to_string), e.value))
            .collect(),
    )
}

fn full_ops(entries: Option<&Vec<bollard::models::ContainerBlkioStatEntry>>) -> Ops {
    Some(entries?.iter().map(|e| (e.op.clone(), e.value)).collect())
}

#[test]
fn frames_that_are_not_stats_samples_fail_to_decode() {
    for garbage in [
        &b"{\"read\": 12"[..],
        b"not json",
        b"{\"read\": \"x\"",
        b"[1, 2]",
    ] {
        assert!(
            Sample::decode(garbage).is_err(),
            "{}",
            String::from_utf8_lossy(garbage)
        );
    }
}
