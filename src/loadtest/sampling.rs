//! Where `record` and `top` read from, and the wait before their first
//! figures: the cgroup files at the asked interval where they can be read,
//! the engine's stream otherwise.

use std::time::{Duration, Instant};

use crate::config::{Config, Sampling};
use crate::engine::client::Engine;
use crate::telemetry::health::Health;

/// The cgroup files at `interval` where they can be read, the engine's
/// stream otherwise. Answers the interval samples can come at, and what
/// to say about the choice.
pub fn choose(config: &mut Config, engine: &Engine, interval: Duration) -> (Duration, String) {
    config.stats.interval = interval;
    let root = &config.stats.cgroup_root;
    let readable = std::fs::read_dir(root).is_ok_and(|mut entries| entries.next().is_some());
    if !engine.has_container_cgroups() {
        // A rootless engine without a systemd session: its containers
        // share their caller's cgroup (the collection says why, once).
        config.stats.sampling = Sampling::Stream;
        let said = format!(
            "{} gives its containers no cgroups of their own; sampling the engine's stats stream instead (network only, about one sample per second)",
            engine.name
        );
        return (STREAM_INTERVAL, said);
    }
    if readable {
        config.stats.sampling = Sampling::Cgroup;
        let said = format!(
            "sampling every {} from the cgroup files under {} (engine {})",
            humantime::format_duration(interval),
            root.display(),
            engine.name
        );
        (interval, said)
    } else {
        config.stats.sampling = Sampling::Stream;
        let said = format!(
            "the cgroup files under {} cannot be read here; sampling the engine's stats stream instead (about one sample per second, not every {})",
            root.display(),
            humantime::format_duration(interval)
        );
        (STREAM_INTERVAL, said)
    }
}

/// The engine's stats stream sends one sample a second.
const STREAM_INTERVAL: Duration = Duration::from_secs(1);

/// Gives the collection time to follow the running containers, so the run
/// starts with every one of them sampled: the event stream is followed,
/// the set of followed containers has not changed for `SETTLED` (the
/// engine's container list can miss containers started a moment before,
/// which then arrive through their events, one inspect apart), every one
/// of them has had its first sample, and one more interval has passed (the
/// cgroup source's first reading has no CPU figure yet). Never longer than
/// `WARM_UP_LIMIT`.
pub async fn warm_up(health: &Health, config: &Config) {
    const WARM_UP_LIMIT: Duration = Duration::from_secs(10);
    const SETTLED: Duration = Duration::from_secs(1);
    let deadline = Instant::now() + WARM_UP_LIMIT;
    let pause = Duration::from_millis(20);
    while !health.events.is_ok() && Instant::now() < deadline {
        tokio::time::sleep(pause).await;
    }
    let mut followed = health.sample_ages().len();
    let mut changed = Instant::now();
    while Instant::now() < deadline {
        let now_followed = health.sample_ages().len();
        if now_followed != followed {
            followed = now_followed;
            changed = Instant::now();
        }
        if changed.elapsed() >= SETTLED && health.awaiting_first_sample() == 0 {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    let second_reading = match config.stats.sampling {
        Sampling::Cgroup => config.stats.interval,
        Sampling::Stream => Duration::from_millis(1100),
    };
    tokio::time::sleep(second_reading).await;
}
