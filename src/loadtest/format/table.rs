//! The summary as a terminal table: one row per container, at most 100
//! columns wide, then one line per budget.

use std::fmt::Write as _;

use crate::loadtest::budget::{BudgetCheck, BudgetResult};
use crate::loadtest::compare::regression::{RegressionCheck, RegressionResult};
use crate::loadtest::compare::{BaselineComparison, MetricChange};
use crate::loadtest::format::units::{
    bytes, bytes_short, metric_change, metric_noise, metric_value, millis, or_dash, percent,
    rfc3339,
};
use crate::loadtest::summary::{ContainerSummary, Distribution, RunSummary};

/// Column titles and widths; every cell is cut to its width.
const COLUMNS: [(&str, usize); 11] = [
    ("CONTAINER", 16),
    ("SAMPLE", 6),
    ("EVERY", 5),
    ("GAPS", 4),
    ("CPU% p50/p95/max", 16),
    ("%LIM95", 6),
    ("THROTTLED", 9),
    ("MEM MAX %LIM", 12),
    ("OOM", 3),
    ("RST", 3),
    ("NET RX/TX", 9),
];

/// What happened between readings, where the cgroup source saw it: a
/// second table, so the first keeps to 100 columns.
const BETWEEN_COLUMNS: [(&str, usize); 6] = [
    ("CONTAINER", 16),
    ("CPU STALL m/p95/max", 19),
    ("MEM STALL m/p95/max", 19),
    ("IO STALL m/p95/max", 18),
    ("PEAK RUN", 8),
    ("PEAK EVER", 9),
];

pub fn render(summary: &RunSummary) -> String {
    let mut out = String::new();
    for line in heading(summary).lines() {
        out.push_str(&fit(line));
        out.push('\n');
    }
    out.push_str(&titles(&COLUMNS));
    for container in &summary.containers {
        out.push_str(&row(&cells(container), &COLUMNS));
    }
    if summary.containers.is_empty() {
        out.push_str("(no container was sampled in this window)\n");
    }
    let between: Vec<&ContainerSummary> = summary
        .containers
        .iter()
        .filter(|c| has_between_readings(c))
        .collect();
    if !between.is_empty() {
        out.push('\n');
        out.push_str(&titles(&BETWEEN_COLUMNS));
        for container in between {
            out.push_str(&row(&between_cells(container), &BETWEEN_COLUMNS));
        }
    }
    for budget in &summary.budgets {
        out.push_str(&fit(&budget_line(budget)));
        out.push('\n');
    }
    if let Some(comparison) = &summary.comparison {
        out.push_str(&compared(comparison));
    }
    out
}

/// Changes beyond the noise shown at most; the rest are in the files.
const CHANGES_SHOWN: usize = 20;

/// The comparison with the baseline: what was matched, the changes beyond
/// the noise, and one line per regression rule.
fn compared(comparison: &BaselineComparison) -> String {
    let mut out = String::from("\n");
    let mut line = format!(
        "compared with {}: {} container(s) matched",
        comparison.baselines_named(),
        comparison.containers.len()
    );
    if !comparison.added.is_empty() {
        let _ = write!(line, "; added: {}", comparison.added.join(", "));
    }
    if !comparison.removed.is_empty() {
        let _ = write!(line, "; removed: {}", comparison.removed.join(", "));
    }
    out.push_str(&fit(&line));
    out.push('\n');
    let notable = comparison.beyond_noise();
    if notable.is_empty() {
        out.push_str(&fit(&format!(
            "no change beyond the noise in {} number(s) of {} container(s)",
            comparison.numbers_compared(),
            comparison.containers.len()
        )));
        out.push('\n');
    } else {
        let titles: Vec<String> = CHANGE_COLUMNS.iter().map(|(t, _)| t.to_string()).collect();
        out.push_str(&row_aligned(&titles, &CHANGE_COLUMNS, 2));
        for (container, change) in notable.iter().take(CHANGES_SHOWN) {
            let cells = change_cells(&container.name, change);
            out.push_str(&row_aligned(&cells, &CHANGE_COLUMNS, 2));
        }
        if notable.len() > CHANGES_SHOWN {
            let _ = writeln!(
                out,
                "and {} more beyond the noise (summary.json, summary.md)",
                notable.len() - CHANGES_SHOWN
            );
        }
    }
    for rule in &comparison.regressions {
        out.push_str(&fit(&regression_line(rule)));
        out.push('\n');
    }
    out
}

const CHANGE_COLUMNS: [(&str, usize); 6] = [
    ("CONTAINER", 16),
    ("METRIC", 26),
    ("BASELINE", 10),
    ("CURRENT", 10),
    ("CHANGE", 18),
    ("NOISE", 10),
];

