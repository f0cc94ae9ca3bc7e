//! The summary as GitHub-flavoured markdown, for a pull-request comment or
//! a CI job summary: the containers, the budgets, and the comparison with
//! the baseline (changes beyond the noise, regression rules, and every
//! number compared in a collapsed section).
//!
//! Every cell is escaped: a container name or a command can hold `|`, `*`
//! or `<`, and none of them may change the table.

use std::fmt::Write as _;

use crate::loadtest::compare::BaselineComparison;
use crate::loadtest::format::units::{
    bytes, bytes_short, metric_change, metric_noise, metric_value, millis, or_dash, percent,
    rfc3339,
};
use crate::loadtest::summary::{ContainerSummary, RunSummary};

pub fn render(summary: &RunSummary) -> String {
    let mut out = String::new();
    let window = &summary.window;
    match &summary.run {
        Some(run) => {
            let _ = writeln!(
                out,
                "## Load test {} on {}\n\n{}{}",
                cell(&run.id),
                cell(&run.host),
                if run.command.is_empty() {
                    "No command".to_string()
                } else {
                    format!("Command: {}", cell(&run.command))
                },
                run.exit_code
                    .map_or(String::new(), |c| format!(", exit code {c}"))
            );
        }
        None => out.push_str("## Load test window\n"),
    }
    let _ = writeln!(
        out,
        "\nFrom {} for {:.1} s, {} container(s), sampled every {} (requested).\n",
        rfc3339(window.from_ns),
        (window.to_ns - window.from_ns) as f64 / 1e9,
        summary.containers.len(),
        millis(window.requested_interval_ns as f64 / 1e6)
    );
    containers(&mut out, summary);
    budgets(&mut out, summary);
    if let Some(comparison) = &summary.comparison {
        compared(&mut out, comparison);
    }
    out
}

fn containers(out: &mut String, summary: &RunSummary) {
    if summary.containers.is_empty() {
        out.push_str("No container was sampled in this window.\n");
        return;
    }
    out.push_str(
        "| Container | Samples | Gaps | CPU % p50 / p95 / max | % of CPU limit p95 | Throttled | Memory max | % of memory limit | OOM kills | Restarts | Network rx / tx |\n\
         |---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for c in &summary.containers {
        let _ = writeln!(out, "| {} |", row(c).join(" | "));
    }
}

fn row(c: &ContainerSummary) -> Vec<String> {
    vec![
        cell(&c.container.name),
        c.samples.to_string(),
        c.gaps.to_string(),
        or_dash(c.cpu_percent.map(|d| {
            format!(
                "{} / {} / {}",
                percent(d.p50),
                percent(d.p95),
                percent(d.max)
            )
        })),
        or_dash(c.cpu_limit_percent.map(|d| percent(d.p95))),
        or_dash(
            c.throttled_share
                .map(|s| format!("{}%", percent(s * 100.0))),
        ),
        or_dash(c.mem_used.map(|d| bytes(d.max))),
        or_dash(c.mem_percent.map(|d| percent(d.max))),
        c.oom_kills.to_string(),
        c.restarts.to_string(),
        match (c.net_in_bytes, c.net_out_bytes) {
            (Some(rx), Some(tx)) => format!("{} / {}", bytes_short(rx), bytes_short(tx)),
            _ => "-".into(),
        },
    ]
}

fn budgets(out: &mut String, summary: &RunSummary) {
    if summary.budgets.is_empty() {
        return;
    }
    out.push_str("\n### Budgets\n\n| Result | Budget | Detail |\n|---|---|---|\n");
    for budget in &summary.budgets {
        let values: Vec<String> = budget
            .containers
            .iter()
            .filter(|c| c.value.is_some())
            .map(|c| {
                let value = c.value.unwrap_or_default();
                format!("{} {}", c.container, metric_value(&budget.metric, value))
            })
            .collect();
        let detail = match &budget.reason {
            Some(reason) if values.is_empty() => reason.clone(),
            Some(reason) => format!("{reason}: {}", values.join(", ")),
            None => values.join(", "),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            verdict(budget.passed),
            cell(&budget.budget),
            cell(&detail)
        );
    }
}

