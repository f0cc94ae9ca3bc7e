//! Load-test runs: `record` samples containers while a command runs and
//! answers with a summary; `report` computes the same summary for any
//! window, from InfluxDB or from a recorded `points.lp`.
//!
//! The summary is computed from points only (`recording`), whichever way
//! they were read, so a run's `record` and a later `report` of it agree.

pub mod budget;
pub mod compare;
pub mod format;
pub mod influx_query;
pub mod output;
pub mod points_file;
pub mod record;
pub mod recording;
pub mod report;
pub mod sampling;
pub mod sink;
pub mod summary;
pub mod summary_metric;
