//! `report.html`: one self-contained page (inline CSS and SVG, no script,
//! no fonts, no request of any kind: its Content-Security-Policy forbids
//! them) with the budgets, the summary tables, the comparison with a
//! baseline, and per container its charts and events.
//!
//! It fits a 1200-pixel window without scrolling sideways: the summary is
//! two tables of a dozen columns, and a baseline's changes sit under the
//! values they change.

use std::fmt::Write as _;

use crate::loadtest::compare::{keys, BaselineComparison, ComparedRun, MetricChange};
use crate::loadtest::format::charts::{charts_for, css, draw, Chart};
use crate::loadtest::format::units::{
    bytes, metric_change, metric_noise, metric_value, millis, or_dash, percent, rfc3339,
};
use crate::loadtest::recording::Recording;
use crate::loadtest::summary::{ContainerSummary, Distribution, RunSummary};

const STYLE: &str = "
body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1140px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.8em}td,th{border:1px solid #ddd;padding:.25em .4em;text-align:right}
td:first-child,th:first-child{text-align:left;overflow-wrap:anywhere}.pass{color:#1a7f37;font-weight:bold}.fail{color:#c62828;font-weight:bold}
.change{display:block;font-size:.85em;color:#777}.beyond{color:#b35c00;font-weight:bold}
.charts{display:grid;grid-template-columns:repeat(2,560px);gap:8px}figure{margin:0}
figcaption{font-size:.8em;line-height:1.5}figcaption b{font-size:1.1em;margin-right:.6em}
.key{margin-right:.8em;white-space:nowrap}.key i{display:inline-block;width:14px;height:3px;margin-right:4px;vertical-align:middle}
.events{font-size:.85em;color:#555}";

pub fn render(
    summary: &RunSummary,
    recording: &Recording,
    baseline: Option<&ComparedRun>,
) -> String {
    let mut page = String::with_capacity(1 << 20);
    let title = match &summary.run {
        Some(run) => format!("Load test {}", run.id),
        None => "Load test window".to_string(),
    };
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    page.push_str(&overview(summary));
    page.push_str(&budgets(summary));
    page.push_str(&tables(summary));
    if let Some(comparison) = &summary.comparison {
        page.push_str(&compared(comparison));
    }
    let span_s = (summary.window.to_ns - summary.window.from_ns) as f64 / 1e9;
    let keys = keys(summary);
    let baseline_keys = baseline.map(|b| keys_of(&b.summary)).unwrap_or_default();
    for (container, key) in summary.containers.iter().zip(&keys) {
        let who = &container.container;
        let Some(series) = recording
            .containers
            .get(&(who.host.clone(), who.id.clone()))
        else {
            continue;
        };
        let mut charts = charts_for(series, summary.window.from_ns, host_memory(summary));
        let matched = baseline_keys
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, i)| *i);
        if let Some(before) = baseline
            .zip(matched)
            .and_then(|(b, i)| baseline_charts(b, i))
        {
            for chart in &mut charts {
                chart.overlay(&before);
            }
        }
        page.push_str(&section(container, &charts, summary, span_s));
    }
    page.push_str("</body></html>\n");
    page
}

fn host_memory(summary: &RunSummary) -> Option<f64> {
    summary
        .run
        .as_ref()
        .and_then(|r| r.host_memory_bytes)
        .map(|m| m as f64)
}

/// A run's matching keys with the index of their container.
fn keys_of(summary: &RunSummary) -> Vec<(String, usize)> {
    keys(summary).into_iter().zip(0..).collect()
}

/// The charts of the baseline's container `index` (the one matched), by
/// seconds since the baseline's own start.
fn baseline_charts(baseline: &ComparedRun, index: usize) -> Option<Vec<Chart>> {
    let who = &baseline.summary.containers.get(index)?.container;
    let series = baseline
        .recording
        .as_ref()?
        .containers
        .get(&(who.host.clone(), who.id.clone()))?;
    Some(charts_for(
        series,
        baseline.summary.window.from_ns,
        host_memory(&baseline.summary),
    ))
}

fn overview(summary: &RunSummary) -> String {
    let window = &summary.window;
    let mut text = String::from("<p>");
    if let Some(run) = &summary.run {
        let _ = write!(
            text,
            "Command <code>{}</code> on <b>{}</b>{}.<br>",
            escape(if run.command.is_empty() {
                "(none)"
            } else {
                &run.command
            }),
            escape(&run.host),
            run.exit_code
                .map_or(String::new(), |c| format!(", exit code {c}"))
        );
    }
    let _ = writeln!(
        text,
        "From {} to {} ({:.1} s); requested interval {}; {} container(s).</p>",
        rfc3339(window.from_ns),
        rfc3339(window.to_ns),
        (window.to_ns - window.from_ns) as f64 / 1e9,
        millis(window.requested_interval_ns as f64 / 1e6),
        summary.containers.len()
    );
    text
}

fn budgets(summary: &RunSummary) -> String {
    if summary.budgets.is_empty() {
        return String::new();
    }
    let mut text = String::from(
        "<h2>Budgets</h2>\n<table><tr><th>budget</th><th>result</th><th>detail</th></tr>\n",
    );
    for budget in &summary.budgets {
        let values: Vec<String> = budget
            .containers
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    escape(&c.container),
                    c.value.map_or("-".into(), |v| format!("{v:.3}"))
                )
            })
            .collect();
        let _ = writeln!(
            text,
            "<tr><td><code>{}</code></td><td class=\"{}\">{}</td><td>{}{}</td></tr>",
            escape(&budget.budget),
            if budget.passed { "pass" } else { "fail" },
            if budget.passed { "PASS" } else { "FAIL" },
            budget
                .reason
                .as_deref()
                .map_or(String::new(), |r| format!("{}; ", escape(r))),
            values.join(", ")
        );
    }
    text.push_str("</table>\n");
    text
}

