//! The per-sample hot path on recorded payloads: decode one stats frame,
//! compute the fields, encode the line-protocol point; for the essential
//! field set and for every field, on cgroup v1 (recorded here) and cgroup v2
//! (hand-made) payloads.

use bollard::models::ContainerStatsResponse;
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use docker_stats_service::engine::client::Platform;
use docker_stats_service::schema::fields::FieldSelection;
use docker_stats_service::schema::line_protocol::SeriesKey;
use docker_stats_service::schema::point::encode_point;
use docker_stats_service::sources::stream::fields::{compute_fields, read_time_ns};
use docker_stats_service::sources::stream::sample::Sample;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/stats/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// What a StatsActor does with one frame.
fn one_sample(frame: &[u8], series: &SeriesKey, fields: &FieldSelection) -> Option<String> {
    let stats = Sample::decode(frame).ok()?;
    let timestamp = read_time_ns(&stats)?;
    let computed = compute_fields(&stats, Platform::Linux, Some(0.5));
    encode_point(series, &computed, fields, timestamp)
}

/// The series of a typical container's stream points.
fn stream_series() -> SeriesKey {
    SeriesKey::new(
        "docker_stats",
        [
            (
                "container_id",
                "e677a0ddef20ffd39650ece3e1c09686a3a0a4de66a6484267beaef5ea81c32b",
            ),
            ("container_name", "load-test-worker-1"),
            ("host", "vm"),
            ("image", "dss-test/busybox:latest"),
        ],
    )
}

fn bench(c: &mut Criterion) {
    let series = stream_series();
    let all = FieldSelection::All;
    let essential = FieldSelection::parse("ESSENTIAL").unwrap();
    for (label, file) in [
        ("cgroup_v1", "v1_cpu_limited.json"),
        ("cgroup_v2", "handmade_cgroup_v2.json"),
    ] {
        let frame = fixture(file);
        assert!(one_sample(&frame, &series, &all).is_some());
        c.bench_function(&format!("sample/{label}/all_fields"), |b| {
            b.iter(|| one_sample(black_box(&frame), &series, &all))
        });
        c.bench_function(&format!("sample/{label}/essential"), |b| {
            b.iter(|| one_sample(black_box(&frame), &series, &essential))
        });
        c.bench_function(&format!("decode/{label}"), |b| {
            b.iter(|| Sample::decode(black_box(&frame)).unwrap())
        });
        // What decoding cost before the lean decoder, for comparison.
        c.bench_function(&format!("decode_full_bollard/{label}"), |b| {
            b.iter(|| serde_json::from_slice::<ContainerStatsResponse>(black_box(&frame)).unwrap())
        });
        let stats = Sample::decode(&frame).unwrap();
        c.bench_function(&format!("compute/{label}"), |b| {
            b.iter(|| compute_fields(black_box(&stats), Platform::Linux, Some(0.5)))
        });
    }
}

