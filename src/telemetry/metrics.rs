//! Prometheus text exposition (format 0.0.4) of the service's own counters,
//! gauges and histograms.

use std::fmt::Write;

use super::health::{Health, Histogram};
use crate::telemetry::counters::Counters;

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
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
    let mut out = String::with_capacity(4096);
    let mut family = "";
    for exposed in health.counters.exposition() {
        if exposed.name != family {
            family = exposed.name;
            header(&mut out, exposed.name, exposed.kind.as_str(), exposed.help);
        }
        let value = Counters::get(exposed.value);
        match exposed.label {
            Some((key, label)) => {
                let _ = writeln!(out, "{}{{{key}=\"{label}\"}} {value}", exposed.name);
            }
            None => {
                let _ = writeln!(out, "{} {value}", exposed.name);
            }
        }
    }
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
    header(
        &mut out,
        "dss_active_streams",
        "gauge",
        "Stats streams being followed.",
    );
    let _ = writeln!(out, "dss_active_streams {}", health.active_streams());
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

/// docs/monitoring.md's table of `/metrics`, made from what `render`
/// writes: each family's name, type, labels and help. A write error and a
/// followed container are put in so that their families show their labels.
pub fn reference_table() -> String {
    use std::collections::BTreeSet;
    let health = Health::new(Default::default(), std::time::Duration::from_secs(60));
    health.write_failed("timeout", String::new(), false);
    health.stream_started("id", 1, "name");
    let text = render(&health);
    let mut rows: Vec<(String, String, BTreeSet<String>, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            rows.push((name.into(), String::new(), BTreeSet::new(), help.into()));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let (Some(row), Some((_, kind))) = (rows.last_mut(), rest.split_once(' ')) {
                row.1 = kind.into();
            }
        } else if let (Some(row), Some((_, labels))) = (rows.last_mut(), line.split_once('{')) {
            // `reason`'s values are fixed and worth listing; the others'
            // (container, class) are whatever occurs.
            for pair in labels.split('}').next().unwrap_or("").split(',') {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                match key {
                    "le" => {}
                    "reason" => {
                        row.2
                            .insert(format!("`reason=\"{}\"`", value.trim_matches('"')));
                    }
                    _ => {
                        row.2.insert(format!("`{key}`"));
                    }
                }
            }
        }
    }
    let mut table = String::from("| Metric | Type | Labels | What it is |\n|---|---|---|---|\n");
    for (name, kind, labels, help) in rows {
        let labels = labels.into_iter().collect::<Vec<_>>().join(", ");
        table.push_str(&format!("| `{name}` | {kind} | {labels} | {help} |\n"));
    }
    table
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
