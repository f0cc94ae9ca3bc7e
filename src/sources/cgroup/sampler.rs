//! One container's cgroup and network counter files, opened once and read
//! again at every tick: only the files the selected fields need, and the
//! limits among them once a second.
//!
//! cgroup and proc files generate their text when read from offset 0, so an
//! open file is read again with one `pread` instead of open, read and close:
//! a third of the system calls, and no path lookups, at ten readings a
//! second per container.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::files::{Cadence, CgroupReading, CounterFile, Place, ReadError, V1_FILES, V2_FILES};
use super::paths::ContainerCgroup;
use crate::schema::fields::FieldSelection;

/// How often a limit (`Cadence::Setting`) is read again.
pub const SETTINGS_EVERY: Duration = Duration::from_secs(1);

struct OpenFile {
    kind: &'static CounterFile,
    /// `None` for a file this kernel or configuration does not have; the
    /// file's `required` decides whether a reading can do without it.
    file: Option<File>,
    /// A setting's text as last read, parsed again between its reads.
    last_text: Option<String>,
}

pub struct CgroupSampler {
    files: Vec<OpenFile>,
    settings_read_at: Option<Instant>,
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

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::NetDev(_, error) => Some(error),
            OpenError::Read(error, _) => Some(error),
        }
    }
}

impl CgroupSampler {
    /// Opens the files of `cgroup` and `<proc_root>/<pid>/` that the
    /// `selected` fields need, and takes one reading to prove they can be
    /// read and parsed.
    pub fn open(
        cgroup: &ContainerCgroup,
        proc_root: &Path,
        pid: u32,
        selected: &FieldSelection,
    ) -> Result<Self, OpenError> {
        let process_dir = proc_root.join(pid.to_string());
        let (table, shown_dir) = match cgroup {
            ContainerCgroup::Unified(dir) => (V2_FILES, dir.clone()),
            ContainerCgroup::PerController(dirs) => {
                let memory = dirs.iter().find(|(c, _)| *c == "memory");
                let shown = memory.map(|(_, d)| d.clone()).unwrap_or_default();
                (V1_FILES, shown)
            }
        };
        let mut files = Vec::new();
        for kind in table.iter().filter(|f| f.is_needed(|n| selected.wants(n))) {
            let path = match (kind.place, cgroup) {
                (Place::Process, _) => Some(process_dir.join(kind.name)),
                (Place::Unified, ContainerCgroup::Unified(dir)) => Some(dir.join(kind.name)),
                (Place::Controller(wanted), ContainerCgroup::PerController(dirs)) => dirs
                    .iter()
                    .find(|(controller, _)| *controller == wanted)
                    .map(|(_, dir)| dir.join(kind.name)),
                _ => None,
            };
            let file = match path.map(|path| (open_as(kind, &path), path)) {
                Some((Ok(file), _)) => Some(file),
                Some((Err(error), path)) if kind.place == Place::Process => {
                    return Err(OpenError::NetDev(path, error));
                }
                _ => None,
            };
            files.push(OpenFile {
                kind,
                file,
                last_text: None,
            });
        }
        let mut sampler = CgroupSampler {
            files,
            settings_read_at: None,
        };
        sampler
            .read(Instant::now())
            .map_err(|error| OpenError::Read(error, shown_dir))?;
        Ok(sampler)
    }