/// The cgroup source's work per reading once the files' text is in hand:
/// parse them, compute the fields, encode the point (the file reads
/// themselves are system calls, measured end to end by scripts/bench).
fn bench_cgroup(c: &mut Criterion) {
    use docker_stats_service::sources::cgroup::fields::{compute_fields, Context};
    use docker_stats_service::sources::cgroup::files::{
        read_all, CgroupReading, CounterFile, V1_FILES, V2_FILES,
    };
    use std::time::Duration;

    let dir = format!("{}/tests/fixtures/cgroup", env!("CARGO_MANIFEST_DIR"));
    let text =
        |version: &str, file: &str| std::fs::read_to_string(format!("{dir}/{version}/{file}")).ok();
    let series = SeriesKey::new(
        "docker_stats",
        [("container_id", "e677a0ddef20"), ("source", "cgroup")],
    );
    let all = FieldSelection::All;
    let context = Context {
        cpu_limit_cores: Some(0.5),
        host_memory: Some(8 << 30),
        online_cpus: 2,
    };
    // The fixture directories hold `net/dev` as `net_dev`.
    let file_name = |file: &CounterFile| file.name.replace('/', "_");
    let v1 = || read_all(V1_FILES, |file| text("v1", &file_name(file))).unwrap();
    let v2 = || read_all(V2_FILES, |file| text("v2", &file_name(file))).unwrap();
    for (label, reading) in [("cgroup_v1", v1()), ("cgroup_v2", v2())] {
        let previous = reading.clone();
        c.bench_function(&format!("cgroup_reading/{label}/compute_and_encode"), |b| {
            b.iter(|| {
                let fields = compute_fields(
                    black_box(&reading),
                    Some((&previous, Duration::from_millis(100))),
                    context,
                );
                encode_point(&series, &fields, &all, 1_795_500_102_230_297_079)
            })
        });
    }
    // Parsing, with the texts already read (as the sampler hands them over).
    let v1_texts: Vec<(&CounterFile, String)> = V1_FILES
        .iter()
        .map(|file| (file, text("v1", &file_name(file)).unwrap()))
        .collect();
    c.bench_function("cgroup_reading/cgroup_v1/parse", |b| {
        b.iter(|| {
            let mut reading = CgroupReading::default();
            for (file, text) in &v1_texts {
                file.apply(Some(black_box(text)), &mut reading).unwrap();
            }
            reading
        })
    });
}

/// What one new point costs the writer while a retry is pending: queue it
/// (dropping the oldest, as the budget is full) and find the earliest
/// waiting point for the next deadline. A 64 MiB buffer of ESSENTIAL points
/// against one that holds a single point: the cost must not grow with the
/// buffer, since an outage is exactly when the buffer is full.
fn bench_buffer(c: &mut Criterion) {
    use docker_stats_service::writer::buffer::Buffer;
    use std::time::Instant;

    let series = stream_series();
    let essential = FieldSelection::parse("ESSENTIAL").unwrap();
    let line = one_sample(&fixture("v1_cpu_limited.json"), &series, &essential).unwrap();
    for (label, budget) in [
        ("one_point", 1),
        ("full_64KiB", 64 << 10),
        ("full_64MiB", 64 << 20),
    ] {
        let mut buffer = Buffer::new(budget);
        let start = Instant::now();
        while buffer.books().dropped == 0 {
            buffer.push(line.clone(), start);
        }
        c.bench_function(&format!("writer_point_during_retry/{label}"), |b| {
            b.iter(|| {
                buffer.push(black_box(line.clone()), Instant::now());
                black_box(buffer.oldest_waiting())
            })
        });
    }
}

/// One point's way through each store, batch by batch as the writer
/// drives it: push, read into a request body, acknowledge. The disk log's
/// extra work per point (record framing, the write to its file, reading it
/// back and checking it) is the difference. Its once-an-interval sync costs
/// per second, not per point, and is not in here.
fn bench_store(c: &mut Criterion) {
    use docker_stats_service::writer::buffer::Buffer;
    use docker_stats_service::writer::disk_log::DiskLog;
    use docker_stats_service::writer::store::Store;
    use std::time::Instant;

    const BATCH: usize = 100;
    let series = stream_series();
    let line = one_sample(
        &fixture("v1_cpu_limited.json"),
        &series,
        &FieldSelection::All,
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("dss-bench-store-{}", std::process::id()));
    let (log, _) = DiskLog::open(&dir, 1 << 30, std::time::Duration::from_secs(1), BATCH).unwrap();
    let mut stores = [
        ("memory", Store::Memory(Buffer::new(64 << 20))),
        ("disk", Store::Disk(Box::new(log))),
    ];
    for (label, store) in &mut stores {
        c.bench_function(&format!("store_batch_of_{BATCH}/{label}"), |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    store.push(black_box(line.clone()), Instant::now());
                }
                black_box(store.start_batch(BATCH));
                store.finish_batch(0);
            })
        });
    }
    drop(stores);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench, bench_cgroup, bench_buffer, bench_store);
criterion_main!(benches);
