//! Cgroup discovery against this machine's real engine: the directories
//! found for a running container are the ones its processes live in.

mod support;

use std::path::Path;

use docker_stats_service::cgroup::paths::{CgroupDriver, CgroupLayout, ContainerCgroup};
use support::containers::{docker, TestContainers};

#[test]
fn finds_the_cgroup_that_holds_a_running_containers_init_process() {
    let containers = TestContainers::new("cgroup-paths");
    let id = containers.idle("idle");
    let driver = docker(&["info", "--format", "{{.CgroupDriver}}"]);
    let driver = CgroupDriver::from_engine(driver.trim()).expect("a known cgroup driver");
    let parent = docker(&["inspect", "--format", "{{.HostConfig.CgroupParent}}", &id]);
    let pid = docker(&["inspect", "--format", "{{.State.Pid}}", &id]);

    let layout = CgroupLayout::detect(Path::new("/sys/fs/cgroup"), driver);
    let found = layout
        .locate(&id, parent.trim())
        .expect("the container's cgroup");
    let dirs: Vec<_> = match found {
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
