//! One container's cgroup and network counter files, opened once and read
//! again at every tick.
//!
//! cgroup and proc files generate their text when read from offset 0, so an
//! open file is read again with one `pread` instead of open, read and close:
//! a third of the system calls, and no path lookups, at ten readings a
//! second per container.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::files::{read_v1, read_v2, CgroupReading, ReadError};
use super::paths::ContainerCgroup;

/// The files `files::read_v1` asks for, by controller.
const V1_FILES: &[(&str, &str)] = &[
    ("cpuacct", "cpuacct.usage"),
    ("cpuacct", "cpuacct.stat"),
    ("cpu", "cpu.stat"),
    ("cpu", "cpu.cfs_quota_us"),
    ("cpu", "cpu.cfs_period_us"),
    ("memory", "memory.usage_in_bytes"),
    ("memory", "memory.limit_in_bytes"),
    ("memory", "memory.stat"),
    ("blkio", "blkio.throttle.io_service_bytes"),
    ("blkio", "blkio.throttle.io_serviced"),
    ("pids", "pids.current"),
    ("pids", "pids.max"),
];

/// The files `files::read_v2` asks for.
const V2_FILES: &[&str] = &[
    "cpu.stat",
    "cpu.max",
    "memory.current",
    "memory.max",
    "memory.stat",
    "io.stat",
    "pids.current",
    "pids.max",
];

struct OpenFile {
    controller: &'static str,
    name: &'static str,
    /// `None` for a file this kernel or configuration does not have; the
    /// parsers decide which files they cannot do without.
    file: Option<File>,
}

pub struct CgroupSampler {
    unified: bool,
    files: Vec<OpenFile>,
    net_dev: File,
}

/// Why a container's counters cannot be sampled from its cgroup.
#[derive(Debug)]
pub enum OpenError {
    /// The network namespace's counters cannot be opened.
    NetDev(PathBuf, std::io::Error),
    /// A first reading failed: a file is missing, unreadable or unparsable.
    Read(ReadError, PathBuf),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::NetDev(path, error) => {
                write!(f, "cannot open {}: {error}", path.display())
            }
            OpenError::Read(error, dir) => write!(f, "{error} in {}", dir.display()),
        }
    }
}

impl CgroupSampler {
    /// Opens the files of `cgroup` and `<proc_root>/<pid>/net/dev`, and
    /// takes one reading to prove they can be read and parsed.
    pub fn open(cgroup: &ContainerCgroup, proc_root: &Path, pid: u32) -> Result<Self, OpenError> {
        let net_path = proc_root.join(pid.to_string()).join("net/dev");
        let net_dev = File::open(&net_path).map_err(|e| OpenError::NetDev(net_path, e))?;
        let open = |dir: &Path, controller, name| OpenFile {
            controller,
            name,
            file: File::open(dir.join(name)).ok(),
        };
        let (unified, files, shown_dir) = match cgroup {
            ContainerCgroup::Unified(dir) => {
                let files = V2_FILES.iter().map(|name| open(dir, "", name)).collect();
                (true, files, dir.clone())
            }
            ContainerCgroup::PerController(dirs) => {
                let dir_of = |controller: &str| {
                    dirs.iter()
                        .find(|(c, _)| *c == controller)
                        .map(|(_, d)| d.as_path())
                };
                let files = V1_FILES
                    .iter()
                    .filter_map(|(controller, name)| {
                        Some(open(dir_of(controller)?, controller, name))
                    })
                    .collect();
                let memory = dir_of("memory").unwrap_or(Path::new("")).to_path_buf();
                (false, files, memory)
            }
        };
        let mut sampler = CgroupSampler {
            unified,
            files,
            net_dev,
        };
        sampler
            .read()
            .map_err(|error| OpenError::Read(error, shown_dir))?;
        Ok(sampler)
    }

    /// Reads every counter now.
    pub fn read(&mut self) -> Result<CgroupReading, ReadError> {
        let net_dev = read_text(&self.net_dev).ok_or(ReadError { file: "net/dev" })?;
        let find = |controller: &str, name: &str| {
            let open = self
                .files
                .iter()
                .find(|f| f.name == name && (self.unified || f.controller == controller))?;
            read_text(open.file.as_ref()?)
        };
        if self.unified {
            read_v2(|name| find("", name), &net_dev)
        } else {
            read_v1(find, &net_dev)
        }
    }
}

/// The whole text of a generated file, read from its start.
fn read_text(file: &File) -> Option<String> {
    let mut text = Vec::with_capacity(4096);
    loop {
        let start = text.len();
        text.resize(start + 4096, 0);
        let read = file.read_at(&mut text[start..], start as u64).ok()?;
        text.truncate(start + read);
        if read == 0 || text.len() < start + 4096 {
            break;
        }
    }
    String::from_utf8(text).ok()
}
