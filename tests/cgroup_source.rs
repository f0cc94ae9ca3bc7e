//! The cgroup source's parts against this machine's real engine: the
//! directories found for a running container are the ones its processes
//! live in, and the counters read from them agree with the engine's sample.

mod support;

use std::path::Path;

use bollard::query_parameters::StatsOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;

use docker_stats_service::sources::cgroup::cpu::system_cpu;
use docker_stats_service::sources::cgroup::files::{read_all, Place, V1_FILES, V2_FILES};
use docker_stats_service::sources::cgroup::paths::{CgroupDriver, CgroupLayout, ContainerCgroup};
use support::containers::{docker, TestContainers};

/// The container's cgroup as the service will find it: the engine's driver,
/// the host's mount, the container's own CgroupParent.
fn locate(id: &str) -> ContainerCgroup {
    let driver = docker(&["info", "--format", "{{.CgroupDriver}}"]);
    let driver = CgroupDriver::from_engine(driver.trim()).expect("a known cgroup driver");
    let parent = docker(&["inspect", "--format", "{{.HostConfig.CgroupParent}}", id]);
    CgroupLayout::detect(Path::new("/sys/fs/cgroup"), driver)
        .locate(id, parent.trim())
        .expect("the container's cgroup")
}

#[test]
fn finds_the_cgroup_that_holds_a_running_containers_init_process() {
    let containers = TestContainers::new("cgroup-paths");
    let id = containers.idle("idle");
    let pid = docker(&["inspect", "--format", "{{.State.Pid}}", &id]);

    let dirs: Vec<_> = match locate(&id) {
        ContainerCgroup::Unified(dir) => vec![dir],
        ContainerCgroup::PerController(dirs) => dirs.into_iter().map(|(_, d)| d).collect(),
    };
    for dir in dirs {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|p| p == pid.trim()),
            "pid {} not in {}/cgroup.procs: {procs:?}",
            pid.trim(),
            dir.display()
        );
    }
}

#[tokio::test]
async fn cgroup_counters_agree_with_the_engines_sample() {
    let containers = TestContainers::new("cgroup-read");
    let id = containers.run(
        "busy",
        &["--cpus", "0.5", "--memory", "64m"],
        &["sh", "-c", "while :; do :; done"],
    );
    let pid = docker(&["inspect", "--format", "{{.State.Pid}}", &id]);
    // The files the service reads on this host: one directory per
    // controller on cgroup v1, one directory for all on v2.
    let cgroup = locate(&id);
    let files = match cgroup {
        ContainerCgroup::PerController(_) => V1_FILES,
        ContainerCgroup::Unified(_) => V2_FILES,
    };
    let path_of = |place: Place, name: &str| match (&cgroup, place) {
        (_, Place::Process) => Some(Path::new("/proc").join(pid.trim()).join(name)),
        (ContainerCgroup::PerController(dirs), Place::Controller(controller)) => {
            Some(dirs.iter().find(|(c, _)| *c == controller)?.1.join(name))
        }
        (ContainerCgroup::Unified(dir), Place::Unified) => Some(dir.join(name)),
        (_, place) => panic!("{name} ({place:?}) does not belong to this layout"),
    };

    let read_ours = || {
        read_all(files, |file| {
            std::fs::read_to_string(path_of(file.place, file.name)?).ok()
        })
        .unwrap()
    };

    // A container that just started still grows its memory (the shell's
    // pages, the engine's set-up), so the engine's sample is bracketed by
    // two readings of ours: its usage lies between them.
    let before = read_ours();
    let engine = Docker::connect_with_local_defaults().unwrap();
    let options = StatsOptionsBuilder::new()
        .stream(false)
        .one_shot(true)
        .build();
    let sample = engine
        .stats(&id, Some(options))
        .next()
        .await
        .unwrap()
        .unwrap();
    let ours = read_ours();

    let system = system_cpu(&std::fs::read_to_string("/proc/stat").unwrap()).unwrap();
    let engine_cpu_stats = sample.cpu_stats.unwrap();
    let engine_system = engine_cpu_stats.system_cpu_usage.unwrap();
    assert_eq!(Some(system.online), engine_cpu_stats.online_cpus);
    // The host's CPU time, summed as the engine sums it, read just after.
    assert!(
        system.total_ns >= engine_system
            && system.total_ns - engine_system < 2_000_000_000 * u64::from(system.online),
        "system {} ns vs engine {engine_system} ns",
        system.total_ns
    );
    let engine_cpu = engine_cpu_stats.cpu_usage.unwrap().total_usage.unwrap();
    // Read after the engine's sample, by a busy container capped at half a
    // core: ahead, by well under a second of CPU.
    let cpu_total_ns = ours.cpu_total_ns.unwrap();
    assert!(
        cpu_total_ns >= engine_cpu && cpu_total_ns - engine_cpu < 1_000_000_000,
        "cgroup {cpu_total_ns} ns vs engine {engine_cpu} ns"
    );
    let memory = sample.memory_stats.unwrap();
    assert_eq!(ours.mem_limit, memory.limit);
    let engine_usage = memory.usage.unwrap() as f64;
    let (first, last) = (
        before.mem_usage.unwrap() as f64,
        ours.mem_usage.unwrap() as f64,
    );
    assert!(
        engine_usage >= first.min(last) * 0.98 && engine_usage <= first.max(last) * 1.02,
        "memory usage {first} then {last} vs engine {engine_usage} between them"
    );
    assert_eq!(ours.pids_current, sample.pids_stats.unwrap().current);
    let engine_rx: u64 = sample
        .networks
        .unwrap()
        .values()
        .map(|n| n.rx_bytes.unwrap())
        .sum();
    let rx = ours.net.unwrap().in_bytes;
    assert!(rx >= engine_rx, "{rx} vs {engine_rx}");
}