    /// Reads the counters now (`now`: when, for the limits' cadence).
    pub fn read(&mut self, now: Instant) -> Result<CgroupReading, ReadError> {
        let read_settings = self
            .settings_read_at
            .is_none_or(|at| now.saturating_duration_since(at) >= SETTINGS_EVERY);
        if read_settings {
            self.settings_read_at = Some(now);
        }
        let mut reading = CgroupReading::default();
        BUFFER.with_borrow_mut(|buffer| {
            for open in &mut self.files {
                let is_setting = open.kind.cadence == Cadence::Setting;
                if is_setting && !read_settings {
                    open.kind.apply(open.last_text.as_deref(), &mut reading)?;
                    continue;
                }
                let text = open.file.as_ref().and_then(|file| read_text(file, buffer));
                if is_setting {
                    open.last_text = text.map(str::to_owned);
                }
                open.kind.apply(text, &mut reading)?;
                if open.kind.cadence == Cadence::EveryTickResetting {
                    if let Some(file) = &open.file {
                        // A failed reset leaves the next reading covering
                        // more than one interval, still a true peak.
                        let _ = reset_peak(file);
                    }
                }
            }
            Ok(reading)
        })
    }
}

thread_local! {
    /// One buffer for every container's reads: they happen one after
    /// another on the actor thread, and one buffer stays in the cache where
    /// one per container would not.
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; 4096]);
}

/// Opens a file the way its cadence needs: read-only, or, for a peak reset
/// after each reading, for reading and writing, with a first reset done so
/// that the first reading already covers only the time since.
fn open_as(kind: &CounterFile, path: &Path) -> std::io::Result<File> {
    if kind.cadence != Cadence::EveryTickResetting {
        return File::open(path);
    }
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .and_then(|file| reset_peak(&file).map(|()| file));
    if let Err(error) = &opened {
        static SAID: AtomicBool = AtomicBool::new(false);
        if !SAID.swap(true, Ordering::Relaxed) {
            log::info!(
                "the fields {} are not written: cannot reset {} for this reader ({error}); that needs Linux 6.12 or later and a cgroup mount the service may write",
                kind.feeds.join(", "),
                path.display()
            );
        }
    }
    opened
}

/// Resets a `memory.peak` opened for writing to the current usage, for
/// reads through this open file only (Linux 6.12+): other readers, the
/// engine among them, still see the peak since the cgroup was made.
fn reset_peak(file: &File) -> std::io::Result<()> {
    file.write_at(b"reset\n", 0).map(|_| ())
}

/// The largest text a counter file may have. The largest real ones (a
/// `memory.stat`, `net/dev` with many interfaces, per-CPU usage on a big
/// host) are a few KiB; past this the file is not one the service knows,
/// and reading it is refused rather than letting the shared buffer grow.
const MAX_TEXT_BYTES: usize = 1 << 20;