fn change_cells(name: &str, change: &MetricChange) -> Vec<String> {
    let relative = change
        .change_percent
        .map_or(String::new(), |p| format!(" {p:+.0}%"));
    vec![
        short_name(name, CHANGE_COLUMNS[0].1),
        change.metric.clone(),
        metric_value(&change.metric, change.baseline),
        metric_value(&change.metric, change.current),
        format!("{}{relative}", metric_change(&change.metric, change.change)),
        metric_noise(&change.metric, change.noise),
    ]
}

/// `PASS rule: largest name +2.1%` or `FAIL rule: reason; name 30 -> 60
/// (+100%)`.
fn regression_line(result: &RegressionResult) -> String {
    let verdict = if result.passed { "PASS" } else { "FAIL" };
    let metric = result.metric.as_str();
    let describe = |c: &RegressionCheck| {
        format!(
            "{} {} -> {}{}",
            short_name(&c.container, 24),
            metric_value(metric, c.baseline),
            metric_value(metric, c.current),
            c.change_percent
                .map_or(String::new(), |p| format!(" ({p:+.1}%)"))
        )
    };
    let mut checks: Vec<&RegressionCheck> = result.containers.iter().collect();
    checks.sort_by(|a, b| {
        (!a.regressed).cmp(&!b.regressed).then(
            (b.current - b.baseline)
                .abs()
                .total_cmp(&(a.current - a.baseline).abs()),
        )
    });
    let shown: Vec<String> = checks
        .iter()
        .filter(|c| result.passed || c.regressed)
        .take(if result.passed { 1 } else { 2 })
        .map(|c| describe(c))
        .collect();
    match (&result.reason, shown.is_empty()) {
        (Some(reason), true) => format!("{verdict} {}: {reason}", result.rule),
        (Some(reason), false) => {
            format!("{verdict} {}: {reason}; {}", result.rule, shown.join(", "))
        }
        (None, _) => format!(
            "{verdict} {}: largest change {}",
            result.rule,
            shown.join(", ")
        ),
    }
}

/// `PASS spec: worst name value` or `FAIL spec: reason; name value, ...`
/// (the containers outside it first).
fn budget_line(budget: &BudgetResult) -> String {
    let mut checks: Vec<&BudgetCheck> = budget.containers.iter().collect();
    // Failures first, then by value, largest first.
    checks.sort_by(|a, b| {
        (a.passed != Some(false))
            .cmp(&(b.passed != Some(false)))
            .then(
                b.value
                    .unwrap_or(f64::MIN)
                    .total_cmp(&a.value.unwrap_or(f64::MIN)),
            )
    });
    let shown: Vec<String> = checks
        .iter()
        .filter(|c| c.value.is_some() && (budget.passed || c.passed == Some(false)))
        .take(if budget.passed { 1 } else { 2 })
        .map(|c| {
            format!(
                "{} {}",
                short_name(&c.container, 24),
                number(c.value.unwrap_or_default())
            )
        })
        .collect();
    let verdict = if budget.passed { "PASS" } else { "FAIL" };
    match (&budget.reason, shown.is_empty()) {
        (Some(reason), true) => format!("{verdict} {}: {reason}", budget.budget),
        (Some(reason), false) => format!(
            "{verdict} {}: {reason}; {}",
            budget.budget,
            shown.join(", ")
        ),
        (None, _) => format!("{verdict} {}: highest {}", budget.budget, shown.join(", ")),
    }
}

/// A number as short as it can be read: integers without decimals.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.abs() >= 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

/// A name cut to `width` in the middle: container names often share their
/// beginning (a project prefix) and differ at the end.
fn short_name(name: &str, width: usize) -> String {
    let count = name.chars().count();
    if count <= width {
        return name.to_string();
    }
    let head = width / 3;
    let tail = width - head - 1;
    let start: String = name.chars().take(head).collect();
    let end: String = name.chars().skip(count - tail).collect();
    format!("{start}…{end}")
}

/// A line cut to the 100 columns the table promises.
fn fit(line: &str) -> String {
    if line.chars().count() <= WIDTH {
        line.to_string()
    } else {
        let mut kept: String = line.chars().take(WIDTH - 1).collect();
        kept.push('…');
        kept
    }
}

const WIDTH: usize = 100;

