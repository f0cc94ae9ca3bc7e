//! The charts of `report.html`, drawn as SVG with `plotters`.
//!
//! A run of 15 minutes at 100 ms has 9,000 samples per container, more than
//! a chart has pixels: samples are gathered into time buckets and each
//! bucket is drawn as its mean with the band from its minimum to its
//! maximum, so a one-sample peak still shows.
//!
//! The title and legend are the page's, above the picture (`Chart::legend`),
//! so no legend ever covers a line; a limit always shows, with room above
//! it; a baseline run is drawn behind, lighter, by seconds since its start.

use plotters::prelude::*;

use crate::loadtest::recording::{ContainerSeries, EventMark, Metric, Sample};
use crate::loadtest::summary::{counter_growth, readings};

pub const WIDTH: u32 = 560;
pub const HEIGHT: u32 = 210;
/// Buckets across a chart: about one per two pixels of plot area.
const BUCKETS: usize = 240;

/// One line of a chart: per-sample values against seconds into the window.
pub struct Line {
    pub label: &'static str,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
}

/// A chart's content before drawing.
pub struct Chart {
    /// `cpu`, `cpu_limit`, `memory`, `throttled` or `network`.
    pub metric: &'static str,
    pub title: String,
    pub unit: &'static str,
    pub lines: Vec<Line>,
    /// Horizontal reference lines (a limit), with their label.
    pub limits: Vec<(f64, String)>,
    /// The same lines of a baseline run, drawn lighter behind these.
    pub baseline: Vec<Line>,
}

impl Chart {
    /// What the legend shows: each line, the limits, and the baseline.
    pub fn legend(&self) -> Vec<(String, RGBColor)> {
        let mut entries: Vec<(String, RGBColor)> = self
            .lines
            .iter()
            .map(|line| (line.label.to_string(), line.color))
            .collect();
        entries.extend(self.limits.iter().map(|(_, label)| (label.clone(), LIMIT)));
        entries.extend(
            self.baseline
                .iter()
                .map(|line| (format!("baseline {}", line.label), lighter(line.color))),
        );
        entries
    }

    /// Takes the lines of the same chart of a baseline run.
    pub fn overlay(&mut self, baseline: &[Chart]) {
        if let Some(same) = baseline.iter().find(|c| c.metric == self.metric) {
            self.baseline = same
                .lines
                .iter()
                .map(|line| Line {
                    label: line.label,
                    color: lighter(line.color),
                    points: line.points.clone(),
                })
                .collect();
        }
    }
}

/// A colour halfway to white: a baseline's line.
fn lighter(color: RGBColor) -> RGBColor {
    let half = |c: u8| c + (255 - c) / 2;
    RGBColor(half(color.0), half(color.1), half(color.2))
}

/// A colour as CSS takes it.
pub fn css(color: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", color.0, color.1, color.2)
}

const CPU: RGBColor = RGBColor(31, 119, 180);
const LIMIT: RGBColor = RGBColor(214, 39, 40);
const MEMORY: RGBColor = RGBColor(44, 160, 44);
const THROTTLED: RGBColor = RGBColor(255, 127, 14);
const RX: RGBColor = RGBColor(148, 103, 189);
const TX: RGBColor = RGBColor(140, 86, 75);
const EVENT: RGBColor = RGBColor(120, 120, 120);