/// The whole text of a generated file, read from its start into `buffer`;
/// `None` when it cannot be read or is longer than `MAX_TEXT_BYTES`.
fn read_text<'b>(file: &File, buffer: &'b mut Vec<u8>) -> Option<&'b str> {
    loop {
        let read = file.read_at(buffer, 0).ok()?;
        if read < buffer.len() {
            return std::str::from_utf8(&buffer[..read]).ok();
        }
        if buffer.len() > MAX_TEXT_BYTES {
            return None;
        }
        // Filled: the text may go on. Read it again, whole, with more room.
        let larger = (buffer.len() * 2).min(MAX_TEXT_BYTES + 1);
        buffer.resize(larger, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v2 container directory and a `/proc/<pid>` beside it, in a fresh
    /// temporary directory.
    fn container(name: &str) -> (PathBuf, PathBuf) {
        let root = std::env::temp_dir().join(format!("dss-sampler-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let cgroup = root.join("cgroup");
        std::fs::create_dir_all(&cgroup).unwrap();
        std::fs::create_dir_all(root.join("proc/7/net")).unwrap();
        let files = [
            (
                "cpu.stat",
                "usage_usec 1000\nuser_usec 600\nsystem_usec 400\n",
            ),
            ("memory.current", "4096\n"),
            ("memory.stat", "inactive_file 1024\n"),
            ("memory.max", "65536\n"),
            ("pids.current", "1\n"),
            ("pids.max", "max\n"),
        ];
        for (name, text) in files {
            std::fs::write(cgroup.join(name), text).unwrap();
        }
        let net_dev = "h1\nh2\n  eth0: 10 1 0 0 0 0 0 0 20 2 0 0 0 0 0 0\n";
        std::fs::write(root.join("proc/7/net/dev"), net_dev).unwrap();
        (cgroup, root.join("proc"))
    }

    #[test]
    fn limits_are_read_again_once_a_second_and_counters_every_time() {
        let (dir, proc_root) = container("cadence");
        let cgroup = ContainerCgroup::Unified(dir.clone());
        let mut sampler =
            CgroupSampler::open(&cgroup, &proc_root, 7, &FieldSelection::All).unwrap();
        let start = Instant::now();
        let first = sampler.read(start).unwrap();
        assert_eq!(
            (first.mem_limit, first.mem_usage),
            (Some(65536), Some(4096))
        );

        std::fs::write(dir.join("memory.max"), "131072\n").unwrap();
        std::fs::write(dir.join("memory.current"), "8192\n").unwrap();
        let soon = sampler.read(start + Duration::from_millis(900)).unwrap();
        assert_eq!((soon.mem_limit, soon.mem_usage), (Some(65536), Some(8192)));
        let later = sampler.read(start + SETTINGS_EVERY).unwrap();
        assert_eq!(later.mem_limit, Some(131072));
        std::fs::remove_dir_all(proc_root.parent().unwrap()).unwrap();
    }

    #[test]
    fn opens_only_the_files_the_selected_fields_need() {
        let (dir, proc_root) = container("selection");
        // Without the memory files, a reading of CPU alone still works...
        std::fs::remove_file(dir.join("memory.stat")).unwrap();
        let cgroup = ContainerCgroup::Unified(dir.clone());
        let cpu_only = FieldSelection::parse("cpu_percent,cpu_total_usage").unwrap();
        let mut sampler = CgroupSampler::open(&cgroup, &proc_root, 7, &cpu_only).unwrap();
        let names: Vec<&str> = sampler.files.iter().map(|f| f.kind.name).collect();
        assert_eq!(names, ["cpu.stat"]);
        let reading = sampler.read(Instant::now()).unwrap();
        assert_eq!((reading.cpu_total_ns, reading.net), (Some(1_000_000), None));
        // ... and one that needs them says which file is missing, and where.
        let error = CgroupSampler::open(&cgroup, &proc_root, 7, &FieldSelection::All)
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("memory.stat") && error.contains(&*dir.to_string_lossy()),
            "{error}"
        );
        std::fs::remove_dir_all(proc_root.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_file_longer_than_any_counter_file_is_refused_without_growing_the_buffer() {
        let (dir, proc_root) = container("huge");
        let padding = "x 1\n".repeat(MAX_TEXT_BYTES / 2);
        std::fs::write(
            dir.join("memory.stat"),
            format!("{padding}inactive_file 2048\n"),
        )
        .unwrap();
        let cgroup = ContainerCgroup::Unified(dir);
        let error = CgroupSampler::open(&cgroup, &proc_root, 7, &FieldSelection::All)
            .err()
            .expect("a 2 MiB memory.stat is refused")
            .to_string();
        assert!(error.contains("memory.stat"), "{error}");
        BUFFER.with_borrow(|buffer| assert!(buffer.len() <= MAX_TEXT_BYTES + 1));
        std::fs::remove_dir_all(proc_root.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_text_longer_than_the_buffer_is_read_whole() {
        let (dir, proc_root) = container("long");
        let padding = "x 1\n".repeat(3000);
        let stat = format!("{padding}inactive_file 2048\n");
        std::fs::write(dir.join("memory.stat"), stat).unwrap();
        let cgroup = ContainerCgroup::Unified(dir);
        let mut sampler =
            CgroupSampler::open(&cgroup, &proc_root, 7, &FieldSelection::All).unwrap();
        assert_eq!(sampler.read(Instant::now()).unwrap().mem_used(), Some(2048));
        std::fs::remove_dir_all(proc_root.parent().unwrap()).unwrap();
    }
}