fn heading(summary: &RunSummary) -> String {
    let window = &summary.window;
    let seconds = (window.to_ns - window.from_ns) as f64 / 1e9;
    let mut text = match &summary.run {
        Some(run) => format!(
            "run {} on {}: {}{}",
            run.id,
            run.host,
            if run.command.is_empty() {
                "(no command)"
            } else {
                &run.command
            },
            run.exit_code
                .map_or(String::new(), |c| format!(", exit code {c}"))
        ),
        None => "window".to_string(),
    };
    let _ = write!(
        text,
        "\n{} for {seconds:.1} s, {} container(s), sampled every {} (requested)",
        rfc3339(window.from_ns),
        summary.containers.len(),
        millis(window.requested_interval_ns as f64 / 1e6)
    );
    text
}

fn cells(c: &ContainerSummary) -> Vec<String> {
    let cpu = c
        .cpu_percent
        .map(|d| format!("{}/{}/{}", percent(d.p50), percent(d.p95), percent(d.max)));
    let throttled = c.throttled_share.map(|share| {
        let time = c.throttled_time_s.map_or(String::new(), |s| {
            if s < 10.0 {
                format!(" {s:.1}s")
            } else {
                format!(" {s:.0}s")
            }
        });
        format!("{:.0}%{time}", share * 100.0)
    });
    let memory = c.mem_used.map(|d| {
        let of_limit = c
            .mem_percent
            .map_or(String::new(), |p| format!(" {:.0}%", p.max));
        format!("{}{of_limit}", bytes(d.max))
    });
    let net = match (c.net_in_bytes, c.net_out_bytes) {
        (Some(rx), Some(tx)) => Some(format!("{}/{}", bytes_short(rx), bytes_short(tx))),
        _ => None,
    };
    vec![
        short_name(&c.container.name, COLUMNS[0].1),
        c.samples.to_string(),
        or_dash(c.interval_ms.map(millis)),
        c.gaps.to_string(),
        or_dash(cpu),
        or_dash(c.cpu_limit_percent.map(|d| percent(d.p95))),
        or_dash(throttled),
        or_dash(memory),
        c.oom_kills.to_string(),
        c.restarts.to_string(),
        or_dash(net),
    ]
}

fn has_between_readings(c: &ContainerSummary) -> bool {
    c.cpu_pressure_percent.is_some()
        || c.memory_pressure_percent.is_some()
        || c.io_pressure_percent.is_some()
        || c.mem_peak_bytes.is_some()
        || c.mem_peak_since_start_bytes.is_some()
}

fn between_cells(c: &ContainerSummary) -> Vec<String> {
    let stall = |d: Option<Distribution>| {
        or_dash(d.map(|d| format!("{}/{}/{}", percent(d.mean), percent(d.p95), percent(d.max))))
    };
    vec![
        short_name(&c.container.name, BETWEEN_COLUMNS[0].1),
        stall(c.cpu_pressure_percent),
        stall(c.memory_pressure_percent),
        stall(c.io_pressure_percent),
        or_dash(c.mem_peak_bytes.map(bytes_short)),
        or_dash(c.mem_peak_since_start_bytes.map(bytes_short)),
    ]
}

fn titles(columns: &[(&str, usize)]) -> String {
    let titles: Vec<String> = columns.iter().map(|(t, _)| t.to_string()).collect();
    row(&titles, columns)
}

fn row(cells: &[String], columns: &[(&str, usize)]) -> String {
    row_aligned(cells, columns, 1)
}

/// A row whose first `left` cells (names) are left-aligned, the numbers
/// after them right-aligned.
fn row_aligned(cells: &[String], columns: &[(&str, usize)], left: usize) -> String {
    let mut line = String::new();
    for (i, (cell, &(_, width))) in cells.iter().zip(columns).enumerate() {
        if i > 0 {
            line.push(' ');
        }
        let cut: String = if cell.chars().count() > width {
            let mut kept: String = cell.chars().take(width - 1).collect();
            kept.push('…');
            kept
        } else {
            cell.clone()
        };
        if i < left {
            let _ = write!(line, "{cut:<width$}");
        } else {
            let _ = write!(line, "{cut:>width$}");
        }
    }
    line.truncate(line.trim_end().len());
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_widest_row_fits_in_100_columns() {
        for columns in [&COLUMNS[..], &BETWEEN_COLUMNS[..], &CHANGE_COLUMNS[..]] {
            let widest: Vec<String> = columns.iter().map(|(_, w)| "x".repeat(*w + 5)).collect();
            assert!(row(&widest, columns).trim_end().chars().count() <= WIDTH);
        }
    }

    #[test]
    fn long_names_keep_their_distinct_end() {
        assert_eq!(
            short_name("dss-test-loadtest-17647-burner", 16),
            "dss-t…647-burner"
        );
        assert_eq!(short_name("web", 16), "web");
    }
}
