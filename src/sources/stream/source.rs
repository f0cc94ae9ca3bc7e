//! One container's stream source: each item of the engine's stats stream
//! (`engine::stats_stream`) turned into the `docker_stats` fields, or
//! skipped and counted. A bad frame costs one sample, never the stream, and
//! is said once per stream.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::engine::client::{Engine, Platform};
use crate::engine::container::short;
use crate::engine::stats_stream::{StatsItem, StreamTarget};
use crate::schema::fields::FieldSelection;
use crate::schema::point::Field;
use crate::sources::stream::fields::{compute_fields, read_time_ns};
use crate::sources::stream::sample::Sample;
use crate::sources::Reading;
use crate::telemetry::counters::Counters;

/// What every stream-sampled container shares.
#[derive(Debug)]
pub struct StreamSettings {
    pub platform: Platform,
    /// Only the network fields are the container's own: its engine gives
    /// it no cgroup (`Engine::has_container_cgroups`).
    pub network_only: bool,
    /// A rootless engine: its user's manager may not delegate the `io`
    /// controller (systemd's default does not), and the engine then sends
    /// no block I/O entries, which must not be read as zero bytes.
    pub rootless: bool,
    /// The socket, API version, frame limits, read pacing and stall timeout
    /// of the stats streams.
    pub target: StreamTarget,
    /// Selected fields already warned about as missing, across containers.
    pub missing_field_warnings: Mutex<HashSet<String>>,
}

impl StreamSettings {
    /// What the engine's streams share: its platform, and what of a sample
    /// is the container's own (`Engine::has_container_cgroups`, rootless).
    pub fn for_engine(engine: &Engine, target: StreamTarget) -> Self {
        StreamSettings {
            platform: engine.platform,
            network_only: !engine.has_container_cgroups(),
            rootless: engine.rootless,
            target,
            missing_field_warnings: Mutex::default(),
        }
    }
}

/// The state one container's stream keeps between items.
#[derive(Debug)]
pub struct StreamSource {
    id: String,
    cpu_limit_cores: Option<f64>,
    /// Bad frames are logged once per stream and counted.
    bad_frame_logged: bool,
}

impl StreamSource {
    pub fn new(id: &str, cpu_limit_cores: Option<f64>) -> Self {
        StreamSource {
            id: id.to_string(),
            cpu_limit_cores,
            bad_frame_logged: false,
        }
    }

    /// The fields of one item and the sample's own time, or `None` for an
    /// item that carries no measurement (counted).
    pub fn read(
        &mut self,
        item: StatsItem,
        settings: &StreamSettings,
        selection: &FieldSelection,
        counters: &Counters,
    ) -> Option<Reading> {
        let frame = match item {
            StatsItem::Frame(frame) => frame,
            StatsItem::Oversized(size) => {
                Counters::add(&counters.frames_oversized, 1);
                self.log_bad_frame(&format!(
                    "a stats frame of {size}+ bytes, over STATS_LINE_SIZE"
                ));
                return None;
            }
        };
        let sample = match Sample::decode(&frame) {
            Ok(sample) => sample,
            Err(error) => {
                Counters::add(&counters.frames_malformed, 1);
                self.log_bad_frame(&format!("a malformed stats frame ({error})"));
                return None;
            }
        };
        let Some(timestamp) = read_time_ns(&sample) else {
            // The engine keeps the stream open after the container stopped
            // and sends empty samples; they carry no measurement.
            Counters::add(&counters.samples_empty, 1);
            return None;
        };
        let mut fields = compute_fields(&sample, settings.platform, self.cpu_limit_cores);
        if settings.network_only {
            // The rest describe another cgroup; said once at start. A
            // container without a network keeps an empty reading: a sample
            // was received (the health check's `samples`), none is written.
            fields.retain(|(name, _)| name.starts_with("net_"));
        } else {
            if settings.rootless && !has_block_io_entries(&sample) {
                fields.retain(|(name, _)| !name.starts_with("blkio_"));
            }
            self.warn_about_missing_fields(&fields, settings, selection);
        }
        Some(Reading {
            fields,
            timestamp,
            oom_kills: 0,
        })
    }

    fn log_bad_frame(&mut self, what: &str) {
        if !self.bad_frame_logged {
            self.bad_frame_logged = true;
            log::warn!(
                "skipped {what} from container {}; further bad frames of this stream are only counted",
                short(&self.id)
            );
        }
    }

