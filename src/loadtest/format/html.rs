//! `report.html`: one self-contained page (inline CSS and SVG, no script,
//! no fonts, no request of any kind: its Content-Security-Policy forbids
//! them) with the budgets, the summary table, and per container its charts
//! and events.

use std::fmt::Write as _;

use crate::loadtest::format::charts::{charts_for, draw};
use crate::loadtest::format::units::{bytes, millis, or_dash, percent, rfc3339};
use crate::loadtest::recording::{ContainerSeries, Recording};
use crate::loadtest::summary::{ContainerSummary, Distribution, RunSummary};

const STYLE: &str = "
body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right}
td:first-child,th:first-child{text-align:left}.pass{color:#1a7f37;font-weight:bold}.fail{color:#c62828;font-weight:bold}
.charts{display:grid;grid-template-columns:repeat(2,560px);gap:8px}figure{margin:0}
.events{font-size:.85em;color:#555}";

pub fn render(summary: &RunSummary, recording: &Recording) -> String {
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
    page.push_str(&table(summary));
    let span_s = (summary.window.to_ns - summary.window.from_ns) as f64 / 1e9;
    for container in &summary.containers {
        let who = &container.container;
        let Some(series) = recording
            .containers
            .get(&(who.host.clone(), who.id.clone()))
        else {
            continue;
        };
        page.push_str(&section(container, series, summary, span_s));
    }
    page.push_str("</body></html>\n");
    page
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

fn table(summary: &RunSummary) -> String {
    let mut text = String::from(
        "<h2>Summary</h2>\n<table><tr><th>container</th><th>samples</th><th>every</th><th>gaps</th>\
         <th>CPU % p50</th><th>p95</th><th>max</th><th>of limit p50</th><th>p95</th><th>max</th>\
         <th>throttled</th><th>throttled time</th><th>memory max</th><th>of limit</th>\
         <th>OOM kills</th><th>restarts</th><th>net rx</th><th>net tx</th><th>peak rx/s</th><th>peak tx/s</th>\
         <th>block read</th><th>block write</th><th>pids max</th>\
         <th>stalled on CPU mean/p95/max</th><th>on memory</th><th>on I/O</th>\
         <th>peak memory in run</th><th>since start</th></tr>\n",
    );
    for c in &summary.containers {
        let [cpu50, cpu95, cpumax] = stats(c.cpu_percent);
        let [lim50, lim95, limmax] = stats(c.cpu_limit_percent);
        let cells = [
            escape(&c.container.name),
            c.samples.to_string(),
            or_dash(c.interval_ms.map(millis)),
            c.gaps.to_string(),
            cpu50,
            cpu95,
            cpumax,
            lim50,
            lim95,
            limmax,
            or_dash(c.throttled_share.map(|s| format!("{:.1}%", s * 100.0))),
            or_dash(c.throttled_time_s.map(|s| format!("{s:.2} s"))),
            or_dash(c.mem_used.map(|d| bytes(d.max))),
            or_dash(c.mem_percent.map(|d| format!("{}%", percent(d.max)))),
            c.oom_kills.to_string(),
            c.restarts.to_string(),
            or_dash(c.net_in_bytes.map(bytes)),
            or_dash(c.net_out_bytes.map(bytes)),
            or_dash(c.net_in_peak_rate.map(bytes)),
            or_dash(c.net_out_peak_rate.map(bytes)),
            or_dash(c.blkio_read_bytes.map(bytes)),
            or_dash(c.blkio_write_bytes.map(bytes)),
            or_dash(c.pids_max.map(|p| format!("{p:.0}"))),
            stall(c.cpu_pressure_percent),
            stall(c.memory_pressure_percent),
            stall(c.io_pressure_percent),
            or_dash(c.mem_peak_bytes.map(bytes)),
            or_dash(c.mem_peak_since_start_bytes.map(bytes)),
        ];
        let _ = writeln!(
            text,
            "<tr data-container=\"{}\"><td>{}</td></tr>",
            escape(&c.container.name),
            cells.join("</td><td>")
        );
    }
    text.push_str("</table>\n");
    text
}

fn section(
    container: &ContainerSummary,
    series: &ContainerSeries,
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
    for chart in charts_for(series, start) {
        let svg = draw(&chart, span_s, &events)
            .unwrap_or_else(|e| format!("<p>chart not drawn: {}</p>", escape(&e)));
        let _ = writeln!(
            text,
            "<figure data-container=\"{}\" data-metric=\"{}\">{svg}</figure>",
            escape(&who.name),
            chart.metric
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
        let page = render(&summary, &recording);
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