/// The charts of one container: CPU, memory and network for every one;
/// CPU of its limit and throttling where it has a CPU limit. A memory
/// limit at or above `host_memory` is no limit (the engine reports the
/// host's memory for a container without one).
pub fn charts_for(
    series: &ContainerSeries,
    window_start_ns: i64,
    host_memory: Option<f64>,
) -> Vec<Chart> {
    let at = |s: &Sample| (s.t_ns - window_start_ns) as f64 / 1e9;
    let values = |metric: Metric| -> Vec<(f64, f64)> {
        series
            .samples
            .iter()
            .filter_map(|s| Some((at(s), s.get(metric)?)))
            .collect()
    };
    let last = |metric: Metric| series.samples.iter().rev().find_map(|s| s.get(metric));
    let limit_cores = last(Metric::CpuLimitCores);
    let mut charts = vec![Chart {
        metric: "cpu",
        title: "CPU %".into(),
        unit: "%",
        lines: vec![Line {
            label: "CPU %",
            color: CPU,
            points: values(Metric::CpuPercent),
        }],
        limits: limit_cores
            .map(|cores| vec![(cores * 100.0, format!("limit {cores} CPUs"))])
            .unwrap_or_default(),
        baseline: Vec::new(),
    }];
    if limit_cores.is_some() {
        charts.push(Chart {
            metric: "cpu_limit",
            title: "CPU % of its limit".into(),
            unit: "%",
            lines: vec![Line {
                label: "% of limit",
                color: CPU,
                points: values(Metric::CpuLimitPercent),
            }],
            limits: vec![(100.0, "limit".into())],
            baseline: Vec::new(),
        });
        charts.push(Chart {
            metric: "throttled",
            title: "Throttled share of CFS periods".into(),
            unit: "%",
            lines: vec![Line {
                label: "throttled %",
                color: THROTTLED,
                points: throttled_share(series, window_start_ns),
            }],
            limits: Vec::new(),
            baseline: Vec::new(),
        });
    }
    let mib = 1024.0 * 1024.0;
    let used: Vec<(f64, f64)> = values(Metric::MemUsed)
        .into_iter()
        .map(|(t, v)| (t, v / mib))
        .collect();
    let limit = last(Metric::MemLimit)
        .filter(|limit| host_memory.is_none_or(|host| *limit < host))
        .map(|limit| limit / mib);
    let most_used = used.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let mut title = "Memory used (MiB)".to_string();
    let limits = match limit {
        // Without the host's memory (a window with no run record), a
        // limit far above the use may be the host's memory: drawn, it
        // would flatten the line to the axis, so it goes into the title.
        Some(limit) if host_memory.is_none() && limit > 4.0 * most_used => {
            title = format!("Memory used (MiB; limit or host memory {limit:.0} MiB)");
            Vec::new()
        }
        Some(limit) => vec![(limit, format!("limit {limit:.0} MiB"))],
        None => Vec::new(),
    };
    charts.push(Chart {
        metric: "memory",
        title,
        unit: "MiB",
        lines: vec![Line {
            label: "used",
            color: MEMORY,
            points: used,
        }],
        limits,
        baseline: Vec::new(),
    });
    charts.push(Chart {
        metric: "network",
        title: "Network (KiB/s)".into(),
        unit: "KiB/s",
        lines: vec![
            Line {
                label: "received",
                color: RX,
                points: rate(series, Metric::NetIn, window_start_ns, 1024.0),
            },
            Line {
                label: "sent",
                color: TX,
                points: rate(series, Metric::NetOut, window_start_ns, 1024.0),
            },
        ],
        limits: Vec::new(),
        baseline: Vec::new(),
    });
    charts
}

/// A counter's rate between consecutive samples, over the real time
/// between them, divided by `scale`.
fn rate(series: &ContainerSeries, metric: Metric, start_ns: i64, scale: f64) -> Vec<(f64, f64)> {
    readings(&series.samples, metric)
        .windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| {
            let grown = counter_growth(w[0].1, w[1].1);
            let seconds = (w[1].0 - w[0].0) as f64 / 1e9;
            ((w[1].0 - start_ns) as f64 / 1e9, grown / seconds / scale)
        })
        .collect()
}

/// Throttled periods over periods between consecutive samples, in %.
fn throttled_share(series: &ContainerSeries, start_ns: i64) -> Vec<(f64, f64)> {
    let points: Vec<(i64, f64, f64)> = series
        .samples
        .iter()
        .filter_map(|s| {
            Some((
                s.t_ns,
                s.get(Metric::Periods)?,
                s.get(Metric::ThrottledPeriods)?,
            ))
        })
        .collect();
    points
        .windows(2)
        .filter_map(|w| {
            let periods = w[1].1 - w[0].1;
            let throttled = w[1].2 - w[0].2;
            (periods > 0.0 && throttled >= 0.0).then(|| {
                (
                    (w[1].0 - start_ns) as f64 / 1e9,
                    throttled / periods * 100.0,
                )
            })
        })
        .collect()
}

/// A bucket of samples: its time (the middle), minimum, maximum and mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub t: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

/// Gathers points (sorted by time) into at most `count` equal time buckets
/// over `[0, span]`; empty buckets are left out, so a gap stays visible as
/// a straight join rather than invented values.
pub fn envelope(points: &[(f64, f64)], span: f64, count: usize) -> Vec<Bucket> {
    if points.len() <= count || span <= 0.0 {
        return points
            .iter()
            .map(|&(t, v)| Bucket {
                t,
                min: v,
                max: v,
                mean: v,
            })
            .collect();
    }
    let width = span / count as f64;
    let mut buckets: Vec<Bucket> = Vec::with_capacity(count);
    let mut current: Option<(usize, f64, f64, f64, usize)> = None;
    let mut close = |(index, min, max, sum, n): (usize, f64, f64, f64, usize)| {
        buckets.push(Bucket {
            t: (index as f64 + 0.5) * width,
            min,
            max,
            mean: sum / n as f64,
        })
    };
    for &(t, v) in points {
        let index = ((t / width) as usize).min(count - 1);
        current = match current {
            Some((i, min, max, sum, n)) if i == index => {
                Some((i, min.min(v), max.max(v), sum + v, n + 1))
            }
            Some(done) => {
                close(done);
                Some((index, v, v, v, 1))
            }
            None => Some((index, v, v, v, 1)),
        };
    }
    if let Some(done) = current {
        close(done);
    }
    buckets
}

