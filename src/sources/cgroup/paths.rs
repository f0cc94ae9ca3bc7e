//! Finds a container's cgroup directories from its id, the engine's cgroup
//! driver (`cgroupfs` or `systemd`) and the host's cgroup version (v1 or v2),
//! so that the cgroup source can read its files directly.
//!
//! Docker places a container at a path that depends on the driver and on the
//! container's `CgroupParent`:
//!
//! | driver   | v1 (per controller)                         | v2 (one tree)                     |
//! |----------|---------------------------------------------|-----------------------------------|
//! | cgroupfs | `<root>/<ctrl>/docker/<id>`                 | `<root>/docker/<id>`              |
//! | systemd  | `<root>/<ctrl>/system.slice/docker-<id>.scope` | `<root>/system.slice/docker-<id>.scope` |
//!
//! Podman names them its own way: `machine.slice/libpod-<id>.scope` with
//! the systemd manager, `libpod_parent/libpod-<id>` with cgroupfs.
//!
//! A rootless engine (rootless Docker, rootless Podman) asks the user's own
//! systemd manager for its scopes: they live below
//! `user.slice/user-<uid>.slice/user@<uid>.service/`, in its `user.slice`
//! by default.
//!
//! The engine's declared driver is tried first, then the other one, so that
//! a misreported driver still finds the files; when neither does, the error
//! names both layouts and every directory tried.
//!
//! Discovery only checks that the directories exist; whether the files in
//! them can be read is the sampler's business, and a failure there falls back
//! to the stream source.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::engine::container::short;

/// The v1 controllers whose files the sampler reads.
pub const V1_CONTROLLERS: [&str; 5] = ["cpuacct", "cpu", "memory", "blkio", "pids"];

/// Where a v1 host in systemd's hybrid layout mounts the unified hierarchy:
/// optional, unlike the controllers.
pub const HYBRID_UNIFIED: &str = "unified";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    Cgroupfs,
    Systemd,
}

impl CgroupDriver {
    /// The engine reports its driver in `docker info` (`CgroupDriver`).
    pub fn from_engine(name: &str) -> Option<CgroupDriver> {
        match name {
            "cgroupfs" => Some(CgroupDriver::Cgroupfs),
            "systemd" => Some(CgroupDriver::Systemd),
            _ => None,
        }
    }
}

/// Whose naming the container cgroups follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Runtime {
    #[default]
    Docker,
    Podman,
}

/// Where a container's cgroup files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerCgroup {
    /// cgroup v2: every controller's files in one directory.
    Unified(PathBuf),
    /// cgroup v1: one directory per controller, in [`V1_CONTROLLERS`] order,
    /// then the hybrid layout's [`HYBRID_UNIFIED`] one where it exists.
    PerController(Vec<(&'static str, PathBuf)>),
}

/// Discovery failed: names every layout and directory tried, so the one
/// log line about it tells an operator what to mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound {
    pub container_id: String,
    pub tried: Vec<Attempt>,
}

/// One layout looked for: its description and the directories missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub layout: String,
    pub missing: Vec<PathBuf>,
}

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tried: Vec<String> = self
            .tried
            .iter()
            .map(|attempt| {
                let missing: Vec<String> = attempt
                    .missing
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                format!("{}: {}", attempt.layout, missing.join(", "))
            })
            .collect();
        write!(
            f,
            "no cgroup directory for container {} under any known layout (tried {}); mount the host's /sys/fs/cgroup read-only at the configured cgroup root",
            short(&self.container_id),
            tried.join("; ")
        )
    }
}

impl std::error::Error for NotFound {}

/// The host's cgroup mount as the service sees it.
#[derive(Debug, Clone)]
pub struct CgroupLayout {
    root: PathBuf,
    version: CgroupVersion,
    driver: CgroupDriver,
    runtime: Runtime,
    /// Whose systemd manager the engine's scopes live under.
    owner: Owner,
}

/// Who runs the engine: root, or a user (rootless), whose uid the service
/// may not know (a socket seen through a proxy or from inside a user
/// namespace shows another owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Root,
    User(u32),
    UnknownUser,
}

