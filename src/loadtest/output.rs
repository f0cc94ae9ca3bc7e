//! Writing a summary out: the run directory's `summary.json`,
//! `summary.csv`, `summary.md` and `report.html`, or one of them to a file
//! or stdout, and the JUnit file CI reads.

use std::path::{Path, PathBuf};

use crate::loadtest::compare::ComparedRun;
use crate::loadtest::format::{csv, html, junit, markdown, table};
use crate::loadtest::recording::Recording;
use crate::loadtest::summary::RunSummary;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
    Html,
    Markdown,
}

impl Format {
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "table" => Format::Table,
            "json" => Format::Json,
            "csv" => Format::Csv,
            "html" => Format::Html,
            "markdown" => Format::Markdown,
            other => {
                return Err(format!(
                    "--format {other:?}: expected table, json, csv, html or markdown"
                ))
            }
        })
    }
}

/// The summary in `format`; the HTML also draws the samples of
/// `recording` (the points the summary was computed from), with the
/// baseline's drawn behind them.
pub fn render(
    summary: &RunSummary,
    recording: &Recording,
    baseline: Option<&ComparedRun>,
    format: Format,
) -> String {
    match format {
        Format::Table => table::render(summary),
        Format::Json => {
            let mut text = serde_json::to_string_pretty(summary).unwrap_or_default();
            text.push('\n');
            text
        }
        Format::Csv => csv::render(summary),
        Format::Html => html::render(summary, recording, baseline),
        Format::Markdown => markdown::render(summary),
    }
}

/// The first baseline with readings: the one charts draw.
pub fn overlay(baselines: &[ComparedRun]) -> Option<&ComparedRun> {
    baselines.iter().find(|b| b.recording.is_some())
}

/// Writes the budgets and regression rules as JUnit XML.
pub fn write_junit(summary: &RunSummary, path: &Path) -> Result<(), String> {
    std::fs::write(path, junit::render(summary))
        .map_err(|e| format!("cannot write {} (--junit): {e}", path.display()))
}

/// Writes the summary files of a run directory; answers their paths.
pub fn write_run_files(
    summary: &RunSummary,
    recording: &Recording,
    baseline: Option<&ComparedRun>,
    dir: &Path,
) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    for (name, format) in [
        ("summary.json", Format::Json),
        ("summary.csv", Format::Csv),
        ("summary.md", Format::Markdown),
        ("report.html", Format::Html),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, render(summary, recording, baseline, format))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