/// The top of a chart's scale: room above the highest point, and a limit
/// never higher than four fifths of the way up, so a line held at its
/// limit is seen running along it, not along the edge.
pub fn scale_top(highest_point: f64, highest_limit: f64) -> f64 {
    let top = (highest_point * 1.1).max(highest_limit * 1.25);
    if top > 0.0 {
        top
    } else {
        1.0
    }
}

/// Draws a chart as an SVG document of `WIDTH` x `HEIGHT`, with the
/// container's events as labelled vertical markers (title and legend are
/// the page's).
pub fn draw(chart: &Chart, span_s: f64, events: &[(f64, &EventMark)]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let span = span_s.max(0.001);
        let buckets: Vec<(&Line, Vec<Bucket>)> = chart
            .lines
            .iter()
            .map(|line| (line, envelope(&line.points, span_s, BUCKETS)))
            .collect();
        // The baseline within this run's span, by seconds since its start.
        let baseline: Vec<(&Line, Vec<Bucket>)> = chart
            .baseline
            .iter()
            .map(|line| {
                let within: Vec<(f64, f64)> = line
                    .points
                    .iter()
                    .copied()
                    .filter(|(t, _)| *t <= span)
                    .collect();
                (line, envelope(&within, span_s, BUCKETS))
            })
            .collect();
        let highest_point = buckets
            .iter()
            .chain(&baseline)
            .flat_map(|(_, b)| b.iter().map(|b| b.max))
            .fold(0.0_f64, f64::max);
        let highest_limit = chart.limits.iter().map(|(v, _)| *v).fold(0.0_f64, f64::max);
        let top = scale_top(highest_point, highest_limit);
        let mut plot = ChartBuilder::on(&root)
            .margin(8)
            .margin_top(12)
            .x_label_area_size(30)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..span, 0.0..top)
            .map_err(|e| e.to_string())?;
        plot.configure_mesh()
            .x_desc("seconds into the run")
            .light_line_style(RGBColor(238, 238, 238))
            .draw()
            .map_err(|e| e.to_string())?;
        for (value, _) in &chart.limits {
            plot.draw_series(LineSeries::new(
                [(0.0, *value), (span, *value)],
                LIMIT.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
        }
        for (t, event) in events {
            let color = if event.action.starts_with("oom") {
                LIMIT
            } else {
                EVENT
            };
            plot.draw_series(std::iter::once(PathElement::new(
                [(*t, 0.0), (*t, top)],
                color.stroke_width(1),
            )))
            .map_err(|e| e.to_string())?;
            plot.draw_series(std::iter::once(Text::new(
                event.action.clone(),
                (*t, top * 0.97),
                ("sans-serif", 11).into_font().color(&color),
            )))
            .map_err(|e| e.to_string())?;
        }
        for (line, buckets) in &baseline {
            plot.draw_series(LineSeries::new(
                buckets.iter().map(|b| (b.t, b.mean)),
                line.color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        }
        for (line, buckets) in &buckets {
            let band: Vec<(f64, f64)> = buckets
                .iter()
                .map(|b| (b.t, b.max))
                .chain(buckets.iter().rev().map(|b| (b.t, b.min)))
                .collect();
            if band.len() > 2 {
                plot.draw_series(std::iter::once(Polygon::new(
                    band,
                    line.color.mix(0.25).filled(),
                )))
                .map_err(|e| e.to_string())?;
            }
            plot.draw_series(LineSeries::new(
                buckets.iter().map(|b| (b.t, b.mean)),
                line.color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_sample_peak_survives_downsampling() {
        // 9,000 samples at 100 ms, one of them a spike.
        let mut points: Vec<(f64, f64)> = (0..9000).map(|i| (i as f64 * 0.1, 10.0)).collect();
        points[4321].1 = 95.0;
        let buckets = envelope(&points, 900.0, BUCKETS);
        assert!(buckets.len() <= BUCKETS);
        assert_eq!(buckets.iter().map(|b| b.max).fold(0.0, f64::max), 95.0);
        assert!(buckets.iter().all(|b| b.min == 10.0));
    }

    #[test]
    fn a_limit_always_has_room_above_it() {
        // A burner at its limit of 50: the limit sits at most 4/5 up.
        assert!(50.0 / scale_top(51.0, 50.0) <= 0.8);
        // Far below its limit (60 MiB of 96): the limit is still on the scale.
        assert!(scale_top(60.0, 96.0) > 96.0);
        assert_eq!(scale_top(0.0, 0.0), 1.0);
    }

    #[test]
    fn few_samples_are_drawn_as_they_are() {
        let points = [(0.0, 1.0), (1.0, 2.0)];
        assert_eq!(envelope(&points, 1.0, BUCKETS).len(), 2);
    }
}