impl CgroupLayout {
    /// Reads the version from the mount itself: a v2 (unified) root holds
    /// `cgroup.controllers`, a v1 root holds one directory per controller.
    pub fn detect(root: &Path, driver: CgroupDriver) -> CgroupLayout {
        let version = if root.join("cgroup.controllers").is_file() {
            CgroupVersion::V2
        } else {
            CgroupVersion::V1
        };
        CgroupLayout {
            root: root.to_path_buf(),
            version,
            driver,
            runtime: Runtime::Docker,
            owner: Owner::Root,
        }
    }

    /// The same mount, with container cgroups named by `runtime`.
    pub fn with_runtime(self, runtime: Runtime) -> CgroupLayout {
        CgroupLayout { runtime, ..self }
    }

    /// The same mount, for an engine run by `owner`.
    pub fn owned_by(self, owner: Owner) -> CgroupLayout {
        CgroupLayout { owner, ..self }
    }

    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// Finds the container's directories; `cgroup_parent` is the container's
    /// `HostConfig.CgroupParent` (empty when the engine's default applies).
    /// A rootful engine's declared driver is tried first, then the other's.
    /// A rootless engine has cgroups of its own only through the user's
    /// systemd manager: that user's, or each user's when unknown.
    pub fn locate(&self, id: &str, cgroup_parent: &str) -> Result<ContainerCgroup, NotFound> {
        let attempts: Vec<(CgroupDriver, Option<u32>)> = match self.owner {
            Owner::Root => {
                let other = match self.driver {
                    CgroupDriver::Cgroupfs => CgroupDriver::Systemd,
                    CgroupDriver::Systemd => CgroupDriver::Cgroupfs,
                };
                vec![(self.driver, None), (other, None)]
            }
            Owner::User(uid) => vec![(CgroupDriver::Systemd, Some(uid))],
            Owner::UnknownUser => self
                .users_with_a_manager()
                .into_iter()
                .map(|uid| (CgroupDriver::Systemd, Some(uid)))
                .collect(),
        };
        let mut tried = Vec::new();
        for (driver, user) in attempts {
            let relative = relative_path(driver, self.runtime, user, id, cgroup_parent);
            match self.directories(&relative) {
                Ok(found) => return Ok(found),
                Err(missing) => tried.push(Attempt {
                    layout: self.describe(driver, user),
                    missing,
                }),
            }
        }
        if tried.is_empty() {
            tried.push(Attempt {
                layout: "rootless, under a user's systemd manager".into(),
                missing: vec![self.user_slice().join("user-<uid>.slice")],
            });
        }
        Err(NotFound {
            container_id: id.to_string(),
            tried,
        })
    }

    /// `user.slice`, where systemd keeps users' managers (v1: the memory
    /// controller's).
    fn user_slice(&self) -> PathBuf {
        match self.version {
            CgroupVersion::V2 => self.root.join("user.slice"),
            CgroupVersion::V1 => self.root.join("memory").join("user.slice"),
        }
    }

    /// The uids with a `user-<uid>.slice`, in order.
    fn users_with_a_manager(&self) -> Vec<u32> {
        let mut uids: Vec<u32> = std::fs::read_dir(self.user_slice())
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let name = entry.ok()?.file_name();
                name.to_str()?
                    .strip_prefix("user-")?
                    .strip_suffix(".slice")?
                    .parse()
                    .ok()
            })
            .collect();
        uids.sort_unstable();
        uids
    }

    /// The layout as the error names it: "systemd driver, cgroup v2,
    /// rootless under user@1000.service".
    fn describe(&self, driver: CgroupDriver, user: Option<u32>) -> String {
        let driver = match driver {
            CgroupDriver::Cgroupfs => "cgroupfs",
            CgroupDriver::Systemd => "systemd",
        };
        let version = match self.version {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        };
        match user {
            Some(uid) => {
                format!("{driver} driver, cgroup {version}, rootless under user@{uid}.service")
            }
            None => format!("{driver} driver, cgroup {version}"),
        }
    }

    /// The container's directories at `relative`, or the ones missing.
    fn directories(&self, relative: &Path) -> Result<ContainerCgroup, Vec<PathBuf>> {
        match self.version {
            CgroupVersion::V2 => {
                let dir = self.root.join(relative);
                if dir.is_dir() {
                    Ok(ContainerCgroup::Unified(dir))
                } else {
                    Err(vec![dir])
                }
            }
            CgroupVersion::V1 => {
                let mut dirs: Vec<(&'static str, PathBuf)> = V1_CONTROLLERS
                    .iter()
                    .map(|c| (*c, self.root.join(c).join(relative)))
                    .collect();
                let missing: Vec<PathBuf> = dirs
                    .iter()
                    .filter(|(_, d)| !d.is_dir())
                    .map(|(_, d)| d.clone())
                    .collect();
                // systemd's hybrid layout mounts the unified hierarchy
                // beside the controllers, and the engine places the
                // container there too: its pressure files are there.
                let unified = self.root.join(HYBRID_UNIFIED).join(relative);
                if unified.is_dir() {
                    dirs.push((HYBRID_UNIFIED, unified));
                }
                if missing.is_empty() {
                    Ok(ContainerCgroup::PerController(dirs))
                } else {
                    Err(missing)
                }
            }
        }
    }
}