fn stats(d: Option<Distribution>) -> [String; 3] {
    match d {
        Some(d) => [percent(d.p50), percent(d.p95), percent(d.max)],
        None => ["-".into(), "-".into(), "-".into()],
    }
}

/// A share of time stalled, as `mean / p95 / max %`.
fn stall(distribution: Option<Distribution>) -> String {
    or_dash(distribution.map(|d| {
        format!(
            "{} / {} / {}%",
            percent(d.mean),
            percent(d.p95),
            percent(d.max)
        )
    }))
}

/// The summary as two tables, so neither is wider than the page: CPU and
/// memory, then I/O, processes and stalls. Compared with a baseline, each
/// value has its change under it.
fn tables(summary: &RunSummary) -> String {
    type Cell = fn(&ContainerSummary) -> String;
    const FIRST: [(&str, Option<&str>, Cell); 12] = [
        ("samples", Some("samples"), |c| c.samples.to_string()),
        ("every", None, |c| or_dash(c.interval_ms.map(millis))),
        ("gaps", Some("gaps"), |c| c.gaps.to_string()),
        ("CPU % p50 / p95 / max", Some("cpu_percent.p95"), |c| {
            triple(c.cpu_percent)
        }),
        (
            "of CPU limit p50 / p95 / max",
            Some("cpu_limit_percent.p95"),
            |c| triple(c.cpu_limit_percent),
        ),
        ("throttled", Some("throttled_share"), |c| {
            or_dash(c.throttled_share.map(|s| format!("{:.1}%", s * 100.0)))
        }),
        ("throttled time", Some("throttled_time_s"), |c| {
            or_dash(c.throttled_time_s.map(|s| format!("{s:.2} s")))
        }),
        ("memory max", Some("mem_used.max"), |c| {
            or_dash(c.mem_used.map(|d| bytes(d.max)))
        }),
        ("of memory limit", Some("mem_percent.max"), |c| {
            or_dash(c.mem_percent.map(|d| format!("{}%", percent(d.max))))
        }),
        ("memory limit", Some("mem_limit_bytes"), |c| {
            or_dash(c.mem_limit_bytes.map(bytes))
        }),
        ("OOM kills", Some("oom_kills"), |c| c.oom_kills.to_string()),
        ("restarts", Some("restarts"), |c| c.restarts.to_string()),
    ];
    const SECOND: [(&str, Option<&str>, Cell); 10] = [
        ("net rx / tx", Some("net_in_bytes"), |c| {
            pair(c.net_in_bytes, c.net_out_bytes, "")
        }),
        ("peak rx / tx", Some("net_in_peak_rate"), |c| {
            pair(c.net_in_peak_rate, c.net_out_peak_rate, "/s")
        }),
        ("block read / write", Some("blkio_read_bytes"), |c| {
            pair(c.blkio_read_bytes, c.blkio_write_bytes, "")
        }),
        ("pids max", Some("pids_max"), |c| {
            or_dash(c.pids_max.map(|p| format!("{p:.0}")))
        }),
        (
            "stalled on CPU mean / p95 / max",
            Some("cpu_pressure_percent.mean"),
            |c| stall(c.cpu_pressure_percent),
        ),
        ("on memory", Some("memory_pressure_percent.mean"), |c| {
            stall(c.memory_pressure_percent)
        }),
        ("on I/O", Some("io_pressure_percent.mean"), |c| {
            stall(c.io_pressure_percent)
        }),
        ("peak memory in run", Some("mem_peak_bytes"), |c| {
            or_dash(c.mem_peak_bytes.map(bytes))
        }),
        ("since start", Some("mem_peak_since_start_bytes"), |c| {
            or_dash(c.mem_peak_since_start_bytes.map(bytes))
        }),
        ("first sample", None, |c| rfc3339(c.first_sample_ns)),
    ];
    let mut text = String::from("<h2>Summary</h2>\n");
    for columns in [&FIRST[..], &SECOND[..]] {
        text.push_str("<table><tr><th>container</th>");
        for (title, _, _) in columns {
            let _ = write!(text, "<th>{title}</th>");
        }
        text.push_str("</tr>\n");
        for c in &summary.containers {
            let _ = write!(
                text,
                "<tr data-container=\"{}\"><td>{}</td>",
                escape(&c.container.name),
                escape(&c.container.name)
            );
            for (_, metric, cell) in columns {
                let change = summary
                    .comparison
                    .as_ref()
                    .zip(*metric)
                    .and_then(|(comparison, metric)| comparison.change(&c.container, metric));
                let _ = write!(text, "<td>{}{}</td>", cell(c), change_note(change));
            }
            text.push_str("</tr>\n");
        }
        text.push_str("</table>\n<p></p>\n");
    }
    text
}

