//! Where a baseline comes from: a previous run's directory, its
//! `points.lp` or `summary.json`, or `run:ID` for a run stored in InfluxDB.
//!
//! Points are preferred wherever they are found (a directory's, or the
//! `points.lp` beside a `summary.json` of the same run): the summary is
//! then computed with this command's container filters, and the readings
//! give the baseline's own noise and the charts' overlay.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::loadtest::compare::ComparedRun;
use crate::loadtest::report::{summarise, ReportSource};
use crate::loadtest::summary::RunSummary;
use crate::supervision::selection::{selected_by_tags, ContainerFilter};

#[derive(Debug, Clone, PartialEq)]
pub enum BaselineSource {
    Path(PathBuf),
    Run(String),
}

impl BaselineSource {
    pub fn parse(text: &str) -> Result<Self, String> {
        let accepted = "a run directory, its summary.json or points.lp, or run:ID";
        match text.strip_prefix("run:") {
            Some(id) if id.trim().is_empty() => Err(format!(
                "baseline {text:?} names no run; expected {accepted}"
            )),
            Some(id) => Ok(BaselineSource::Run(id.trim().to_string())),
            None if text.trim().is_empty() => {
                Err(format!("an empty baseline; expected {accepted}"))
            }
            None => Ok(BaselineSource::Path(PathBuf::from(text))),
        }
    }

    /// Reads the baseline and summarises the containers `filters` select.
    pub async fn load(
        &self,
        config: &Config,
        filters: &[ContainerFilter],
        who: &str,
    ) -> Result<ComparedRun, String> {
        let named = |why: String| format!("--baseline {self}: {why}");
        let source = match self {
            BaselineSource::Run(id) => ReportSource::Run(id.clone()),
            BaselineSource::Path(path) => match find(path).map_err(named)? {
                Found::Points(points) => ReportSource::File(points),
                Found::Summary(json, beside) => {
                    let summary = read_summary(&json, filters).map_err(named)?;
                    if let Some(points) = beside {
                        let source = ReportSource::File(points);
                        let (from_points, recording) =
                            summarise(config, &source, filters, &[], who)
                                .await
                                .map_err(named)?;
                        // Only the points of the run the summary is of.
                        let run_id = |s: &RunSummary| s.run.as_ref().map(|r| r.id.clone());
                        if run_id(&from_points) == run_id(&summary) {
                            return Ok(ComparedRun {
                                source: self.to_string(),
                                summary: from_points,
                                recording: Some(recording),
                            });
                        }
                        eprintln!(
                            "{who}: --baseline {self}: the points.lp beside it is of another run; comparing with the summary alone"
                        );
                    }
                    return Ok(ComparedRun {
                        source: self.to_string(),
                        summary,
                        recording: None,
                    });
                }
            },
        };
        let (summary, recording) = summarise(config, &source, filters, &[], who)
            .await
            .map_err(named)?;
        Ok(ComparedRun {
            source: self.to_string(),
            summary,
            recording: Some(recording),
        })
    }
}

impl fmt::Display for BaselineSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BaselineSource::Path(path) => write!(f, "{}", path.display()),
            BaselineSource::Run(id) => write!(f, "run:{id}"),
        }
    }
}

enum Found {
    Points(PathBuf),
    /// A `summary.json`, and the `points.lp` beside it when there is one.
    Summary(PathBuf, Option<PathBuf>),
}

fn find(path: &Path) -> Result<Found, String> {
    if path.is_dir() {
        let points = path.join("points.lp");
        let summary = path.join("summary.json");
        return if points.is_file() {
            Ok(Found::Points(points))
        } else if summary.is_file() {
            Ok(Found::Summary(summary, None))
        } else {
            Err("the directory holds neither points.lp nor summary.json".into())
        };
    }
    if !path.is_file() {
        return Err("no such file or directory".into());
    }
    if path.extension().is_some_and(|e| e == "json") {
        let beside = path.with_file_name("points.lp");
        let named_so = path.file_name().is_some_and(|n| n == "summary.json");
        let beside = (named_so && beside.is_file()).then_some(beside);
        return Ok(Found::Summary(path.to_path_buf(), beside));
    }
    Ok(Found::Points(path.to_path_buf()))
}

/// A `summary.json` without its points: its containers that `filters`
/// select.
fn read_summary(path: &Path, filters: &[ContainerFilter]) -> Result<RunSummary, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut summary: RunSummary = serde_json::from_str(&text)
        .map_err(|e| format!("not a summary.json that record or report wrote: {e}"))?;
    summary.containers.retain(|c| {
        let c = &c.container;
        selected_by_tags(filters, &c.id, &c.name, &c.tags)
    });
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_runs() {
        assert_eq!(
            BaselineSource::parse("last-main/"),
            Ok(BaselineSource::Path("last-main/".into()))
        );
        assert_eq!(
            BaselineSource::parse("run:20261125T112807Z-d8b8"),
            Ok(BaselineSource::Run("20261125T112807Z-d8b8".into()))
        );
        assert!(BaselineSource::parse("run:")
            .unwrap_err()
            .contains("names no run"));
        assert!(BaselineSource::parse("").is_err());
    }

    #[test]
    fn a_directory_without_a_run_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("dss-baseline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let Err(why) = find(&dir) else {
            panic!("an empty directory was taken as a baseline")
        };
        assert!(why.contains("neither points.lp nor summary.json"), "{why}");
        assert!(find(&dir.join("missing.lp"))
            .err()
            .unwrap()
            .contains("no such file"));
        std::fs::write(dir.join("summary.json"), "{}").unwrap();
        std::fs::write(dir.join("main.json"), "{}").unwrap();
        assert!(matches!(find(&dir), Ok(Found::Summary(_, None))));
        std::fs::write(dir.join("points.lp"), "").unwrap();
        assert!(matches!(find(&dir), Ok(Found::Points(_))));
        assert!(matches!(
            find(&dir.join("summary.json")),
            Ok(Found::Summary(_, Some(_)))
        ));
        // Another name is another file: never swapped for the points here.
        assert!(matches!(
            find(&dir.join("main.json")),
            Ok(Found::Summary(_, None))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