    /// A selected field the engine's samples lack is said once for the
    /// whole service, not once per container or sample.
    fn warn_about_missing_fields(
        &self,
        fields: &[Field],
        settings: &StreamSettings,
        selection: &FieldSelection,
    ) {
        for wanted in selection.expected() {
            if fields.iter().any(|(name, _)| name == wanted) {
                continue;
            }
            let mut warned = settings
                .missing_field_warnings
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if warned.insert(wanted.to_string()) {
                log::warn!(
                    "field {wanted} is selected in STATS_FIELDS but the engine's samples do not have it (first seen for container {}); it is left out of those points",
                    short(&self.id)
                );
            }
        }
    }
}

/// Whether the sample lists any block I/O entry.
fn has_block_io_entries(sample: &Sample) -> bool {
    sample
        .blkio_stats
        .as_ref()
        .and_then(|b| b.io_service_bytes_recursive.as_ref())
        .is_some_and(|entries| !entries.is_empty())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;
    use crate::engine::paced_io::ReadPacer;

    fn settings(network_only: bool) -> StreamSettings {
        // A rootless Podman, with or without cgroups of its containers'.
        StreamSettings {
            platform: Platform::Podman,
            network_only,
            rootless: true,
            target: StreamTarget {
                socket_path: "/nonexistent.sock".into(),
                api_version: "1.41".into(),
                line_limit: 102_400,
                buffer_limit: 1_048_576,
                pacer: ReadPacer::new(Duration::from_millis(100)),
                stall_timeout: Duration::from_secs(30),
            },
            missing_field_warnings: Mutex::default(),
        }
    }

    fn read(frame: &[u8], network_only: bool, counters: &Counters) -> Option<Reading> {
        StreamSource::new("bda7306e3d99", Some(0.5)).read(
            StatsItem::Frame(frame.to_vec()),
            &settings(network_only),
            &FieldSelection::default(),
            counters,
        )
    }

    /// Recorded from rootless Podman 5.8 without a systemd session: the
    /// container (given half a core) ran in the cgroup of the process that
    /// started it, whose CPU and memory the sample carries.
    const NO_SESSION: &[u8] =
        include_bytes!("../../../tests/fixtures/stats/podman58_v2_rootless_no_session.json");

    #[test]
    fn without_container_cgroups_only_network_fields_are_read() {
        let counters = Counters::default();
        let everything = read(NO_SESSION, false, &counters).unwrap();
        assert!(everything.fields.iter().any(|(name, _)| name == "mem_used"));

        let reading = read(NO_SESSION, true, &counters).unwrap();
        let names: Vec<&str> = reading
            .fields
            .iter()
            .map(|(name, _)| name.as_ref())
            .collect();
        assert!(names.contains(&"net_in_bytes"), "{names:?}");
        assert!(
            names.iter().all(|name| name.starts_with("net_")),
            "{names:?}"
        );
        assert_eq!(reading.timestamp, everything.timestamp);
    }

    #[test]
    fn without_container_cgroups_a_sample_without_networks_has_no_fields() {
        let text = std::str::from_utf8(NO_SESSION).unwrap();
        let cut = text.find(",\"networks\"").unwrap();
        let without_networks = format!("{}}}", &text[..cut]);
        let counters = Counters::default();
        // Received (it keeps the health check's `samples` alive), not
        // empty (that counts stopped containers' samples), nothing to write.
        let reading = read(without_networks.as_bytes(), true, &counters).unwrap();
        assert!(reading.fields.is_empty());
        assert_eq!(counters.samples_empty.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_rootless_engine_without_block_io_entries_writes_no_block_io() {
        let text = std::str::from_utf8(NO_SESSION).unwrap();
        let start = text.find("[{\"major\"").unwrap();
        let end = text.find("],\"io_serviced_recursive\"").unwrap();
        let without_entries = format!("{}[{}", &text[..start], &text[end..]);
        let counters = Counters::default();
        let reading = read(without_entries.as_bytes(), false, &counters).unwrap();
        assert!(reading.fields.iter().any(|(name, _)| name == "mem_used"));
        assert!(!reading
            .fields
            .iter()
            .any(|(name, _)| name.starts_with("blkio_")));
        let reading = read(NO_SESSION, false, &counters).unwrap();
        assert!(reading
            .fields
            .iter()
            .any(|(name, _)| name == "blkio_read_bytes"));
    }
}