fn triple(d: Option<Distribution>) -> String {
    let [p50, p95, max] = stats(d);
    if p50 == "-" {
        p50
    } else {
        format!("{p50} / {p95} / {max}")
    }
}

fn pair(a: Option<f64>, b: Option<f64>, unit: &str) -> String {
    match (a, b) {
        (None, None) => "-".into(),
        _ => format!(
            "{}{unit} / {}{unit}",
            or_dash(a.map(bytes)),
            or_dash(b.map(bytes))
        ),
    }
}

/// A value's change from the baseline, under it; marked when it is beyond
/// the noise.
fn change_note(change: Option<&MetricChange>) -> String {
    let Some(change) = change else {
        return String::new();
    };
    if change.change == 0.0 {
        return "<span class=\"change\" title=\"as in the baseline\">=</span>".into();
    }
    let relative = change
        .change_percent
        .map_or(String::new(), |p| format!(" ({p:+.0}%)"));
    format!(
        "<span class=\"change{}\" title=\"{} against baseline {}\">{}{relative}</span>",
        if change.beyond_noise { " beyond" } else { "" },
        escape(&change.metric),
        escape(&metric_value(&change.metric, change.baseline)),
        escape(&metric_change(&change.metric, change.change))
    )
}

/// The comparison: what was matched, the regression rules, and the
/// changes beyond the noise.
fn compared(comparison: &BaselineComparison) -> String {
    let mut text = format!(
        "<h2>Compared with {}</h2>\n<p>{} container(s) matched, {} number(s) compared.",
        escape(&comparison.baselines_named()),
        comparison.containers.len(),
        comparison.numbers_compared()
    );
    if !comparison.added.is_empty() {
        let _ = write!(text, " Added: {}.", escape(&comparison.added.join(", ")));
    }
    if !comparison.removed.is_empty() {
        let _ = write!(
            text,
            " Removed: {}.",
            escape(&comparison.removed.join(", "))
        );
    }
    text.push_str(" Baseline lines are drawn lighter behind each chart.</p>\n");
    if !comparison.regressions.is_empty() {
        text.push_str("<table><tr><th>regression rule</th><th>result</th><th>detail</th></tr>\n");
        for rule in &comparison.regressions {
            let values: Vec<String> = rule
                .containers
                .iter()
                .map(|c| {
                    format!(
                        "{} {} → {}",
                        escape(&c.container),
                        escape(&metric_value(&rule.metric, c.baseline)),
                        escape(&metric_value(&rule.metric, c.current))
                    )
                })
                .collect();
            let _ = writeln!(
                text,
                "<tr><td><code>{}</code></td><td class=\"{}\">{}</td><td>{}{}</td></tr>",
                escape(&rule.rule),
                if rule.passed { "pass" } else { "fail" },
                if rule.passed { "PASS" } else { "FAIL" },
                rule.reason
                    .as_deref()
                    .map_or(String::new(), |r| format!("{}; ", escape(r))),
                values.join(", ")
            );
        }
        text.push_str("</table>\n");
    }
    let notable = comparison.beyond_noise();
    if notable.is_empty() {
        text.push_str("<p>No change beyond the noise.</p>\n");
        return text;
    }
    const HEADER: &str = "<table><tr><th>container</th><th>metric</th><th>baseline</th>\
                          <th>current</th><th>change</th><th>noise</th></tr>\n";
    // The largest first; the rest folded, so the charts stay near the top.
    const SHOWN: usize = 10;
    let total = notable.len();
    let _ = write!(
        text,
        "<p>Changes beyond the noise ({total}, the largest first):</p>\n{HEADER}"
    );
    for (i, (container, change)) in notable.into_iter().enumerate() {
        if i == SHOWN {
            let _ = write!(
                text,
                "</table>\n<details><summary>the other {}</summary>\n{HEADER}",
                total - SHOWN
            );
        }
        let metric = &change.metric;
        let _ = writeln!(
            text,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>",
            escape(&container.name),
            escape(metric),
            escape(&metric_value(metric, change.baseline)),
            escape(&metric_value(metric, change.current)),
            escape(&metric_change(metric, change.change)),
            change
                .change_percent
                .map_or(String::new(), |p| format!(" ({p:+.1}%)")),
            escape(&metric_noise(metric, change.noise))
        );
    }
    text.push_str("</table>\n");
    if total > SHOWN {
        text.push_str("</details>\n");
    }
    text
}

