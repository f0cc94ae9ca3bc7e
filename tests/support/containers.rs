//! Containers and networks a test owns, on the machine's real Docker engine
//! (or, in the platform lane's VM, Podman). All carry the `dss-test-` name
//! prefix and the `dss.test` label, and are removed when the owning value is
//! dropped (also when the test panics).

use std::process::Command;
use std::sync::{Mutex, Once};

pub const TEST_IMAGE: &str = "dss-test/busybox:latest";

static IMAGE: Once = Once::new();

/// Makes sure the test image exists, building it locally if needed.
pub fn ensure_test_image() {
    IMAGE.call_once(|| {
        let present = Command::new("docker")
            .args(["image", "inspect", TEST_IMAGE])
            .output()
            .expect("running the docker CLI: is Docker installed?")
            .status
            .success();
        if !present {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-test-image");
            let status = Command::new(script)
                .status()
                .expect("running scripts/build-test-image");
            assert!(status.success(), "scripts/build-test-image failed");
        }
    });
}

/// Runs the docker CLI and returns its trimmed stdout; panics with its
/// stderr on failure.
pub fn docker(args: &[&str]) -> String {
    run_cli("docker", args)
}

/// Runs a container CLI (`docker`, `podman`) and returns its trimmed
/// stdout; panics with its stderr on failure.
pub fn run_cli(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running the {program} CLI: {e}"));
    assert!(
        output.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The memory usage `<cli> stats` shows for a container, in bytes: Podman
/// prints SI units ("10.1MB"), Docker binary ones ("20.2MiB").
pub fn stats_mem_usage(cli: &str, name: &str) -> f64 {
    let shown = run_cli(
        cli,
        &["stats", "--no-stream", "--format", "{{.MemUsage}}", name],
    );
    let used = shown.split(" / ").next().unwrap().trim();
    let split = used.find(|c: char| c.is_ascii_alphabetic()).unwrap();
    let (number, unit) = used.split_at(split);
    let scale = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other:?} in {shown:?}"),
    };
    number.parse::<f64>().unwrap() * scale
}

pub struct TestContainers {
    /// The CLI that runs them: `docker` or `podman`.
    cli: &'static str,
    prefix: String,
    containers: Mutex<Vec<String>>,
    networks: Mutex<Vec<String>>,
}

impl TestContainers {
    pub fn new(test: &str) -> Self {
        ensure_test_image();
        Self::with_cli("docker", test)
    }

    /// Containers of another CLI (`podman`, or a rootless engine's wrapper
    /// of `support::rootless`), whose image is already there.
    pub fn with_cli(cli: &'static str, test: &str) -> Self {
        TestContainers {
            cli,
            prefix: format!("dss-test-{}-{}", test, std::process::id()),
            containers: Mutex::new(Vec::new()),
            networks: Mutex::new(Vec::new()),
        }
    }

    pub fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }

    /// `<cli> run -d` with the given options and command; returns the id.
    pub fn run(&self, suffix: &str, options: &[&str], command: &[&str]) -> String {
        let name = self.name(suffix);
        let mut args = vec!["run", "-d", "--name", &name, "--label", "dss.test=1"];
        args.extend_from_slice(options);
        args.push(TEST_IMAGE);
        args.extend_from_slice(command);
        let id = run_cli(self.cli, &args);
        self.containers.lock().unwrap().push(name);
        id
    }

    /// An idle container that sleeps.
    pub fn idle(&self, suffix: &str) -> String {
        self.run(suffix, &[], &["sleep", "3600"])
    }

    /// Three busy threads held to half a core: they wait for a CPU most of
    /// the time, and the container is throttled.
    pub fn cpu_starved(&self, suffix: &str) -> String {
        self.run(
            suffix,
            &["--cpus", "0.5"],
            &[
                "sh",
                "-c",
                "for i in 1 2 3; do (while :; do :; done) & done; wait",
            ],
        )
    }

    /// A container under a 32 MiB limit whose worker the OOM killer kills
    /// on [`kill_worker`](Self::kill_worker), while its shell lives on.
    pub fn oom_worker(&self, suffix: &str) -> String {
        self.run(
            suffix,
            &["-m", "32m"],
            &[
                "sh",
                "-c",
                "while [ ! -e /go ]; do sleep 0.1; done; tail /dev/zero; sleep 3600",
            ],
        )
    }

    /// Starts the worker of an [`oom_worker`](Self::oom_worker) container.
    pub fn kill_worker(&self, id: &str) {
        docker(&["exec", id, "sh", "-c", "touch /go"]);
    }

    pub fn network(&self, suffix: &str) -> String {
        let name = self.name(suffix);
        docker(&["network", "create", "--label", "dss.test=1", &name]);
        self.networks.lock().unwrap().push(name.clone());
        name
    }

    /// Starts `count` idle containers, several at a time; returns their names.
    pub fn run_many(&self, prefix: &str, count: usize) -> Vec<String> {
        let names: Vec<String> = (0..count)
            .map(|i| self.name(&format!("{prefix}{i}")))
            .collect();
        self.containers
            .lock()
            .unwrap()
            .extend(names.iter().cloned());
        let script = format!(
            "xargs -P 8 -I NAME docker run -d --name NAME --label dss.test=1 {TEST_IMAGE} sleep 3600 >/dev/null"
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("starting containers");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(names.join("\n").as_bytes())
            .unwrap();
        assert!(
            child.wait().unwrap().success(),
            "starting {count} containers failed"
        );
        names
    }

    /// Removes the named containers, several at a time.
    pub fn remove_many(&self, names: &[String]) {
        for chunk in names.chunks(50) {
            let mut args = vec!["rm", "-f"];
            args.extend(chunk.iter().map(String::as_str));
            docker(&args);
        }
    }

    pub fn remove(&self, suffix: &str) {
        docker(&["rm", "-f", &self.name(suffix)]);
    }
}

impl Drop for TestContainers {
    fn drop(&mut self) {
        let containers = self
            .containers
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default();
        if !containers.is_empty() {
            // Podman would wait 10 s per container for a graceful stop.
            let mut args = if self.cli.ends_with("podman") {
                vec!["rm", "-f", "-t", "0"]
            } else {
                vec!["rm", "-f"]
            };
            args.extend(containers.iter().map(String::as_str));
            let _ = Command::new(self.cli).args(&args).output();
        }
        for network in self.networks.lock().map(|n| n.clone()).unwrap_or_default() {
            let _ = Command::new("docker")
                .args(["network", "rm", &network])
                .output();
        }
    }
}
