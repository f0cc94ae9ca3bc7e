//! What the service knows about one container from the engine's inspect
//! response: identity, labels, state, CPU limit and where its cgroup is.

use std::collections::HashMap;

use bollard::models::ContainerInspectResponse;

#[derive(Debug, Clone, PartialEq)]
pub struct ContainerInfo {
    pub id: String,
    /// Without the leading `/` the engine puts in front of names.
    pub name: String,
    pub image: String,
    pub labels: HashMap<String, String>,
    pub running: bool,
    /// The CPU limit in cores (`--cpus`, or quota / period), if any.
    pub cpu_limit_cores: Option<f64>,
    /// The init process, in the engine's (the host's) PID namespace.
    pub pid: Option<u32>,
    /// `HostConfig.CgroupParent`; empty when the engine's default applies.
    pub cgroup_parent: String,
}

impl ContainerInfo {
    pub fn from_inspect(inspect: &ContainerInspectResponse) -> Option<Self> {
        let id = inspect.id.clone()?;
        let host_config = inspect.host_config.as_ref();
        let config = inspect.config.as_ref();
        Some(ContainerInfo {
            name: trim_name(inspect.name.as_deref().unwrap_or(&id)).to_string(),
            image: config.and_then(|c| c.image.clone()).unwrap_or_default(),
            labels: config.and_then(|c| c.labels.clone()).unwrap_or_default(),
            running: inspect
                .state
                .as_ref()
                .and_then(|s| s.running)
                .unwrap_or(false),
            cpu_limit_cores: cpu_limit_cores(
                host_config.and_then(|h| h.nano_cpus),
                host_config.and_then(|h| h.cpu_quota),
                host_config.and_then(|h| h.cpu_period),
            ),
            pid: inspect
                .state
                .as_ref()
                .and_then(|s| s.pid)
                .and_then(|pid| u32::try_from(pid).ok())
                .filter(|pid| *pid > 0),
            cgroup_parent: host_config
                .and_then(|h| h.cgroup_parent.clone())
                .unwrap_or_default(),
            id,
        })
    }
}

/// The 12-character id `docker ps` shows (ids are hex; anything else an
/// engine sends is cut at a character boundary, never split).
pub fn short(id: &str) -> &str {
    id.char_indices().nth(12).map_or(id, |(end, _)| &id[..end])
}

/// A name without the leading `/` the engine puts in front of it.
pub fn trim_name(name: &str) -> &str {
    name.strip_prefix('/').unwrap_or(name)
}

/// The container's CPU limit in cores: `NanoCpus` (`--cpus`) when set, else
/// `CpuQuota / CpuPeriod` (`--cpu-quota`, period defaulting to the kernel's
/// 100 ms). `None` when the container may use every core.
pub fn cpu_limit_cores(
    nano_cpus: Option<i64>,
    quota: Option<i64>,
    period: Option<i64>,
) -> Option<f64> {
    if let Some(nano) = nano_cpus.filter(|n| *n > 0) {
        return Some(nano as f64 / 1e9);
    }
    let quota = quota.filter(|q| *q > 0)?;
    let period = period.filter(|p| *p > 0).unwrap_or(100_000);
    Some(quota as f64 / period as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_limit_comes_from_nano_cpus_or_quota() {
        assert_eq!(cpu_limit_cores(Some(500_000_000), None, None), Some(0.5));
        assert_eq!(
            cpu_limit_cores(Some(0), Some(150_000), Some(100_000)),
            Some(1.5)
        );
        assert_eq!(cpu_limit_cores(None, Some(50_000), Some(0)), Some(0.5));
        assert_eq!(cpu_limit_cores(Some(0), Some(-1), Some(100_000)), None);
    }

    #[test]
    fn a_short_id_is_twelve_characters_of_any_id() {
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
        assert_eq!(short("abc"), "abc");
        assert_eq!(short("ééééééééééééé"), "éééééééééééé");
    }
}