/// The container's cgroup path below the root (below each controller's
/// mount on v1).
fn relative_path(
    driver: CgroupDriver,
    runtime: Runtime,
    rootless_user: Option<u32>,
    id: &str,
    cgroup_parent: &str,
) -> PathBuf {
    let (default_parent, default_slice, prefix) = match (runtime, rootless_user) {
        (Runtime::Docker, None) => ("docker", "system.slice", "docker"),
        (Runtime::Podman, None) => ("libpod_parent", "machine.slice", "libpod"),
        // The user's manager has no system.slice or machine.slice.
        (Runtime::Docker, Some(_)) => ("docker", "user.slice", "docker"),
        (Runtime::Podman, Some(_)) => ("libpod_parent", "user.slice", "libpod"),
    };
    match driver {
        CgroupDriver::Cgroupfs => {
            let parent = match cgroup_parent.trim_matches('/') {
                "" => default_parent,
                parent => parent,
            };
            match runtime {
                Runtime::Docker => Path::new(parent).join(id),
                Runtime::Podman => Path::new(parent).join(format!("{prefix}-{id}")),
            }
        }
        CgroupDriver::Systemd => {
            let slice = match cgroup_parent.trim_matches('/') {
                "" => default_slice,
                slice => slice,
            };
            let scope = expand_slice(slice).join(format!("{prefix}-{id}.scope"));
            match rootless_user {
                Some(uid) => user_manager(uid).join(scope),
                None => scope,
            }
        }
    }
}

/// Where the user's systemd manager keeps the cgroups it creates.
fn user_manager(uid: u32) -> PathBuf {
    PathBuf::from(format!("user.slice/user-{uid}.slice/user@{uid}.service"))
}

