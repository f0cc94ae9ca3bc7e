//! Numbers as people read them: bytes in binary units, percentages with one
//! decimal below 100, times in RFC 3339.

use std::time::{Duration, UNIX_EPOCH};

pub fn bytes(value: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = value;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0}B")
    } else if value.abs() < 10.0 {
        format!("{value:.1}{}", UNITS[unit])
    } else {
        format!("{value:.0}{}", UNITS[unit])
    }
}

/// Bytes with a one-letter unit, for narrow columns: `1.2M`.
pub fn bytes_short(value: f64) -> String {
    let text = bytes(value);
    text.strip_suffix("iB").map_or(text.clone(), str::to_string)
}

pub fn percent(value: f64) -> String {
    if value.abs() < 99.95 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

pub fn millis(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{:.1}s", ms / 1000.0)
    }
}

pub fn rfc3339(ns: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}

/// A number of the summary in its unit, by the name budgets use
/// (`mem_used.max`, `throttled_share`, `cpu_percent.p50`).
pub fn metric_value(metric: &str, value: f64) -> String {
    let name = metric.split('.').next().unwrap_or(metric);
    if name.ends_with("_rate") {
        format!("{}/s", bytes(value))
    } else if name.ends_with("_bytes") || name == "mem_used" {
        bytes(value)
    } else if name.ends_with("_percent") {
        format!("{}%", percent(value))
    } else if name == "throttled_share" {
        format!("{}%", percent(value * 100.0))
    } else if name == "throttled_time_s" {
        format!("{value:.2}s")
    } else if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// A change in its unit, with its sign; a change of a percentage in
/// percentage points, so it never reads as a relative change.
pub fn metric_change(metric: &str, change: f64) -> String {
    let sign = if change < 0.0 { "-" } else { "+" };
    let shown = metric_value(metric, change.abs());
    match shown.strip_suffix('%') {
        Some(points) => format!("{sign}{points} pts"),
        None => format!("{sign}{shown}"),
    }
}

/// The size of a change the noise explains: `±0.3 pts`, `±307KiB`.
pub fn metric_noise(metric: &str, noise: f64) -> String {
    let change = metric_change(metric, noise);
    format!("±{}", change.trim_start_matches('+'))
}

pub fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_numbers() {
        assert_eq!(bytes(512.0), "512B");
        assert_eq!(bytes(60.0 * 1024.0 * 1024.0), "60MiB");
        assert_eq!(bytes(1.5 * 1024.0 * 1024.0), "1.5MiB");
        assert_eq!(bytes_short(1.5 * 1024.0 * 1024.0), "1.5M");
        assert_eq!(percent(50.04), "50.0");
        assert_eq!(percent(100.2), "100");
        assert_eq!(millis(100.4), "100ms");
        assert_eq!(millis(1500.0), "1.5s");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(metric_value("mem_used.max", 31457280.0), "30MiB");
        assert_eq!(metric_value("net_in_peak_rate", 2048.0), "2.0KiB/s");
        assert_eq!(metric_value("cpu_percent.p50", 29.96), "30.0%");
        assert_eq!(metric_value("throttled_share", 0.5), "50.0%");
        assert_eq!(metric_value("oom_kills", 2.0), "2");
        assert_eq!(metric_change("cpu_percent.p50", -3.0), "-3.0 pts");
        assert_eq!(metric_noise("cpu_percent.p50", 0.25), "±0.2 pts");
        assert_eq!(metric_change("mem_used.max", 1048576.0), "+1.0MiB");
    }
}
