//! Prometheus text exposition (format 0.0.4) of the service's own counters,
//! gauges and histograms.

use std::fmt::Write;

use super::health::{Health, Histogram};
use crate::telemetry::counters::Counters;

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Escapes a label value: backslash, double quote and newline.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram) {
    header(out, name, "histogram", help);
    let (buckets, count, sum) = h.snapshot();
    for (bound, cumulative) in h.bounds.iter().zip(buckets) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {count}");
}

pub fn render(health: &Health) -> String {
    let c = &health.counters;
    let mut out = String::with_capacity(4096);
    single(
        &mut out,
        "dss_samples_received_total",
        "counter",
        "Stats samples received from the engine or read from cgroups.",
        Counters::get(&c.samples_received),
    );
    single(
        &mut out,
        "dss_cgroup_ticks_skipped_total",
        "counter",
        "cgroup sampling ticks skipped because the previous one ran late.",
        Counters::get(&c.cgroup_ticks_skipped),
    );
    single(
        &mut out,
        "dss_cgroup_fallbacks_total",
        "counter",
        "Containers sampled from the stream because their cgroup files could not be read.",
        Counters::get(&c.cgroup_fallbacks),
    );
    single(
        &mut out,
        "dss_samples_empty_total",
        "counter",
        "Empty samples of stopped containers, not written.",
        Counters::get(&c.samples_empty),
    );
    header(
        &mut out,
        "dss_frames_skipped_total",
        "counter",
        "Stats frames skipped, by reason.",
    );
    let _ = writeln!(
        out,
        "dss_frames_skipped_total{{reason=\"malformed\"}} {}",
        Counters::get(&c.frames_malformed)
    );
    let _ = writeln!(
        out,
        "dss_frames_skipped_total{{reason=\"oversized\"}} {}",
        Counters::get(&c.frames_oversized)
    );
    single(
        &mut out,
        "dss_points_collected_total",
        "counter",
        "Points handed to the writer.",
        Counters::get(&c.points_collected),
    );
    single(
        &mut out,
        "dss_points_written_total",
        "counter",
        "Points InfluxDB acknowledged.",
        Counters::get(&c.points_written),
    );
    header(
        &mut out,
        "dss_points_dropped_total",
        "counter",
        "Points given up, by reason.",
    );
    let _ = writeln!(
        out,
        "dss_points_dropped_total{{reason=\"buffer_full\"}} {}",
        Counters::get(&c.points_dropped)
    );
    let _ = writeln!(
        out,
        "dss_points_dropped_total{{reason=\"rejected\"}} {}",
        Counters::get(&c.points_rejected)
    );
    single(
        &mut out,
        "dss_points_spooled_total",
        "counter",
        "Points saved to the spool at shutdown.",
        Counters::get(&c.points_spooled),
    );
    header(
        &mut out,
        "dss_write_errors_total",
        "counter",
        "Failed write requests, by class.",
    );
    for (class, count) in health.write_errors() {
        let _ = writeln!(out, "dss_write_errors_total{{class=\"{class}\"}} {count}");
    }
    histogram(
        &mut out,
        "dss_write_duration_seconds",
        "Time from sending a batch to its acknowledgement.",
        &health.write_duration,
    );
    histogram(
        &mut out,
        "dss_batch_points",
        "Points per acknowledged write request.",
        &health.batch_points,
    );
    histogram(
        &mut out,
        "dss_sample_to_stored_seconds",
        "From a point's own timestamp to InfluxDB acknowledging it.",
        &health.sample_to_stored,
    );
    single(
        &mut out,
        "dss_points_buffered",
        "gauge",
        "Points waiting or in flight.",
        Counters::get(&c.points_buffered),
    );
    single(
        &mut out,
        "dss_buffered_bytes",
        "gauge",
        "Bytes of encoded points waiting or in flight.",
        Counters::get(&c.buffered_bytes),
    );
    single(
        &mut out,
        "dss_active_streams",
        "gauge",
        "Stats streams being followed.",
        health.active_streams() as u64,
    );
    single(
        &mut out,
        "dss_containers_watched",
        "gauge",
        "Containers in the Supervisor's registry.",
        Counters::get(&health.containers_watched),
    );
    single(
        &mut out,
        "dss_stream_restarts_total",
        "counter",
        "Stats streams restarted after a failure.",
        Counters::get(&c.stream_restarts),
    );
    single(
        &mut out,
        "dss_event_reconnects_total",
        "counter",
        "Docker event stream reconnections.",
        Counters::get(&c.event_reconnects),
    );
    header(
        &mut out,
        "dss_seconds_since_last_sample",
        "gauge",
        "Seconds since each followed container's last sample (or since it was followed, before its first).",
    );
    for (id, name, age) in health.sample_ages() {
        let _ = writeln!(
            out,
            "dss_seconds_since_last_sample{{container_id=\"{}\",container_name=\"{}\"}} {age}",
            label(&id),
            label(&name)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn renders_help_type_and_samples() {
        let health = Health::new(Arc::new(Counters::default()), Duration::from_secs(60));
        health.write_succeeded(7, Duration::from_millis(20));
        health.write_failed("timeout", "x".into(), false);
        let cell = health.stream_started("abc", 1, "we\"ird");
        cell.store(
            crate::clock::now_ms() as i64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let text = render(&health);
        assert!(text.contains("# TYPE dss_points_written_total counter\n"));
        assert!(text.contains("dss_write_errors_total{class=\"timeout\"} 1\n"));
        assert!(text.contains("dss_write_duration_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(text.contains("dss_batch_points_count 1\n"));
        assert!(text.contains("container_name=\"we\\\"ird\""), "{text}");
        assert!(
            text.lines()
                .all(|l| l.starts_with('#') || l.split(' ').count() == 2),
            "{text}"
        );
    }
}
