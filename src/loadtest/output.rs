//! Writing a summary out: the run directory's `summary.json`,
//! `summary.csv` and `report.html`, or one of them to a file or stdout.

use std::path::{Path, PathBuf};

use crate::loadtest::format::{csv, html, table};
use crate::loadtest::recording::Recording;
use crate::loadtest::summary::RunSummary;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
    Html,
}

impl Format {
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "table" => Format::Table,
            "json" => Format::Json,
            "csv" => Format::Csv,
            "html" => Format::Html,
            other => {
                return Err(format!(
                    "--format {other:?}: expected table, json, csv or html"
                ))
            }
        })
    }
}

/// The summary in `format`; the HTML also draws the samples of
/// `recording` (the points the summary was computed from).
pub fn render(summary: &RunSummary, recording: &Recording, format: Format) -> String {
    match format {
        Format::Table => table::render(summary),
        Format::Json => {
            let mut text = serde_json::to_string_pretty(summary).unwrap_or_default();
            text.push('\n');
            text
        }
        Format::Csv => csv::render(summary),
        Format::Html => html::render(summary, recording),
    }
}

/// Writes the three files of a run directory; answers their paths.
pub fn write_run_files(
    summary: &RunSummary,
    recording: &Recording,
    dir: &Path,
) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    for (name, format) in [
        ("summary.json", Format::Json),
        ("summary.csv", Format::Csv),
        ("report.html", Format::Html),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, render(summary, recording, format))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