fn compared(out: &mut String, comparison: &BaselineComparison) {
    let _ = writeln!(
        out,
        "\n### Compared with {}\n\n{} container(s) matched, {} number(s) compared.",
        cell(&comparison.baselines_named()),
        comparison.containers.len(),
        comparison.numbers_compared()
    );
    if !comparison.added.is_empty() {
        let _ = writeln!(out, "Added: {}.", cell(&comparison.added.join(", ")));
    }
    if !comparison.removed.is_empty() {
        let _ = writeln!(out, "Removed: {}.", cell(&comparison.removed.join(", ")));
    }
    if !comparison.regressions.is_empty() {
        out.push_str("\n| Result | Regression rule | Detail |\n|---|---|---|\n");
        for rule in &comparison.regressions {
            let values: Vec<String> = rule
                .containers
                .iter()
                .map(|c| {
                    format!(
                        "{} {} → {}{}",
                        c.container,
                        metric_value(&rule.metric, c.baseline),
                        metric_value(&rule.metric, c.current),
                        c.change_percent
                            .map_or(String::new(), |p| format!(" ({p:+.1}%)"))
                    )
                })
                .collect();
            let detail = match &rule.reason {
                Some(reason) => format!("{reason}; {}", values.join(", ")),
                None => values.join(", "),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                verdict(rule.passed),
                cell(&rule.rule),
                cell(detail.trim_end_matches("; "))
            );
        }
    }
    let notable = comparison.beyond_noise();
    if notable.is_empty() {
        out.push_str("\nNo change beyond the noise.\n");
    } else {
        out.push_str("\n#### Changes beyond the noise\n\n");
        out.push_str(CHANGE_HEADER);
        for (container, change) in &notable {
            change_row(out, &container.name, change);
        }
    }
    out.push_str("\n<details><summary>Every number compared</summary>\n\n");
    out.push_str(CHANGE_HEADER);
    for container in &comparison.containers {
        for change in &container.metrics {
            change_row(out, &container.name, change);
        }
    }
    out.push_str("\n</details>\n");
}

const CHANGE_HEADER: &str =
    "| Container | Metric | Baseline | Current | Change | Change % | Noise |\n\
                             |---|---|--:|--:|--:|--:|--:|\n";

fn change_row(out: &mut String, name: &str, change: &crate::loadtest::compare::MetricChange) {
    let metric = &change.metric;
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} |",
        cell(name),
        cell(metric),
        cell(&metric_value(metric, change.baseline)),
        cell(&metric_value(metric, change.current)),
        cell(&metric_change(metric, change.change)),
        or_dash(change.change_percent.map(|p| format!("{p:+.1}%"))),
        cell(&metric_noise(metric, change.noise)),
    );
}

fn verdict(passed: bool) -> &'static str {
    if passed {
        "✅ pass"
    } else {
        "❌ FAIL"
    }
}

/// Text that stays one table cell of plain text: markdown's punctuation and
/// HTML escaped, line breaks made spaces.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            // A forge links `@name` and `#12` in text, escaped or not: a
            // zero-width space after the sign keeps them plain.
            '@' | '#' => {
                out.push(c);
                out.push('\u{200B}');
            }
            // Emphasis, code, links, strikethrough and the cell's end.
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_escape_what_markdown_would_read() {
        assert_eq!(cell("a|b"), "a\\|b");
        assert_eq!(cell("<script>"), "&lt;script&gt;");
        assert_eq!(cell("web_1*"), "web\\_1\\*");
        assert_eq!(cell("two\nlines"), "two lines");
        assert_eq!(cell("@team #12"), "@\u{200B}team #\u{200B}12");
    }
}
