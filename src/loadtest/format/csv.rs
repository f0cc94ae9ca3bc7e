//! The summary as CSV: one row per container, one column per number of
//! `summary.json` (a distribution becomes `metric_mean`, `metric_p50`, ...).
//! Compared with a baseline, each number also gets `_baseline`, `_change`,
//! `_change_percent` and `_beyond_noise` columns (empty for a container
//! the baseline does not have).

use serde_json::Value;

use crate::loadtest::compare::BaselineComparison;
use crate::loadtest::recording::Container;
use crate::loadtest::summary::RunSummary;
use crate::loadtest::summary_metric::SummaryMetric;

pub fn render(summary: &RunSummary) -> String {
    let rows: Vec<Vec<(String, String)>> = summary
        .containers
        .iter()
        .map(|c| {
            let mut row = flatten(&serde_json::to_value(c).unwrap_or(Value::Null));
            if let Some(comparison) = &summary.comparison {
                row.extend(change_columns(comparison, &c.container));
            }
            row
        })
        .collect();
    let header: Vec<String> = match rows.first() {
        Some(first) => first.iter().map(|(k, _)| k.clone()).collect(),
        None => return String::new(),
    };
    let mut out = header
        .iter()
        .map(|h| quote(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for row in rows {
        let line: Vec<String> = row.iter().map(|(_, v)| quote(v)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

/// Every scalar of a container's summary, distributions spread into one
/// column per statistic (always present, empty where unknown, so every row
/// has the same columns); tags are left to the JSON.
fn flatten(container: &Value) -> Vec<(String, String)> {
    let mut columns = Vec::new();
    let Some(object) = container.as_object() else {
        return columns;
    };
    for (key, value) in object {
        if key == "tags" {
            continue;
        }
        if crate::loadtest::summary_metric::DISTRIBUTIONS.contains(&key.as_str()) {
            for statistic in crate::loadtest::summary_metric::STATISTICS {
                let cell = value.get(statistic).map_or(String::new(), scalar);
                columns.push((format!("{key}_{statistic}"), cell));
            }
        } else {
            columns.push((key.clone(), scalar(value)));
        }
    }
    // Who first; the numbers follow in the JSON's (alphabetical) order.
    const FIRST: [&str; 5] = ["name", "id", "host", "image", "source"];
    columns.sort_by_key(|(key, _)| FIRST.iter().position(|f| f == key).unwrap_or(FIRST.len()));
    columns
}

/// The comparison's columns for one container, in `SummaryMetric::all`
/// order, for every number whether compared or not.
fn change_columns(comparison: &BaselineComparison, container: &Container) -> Vec<(String, String)> {
    let mut columns = Vec::new();
    for metric in SummaryMetric::all() {
        let column = metric.to_string().replace('.', "_");
        let change = comparison.change(container, &metric.to_string());
        let cells = [
            ("baseline", change.map(|c| c.baseline.to_string())),
            ("change", change.map(|c| c.change.to_string())),
            (
                "change_percent",
                change.and_then(|c| c.change_percent).map(|p| p.to_string()),
            ),
            ("beyond_noise", change.map(|c| c.beyond_noise.to_string())),
        ];
        for (suffix, cell) in cells {
            columns.push((format!("{column}_{suffix}"), cell.unwrap_or_default()));
        }
    }
    columns
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}
