//! What the cgroup source's reads cost on their own: the service's sampler
//! (`sources::cgroup::sampler`, the files' system calls and their parsing) reading
//! live containers on a steady clock, with no actors, no fields, no writer.
//! `scripts/bench` runs it beside the whole service to show how much of a
//! reading is the kernel generating the files' text.
//!
//!     cargo run --release --example cgroup_read_cost -- \
//!         --driver cgroupfs --interval-ms 100 --seconds 10 --fields ESSENTIAL ID:PID...
//!
//! Prints one line: `readings=<n> cpu_ns=<ns> us_per_reading=<µs>`. CPU is
//! this thread's on-CPU time (`/proc/thread-self/schedstat`) over the run.

use std::path::Path;
use std::time::{Duration, Instant};

use docker_stats_service::schema::fields::FieldSelection;
use docker_stats_service::sources::cgroup::paths::{CgroupDriver, CgroupLayout};
use docker_stats_service::sources::cgroup::sampler::CgroupSampler;

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut driver, mut interval_ms, mut seconds) = ("cgroupfs".to_string(), 100, 10);
    let mut fields = FieldSelection::All;
    let mut containers = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--driver" => driver = value(),
            "--interval-ms" => {
                interval_ms = value().parse().unwrap_or_else(|_| usage("--interval-ms"))
            }
            "--seconds" => seconds = value().parse().unwrap_or_else(|_| usage("--seconds")),
            "--fields" => fields = FieldSelection::parse(&value()).unwrap_or_else(|e| usage(&e)),
            container => containers.push(container.to_string()),
        }
    }
    let driver = CgroupDriver::from_engine(&driver).unwrap_or_else(|| usage("--driver"));
    let layout = CgroupLayout::detect(Path::new("/sys/fs/cgroup"), driver);
    let mut samplers: Vec<CgroupSampler> = containers
        .iter()
        .map(|container| {
            let (id, pid) = container.split_once(':').unwrap_or_else(|| usage("ID:PID"));
            let pid = pid.parse().unwrap_or_else(|_| usage("ID:PID"));
            let cgroup = layout
                .locate(id, "")
                .unwrap_or_else(|e| usage(&e.to_string()));
            CgroupSampler::open(&cgroup, Path::new("/proc"), pid, &fields)
                .unwrap_or_else(|e| usage(&e.to_string()))
        })
        .collect();

    let interval = Duration::from_millis(interval_ms);
    let ticks = seconds * 1000 / interval_ms;
    let cpu_before = thread_cpu_ns();
    let start = Instant::now();
    let mut readings = 0u64;
    for tick in 1..=ticks {
        let now = Instant::now();
        for sampler in &mut samplers {
            if sampler.read(now).is_ok() {
                readings += 1;
            }
        }
        let due = start + interval * tick as u32;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let cpu_ns = thread_cpu_ns() - cpu_before;
    println!(
        "readings={readings} cpu_ns={cpu_ns} us_per_reading={:.1}",
        cpu_ns as f64 / 1000.0 / readings.max(1) as f64
    );
}

fn thread_cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    text.split_whitespace()
        .next()
        .and_then(|ns| ns.parse().ok())
        .expect("schedstat's first column")
}

fn usage(problem: &str) -> ! {
    eprintln!("cgroup_read_cost: {problem}\nusage: cgroup_read_cost [--driver cgroupfs|systemd] [--interval-ms 100] [--seconds 10] [--fields SPEC] ID:PID...");
    std::process::exit(2)
}