/// systemd nests a slice under each of its dash-separated prefixes:
/// `user-1000-app.slice` lives at `user.slice/user-1000.slice/user-1000-app.slice`.
fn expand_slice(slice: &str) -> PathBuf {
    let name = slice.strip_suffix(".slice").unwrap_or(slice);
    if name.is_empty() || name == "-" {
        return PathBuf::from("-.slice");
    }
    let mut path = PathBuf::new();
    let mut prefix = String::new();
    for part in name.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f1c0a6f2d9b8e7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b";

    /// A fresh directory tree per test, laid out as a host's cgroup mount.
    struct Tree(PathBuf);

    impl Tree {
        fn new(name: &str) -> Tree {
            let root =
                std::env::temp_dir().join(format!("dss-cgroup-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(&root).unwrap();
            Tree(root)
        }

        fn dir(&self, relative: &str) -> PathBuf {
            let dir = self.0.join(relative);
            std::fs::create_dir_all(&dir).unwrap();
            dir
        }

        fn file(&self, relative: &str) {
            std::fs::write(self.0.join(relative), "").unwrap();
        }

        fn v1(name: &str, container_dir: &str) -> Tree {
            let tree = Tree::new(name);
            for controller in V1_CONTROLLERS {
                tree.dir(&format!("{controller}/{container_dir}"));
            }
            tree
        }

        fn v2(name: &str, container_dir: &str) -> Tree {
            let tree = Tree::new(name);
            tree.file("cgroup.controllers");
            tree.dir(container_dir);
            tree
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn per_controller(root: &Path, relative: &str) -> ContainerCgroup {
        ContainerCgroup::PerController(
            V1_CONTROLLERS
                .iter()
                .map(|c| (*c, root.join(c).join(relative)))
                .collect(),
        )
    }

    #[test]
    fn finds_v1_cgroupfs_directories_per_controller() {
        let tree = Tree::v1("v1-cgroupfs", &format!("docker/{ID}"));
        let layout = CgroupLayout::detect(&tree.0, CgroupDriver::Cgroupfs);
        assert_eq!(layout.version(), CgroupVersion::V1);
        assert_eq!(
            layout.locate(ID, ""),
            Ok(per_controller(&tree.0, &format!("docker/{ID}")))
        );
    }

    #[test]
    fn adds_the_hybrid_layouts_unified_directory_where_it_exists() {
        let relative = format!("docker/{ID}");
        let tree = Tree::v1("v1-hybrid", &relative);
        tree.dir(&format!("unified/{relative}"));
        let layout = CgroupLayout::detect(&tree.0, CgroupDriver::Cgroupfs);
        let ContainerCgroup::PerController(mut dirs) = per_controller(&tree.0, &relative) else {
            unreachable!()
        };
        dirs.push(("unified", tree.0.join("unified").join(&relative)));
        assert_eq!(
            layout.locate(ID, ""),
            Ok(ContainerCgroup::PerController(dirs))
        );
    }

    #[test]
    fn finds_v1_systemd_scopes_per_controller() {
        let scope = format!("system.slice/docker-{ID}.scope");
        let tree = Tree::v1("v1-systemd", &scope);
        let layout = CgroupLayout::detect(&tree.0, CgroupDriver::Systemd);
        assert_eq!(layout.locate(ID, ""), Ok(per_controller(&tree.0, &scope)));
    }

    #[test]
    fn finds_the_v2_cgroupfs_directory() {
        let tree = Tree::v2("v2-cgroupfs", &format!("docker/{ID}"));
        let layout = CgroupLayout::detect(&tree.0, CgroupDriver::Cgroupfs);
        assert_eq!(layout.version(), CgroupVersion::V2);
        assert_eq!(
            layout.locate(ID, ""),
            Ok(ContainerCgroup::Unified(
                tree.0.join(format!("docker/{ID}"))
            ))
        );
    }

    #[test]
    fn finds_the_v2_systemd_scope() {
        let scope = format!("system.slice/docker-{ID}.scope");
        let tree = Tree::v2("v2-systemd", &scope);
        let layout = CgroupLayout::detect(&tree.0, CgroupDriver::Systemd);
        assert_eq!(
            layout.locate(ID, ""),
            Ok(ContainerCgroup::Unified(tree.0.join(scope)))
        );
    }

    #[test]
    fn finds_podmans_scopes_and_directories() {
        let scope = format!("machine.slice/libpod-{ID}.scope");
        let tree = Tree::v2("v2-podman", &scope);
        let layout =
            CgroupLayout::detect(&tree.0, CgroupDriver::Systemd).with_runtime(Runtime::Podman);
        assert_eq!(
            layout.locate(ID, ""),
            Ok(ContainerCgroup::Unified(tree.0.join(&scope)))
        );
        // Podman reports its default parent as "/machine.slice".
        assert_eq!(
            layout.locate(ID, "/machine.slice"),
            Ok(ContainerCgroup::Unified(tree.0.join(scope)))
        );

        let dir = format!("libpod_parent/libpod-{ID}");
        let tree = Tree::v2("v2-podman-cgroupfs", &dir);
        let layout =
            CgroupLayout::detect(&tree.0, CgroupDriver::Cgroupfs).with_runtime(Runtime::Podman);
        assert_eq!(
            layout.locate(ID, ""),
            Ok(ContainerCgroup::Unified(tree.0.join(dir)))
        );
    }

    #[test]
    fn honours_a_custom_cgroup_parent() {
        let tree = Tree::v2("parent-cgroupfs", &format!("loadtest/{ID}"));
        let layout = CgroupLayout::detect(&tree.0, CgroupDriver::Cgroupfs);
        assert!(layout.locate(ID, "/loadtest/").is_ok());

        let scope = format!("load.slice/load-test.slice/docker-{ID}.scope");
        let tree = Tree::v2("parent-systemd", &scope);
        let layout = CgroupLayout::detect(&tree.0, CgroupDriver::Systemd);
        assert_eq!(
            layout.locate(ID, "load-test.slice"),
            Ok(ContainerCgroup::Unified(tree.0.join(scope)))
        );
    }

    #[test]
    fn finds_rootless_scopes_under_the_users_manager() {
        // As rootless Podman 5.8 and rootless Docker 28.5 place them (the
        // platform lane's forky VM): Podman reports "user.slice" as the
        // parent, Docker none.
        let manager = "user.slice/user-1000.slice/user@1000.service/user.slice";
        for (runtime, prefix, parent) in [
            (Runtime::Podman, "libpod", "user.slice"),
            (Runtime::Docker, "docker", ""),
        ] {
            let scope = format!("{manager}/{prefix}-{ID}.scope");
            let tree = Tree::v2(&format!("rootless-{prefix}"), &scope);
            for owner in [Owner::User(1000), Owner::UnknownUser] {
                let layout = CgroupLayout::detect(&tree.0, CgroupDriver::Systemd)
                    .with_runtime(runtime)
                    .owned_by(owner);
                assert_eq!(
                    layout.locate(ID, parent),
                    Ok(ContainerCgroup::Unified(tree.0.join(&scope))),
                    "{owner:?}"
                );
            }
            // The same engine seen as rootful looks elsewhere.
            let rootful =
                CgroupLayout::detect(&tree.0, CgroupDriver::Systemd).with_runtime(runtime);
            assert!(rootful.locate(ID, parent).is_err());
        }
    }

    #[test]
    fn a_misreported_driver_still_finds_the_directory() {
        let scope = format!("system.slice/docker-{ID}.scope");
        let tree = Tree::v2("v2-misreported", &scope);
        let layout = CgroupLayout::detect(&tree.0, CgroupDriver::Cgroupfs);
        assert_eq!(
            layout.locate(ID, ""),
            Ok(ContainerCgroup::Unified(tree.0.join(scope)))
        );
    }

    #[test]
    fn a_missing_directory_names_every_layout_and_path_tried() {
        let tree = Tree::v1("v1-missing", &format!("docker/{ID}"));
        std::fs::remove_dir(tree.0.join(format!("pids/docker/{ID}"))).unwrap();
        let layout = CgroupLayout::detect(&tree.0, CgroupDriver::Cgroupfs);
        let error = layout.locate(ID, "").unwrap_err();
        assert_eq!(error.tried[0].layout, "cgroupfs driver, cgroup v1");
        assert_eq!(
            error.tried[0].missing,
            vec![tree.0.join(format!("pids/docker/{ID}"))]
        );
        assert_eq!(error.tried[1].layout, "systemd driver, cgroup v1");
        assert_eq!(error.tried[1].missing.len(), V1_CONTROLLERS.len());
        let message = error.to_string();
        assert!(message.contains(&ID[..12]), "{message}");
        assert!(message.contains("pids/docker/"), "{message}");
        assert!(message.contains("systemd driver, cgroup v1: "), "{message}");

        let empty = Tree::new("v2-missing");
        empty.file("cgroup.controllers");
        let layout = CgroupLayout::detect(&empty.0, CgroupDriver::Systemd)
            .with_runtime(Runtime::Podman)
            .owned_by(Owner::User(1000));
        let error = layout.locate(ID, "user.slice").unwrap_err();
        assert_eq!(
            error.tried,
            vec![Attempt {
                layout: "systemd driver, cgroup v2, rootless under user@1000.service".into(),
                missing: vec![empty.0.join(format!(
                    "user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"
                ))],
            }]
        );
        // A user unknown and no user's manager at all.
        let layout = layout.owned_by(Owner::UnknownUser);
        let message = layout.locate(ID, "user.slice").unwrap_err().to_string();
        assert!(
            message.contains("rootless, under a user's systemd manager: ")
                && message.contains("user.slice/user-<uid>.slice"),
            "{message}"
        );
    }

    #[test]
    fn expands_systemd_slices_by_their_dash_prefixes() {
        assert_eq!(expand_slice("system.slice"), PathBuf::from("system.slice"));
        assert_eq!(
            expand_slice("user-1000-app.slice"),
            PathBuf::from("user.slice/user-1000.slice/user-1000-app.slice")
        );
        assert_eq!(expand_slice("-.slice"), PathBuf::from("-.slice"));
    }
}