fn section(
    container: &ContainerSummary,
    charts: &[Chart],
    summary: &RunSummary,
    span_s: f64,
) -> String {
    let who = &container.container;
    let mut text = format!(
        "<h2>{}</h2>\n<p class=\"events\">{} · {} · sampled by {} from {} to {}</p>\n",
        escape(&who.name),
        escape(&who.image),
        escape(&short_id(&who.id)),
        escape(&who.source),
        rfc3339(container.first_sample_ns),
        rfc3339(container.last_sample_ns),
    );
    let start = summary.window.from_ns;
    let events: Vec<_> = summary
        .events
        .iter()
        .filter(|e| e.container_id == who.id)
        .map(|e| ((e.t_ns - start) as f64 / 1e9, e))
        .collect();
    text.push_str("<div class=\"charts\">\n");
    for chart in charts {
        let svg = draw(chart, span_s, &events)
            .unwrap_or_else(|e| format!("<p>chart not drawn: {}</p>", escape(&e)));
        let _ = writeln!(
            text,
            "<figure data-container=\"{}\" data-metric=\"{}\">{}{svg}</figure>",
            escape(&who.name),
            chart.metric,
            caption(chart)
        );
    }
    text.push_str("</div>\n");
    if !events.is_empty() {
        text.push_str("<p class=\"events\">Events: ");
        let list: Vec<String> = events
            .iter()
            .map(|(t, e)| format!("{:.1} s {}", t, escape(&e.action)))
            .collect();
        text.push_str(&list.join(", "));
        text.push_str("</p>\n");
    }
    text
}

/// A chart's title and legend, above it: a legend inside the plot would
/// cover the lines it names.
fn caption(chart: &Chart) -> String {
    let mut text = format!("<figcaption><b>{}</b>", escape(&chart.title));
    for (label, color) in chart.legend() {
        let _ = write!(
            text,
            "<span class=\"key\"><i style=\"background:{}\"></i>{}</span>",
            css(color),
            escape(&label)
        );
    }
    text.push_str("</figcaption>");
    text
}

/// A container id as `docker ps` shows it: its first 12 characters (any
/// id read from a database or a file, cut by characters, not bytes).
fn short_id(id: &str) -> String {
    id.chars().take(12).collect()
}

/// Text from a point made safe in HTML text and in attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadtest::recording::{
        Container, ContainerSeries, EventMark, Metric, RunRecord, Sample,
    };
    use crate::loadtest::summary::Window;

    /// Every value a point carries can hold markup and any character: the
    /// page shows it as text, and cuts it by characters.
    #[test]
    fn values_from_points_are_escaped_and_cut_by_characters() {
        let hostile = "é<script>alert(1)</script>\"'&ü";
        let container = Container {
            id: "aéééééééééé<b>é".into(),
            name: hostile.into(),
            image: hostile.into(),
            host: hostile.into(),
            source: hostile.into(),
            ..Container::default()
        };
        let samples = (0..3)
            .map(|i| {
                let mut sample = Sample::new(i * 1_000_000_000);
                sample.set(Metric::CpuPercent, 10.0);
                sample
            })
            .collect();
        let mut recording = Recording::default();
        recording.containers.insert(
            (container.host.clone(), container.id.clone()),
            ContainerSeries {
                container: container.clone(),
                samples,
            },
        );
        recording.events.push(EventMark {
            t_ns: 1_000_000_000,
            container_id: container.id.clone(),
            container_name: hostile.into(),
            action: hostile.into(),
            message: hostile.into(),
        });
        let run = RunRecord {
            id: hostile.into(),
            host: hostile.into(),
            command: hostile.into(),
            start_ns: 0,
            end_ns: 2_000_000_000,
            ..RunRecord::default()
        };
        let window = Window {
            from_ns: 0,
            to_ns: 2_000_000_000,
            requested_interval_ns: 1_000_000_000,
        };
        let summary = RunSummary::compute(&recording, Some(run), window, &[], &[]);
        let page = render(&summary, &recording, None);
        assert!(
            !page.contains("<script>") && !page.contains("é<b>"),
            "{page}"
        );
        assert!(
            page.contains("aéééééééééé&lt;"),
            "the id is cut to 12 characters"
        );
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;ü"));
    }
}
