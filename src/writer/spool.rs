//! The spool: points still undelivered at shutdown are saved as line
//! protocol files in `spool_dir` and delivered at the next start.
//!
//! A file is written under a temporary name, synced and then renamed, so a
//! crash mid-write leaves no half file under a spool name. Loading checks
//! every line and skips (and reports) the ones that are not plausible points,
//! so a corrupt or truncated file never stops the service from starting.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::line_protocol::check_line;

const EXTENSION: &str = "lp";

/// What a spool directory held.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Valid points, oldest file first.
    pub lines: Vec<String>,
    /// Files the points came from; removed once the points are delivered.
    pub files: Vec<PathBuf>,
    /// One message per file with skipped lines, naming the first one.
    pub problems: Vec<String>,
}

/// Reads every spool file in `dir` (a missing directory is an empty spool).
pub fn load(dir: &Path) -> std::io::Result<Loaded> {
    let mut loaded = Loaded::default();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == EXTENSION))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(loaded),
        Err(e) => return Err(e),
    };
    // Names carry the time they were written: oldest first.
    files.sort();
    for path in files {
        let bytes = std::fs::read(&path)?;
        let mut skipped = 0usize;
        let mut first_problem = None;
        for (index, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            if raw.is_empty() {
                continue;
            }
            let verdict = std::str::from_utf8(raw)
                .map_err(|_| "not UTF-8")
                .and_then(|line| check_line(line).map(|()| line));
            match verdict {
                Ok(line) => loaded.lines.push(line.to_string()),
                Err(reason) => {
                    skipped += 1;
                    first_problem.get_or_insert((index + 1, reason));
                }
            }
        }
        if let Some((line, reason)) = first_problem {
            loaded.problems.push(format!(
                "spool file {} has {skipped} invalid line(s), skipped (first at line {line}: {reason})",
                path.display()
            ));
        }
        loaded.files.push(path);
    }
    Ok(loaded)
}

/// Saves `lines` as a new spool file and returns its path.
pub fn save(dir: &Path, lines: &[String]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let path = dir.join(format!("spool-{stamp:020}.{EXTENSION}"));
    let temporary = dir.join(format!(".spool-{stamp:020}.tmp"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&temporary)?);
    for line in lines {
        file.write_all(line.as_bytes())?;
        file.write_all(b"\n")?;
    }
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&temporary, &path)?;
    Ok(path)
}

/// Removes delivered spool files; a failure is reported, not fatal (the
/// points would be delivered again, which InfluxDB stores once).
pub fn remove(files: &[PathBuf]) {
    for file in files {
        if let Err(error) = std::fs::remove_file(file) {
            log::error!(
                "cannot remove delivered spool file {}: {error}",
                file.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dss-spool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn saved_points_load_back_in_order() {
        let dir = temp_dir("roundtrip");
        let first = vec!["m f=1i 1".to_string(), "m f=2i 2".to_string()];
        save(&dir, &first).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        save(&dir, &["m f=3i 3".to_string()]).unwrap();
        let loaded = load(&dir).unwrap();
        assert_eq!(loaded.lines, ["m f=1i 1", "m f=2i 2", "m f=3i 3"]);
        assert_eq!(loaded.files.len(), 2);
        assert!(loaded.problems.is_empty());
        remove(&loaded.files);
        assert!(load(&dir).unwrap().lines.is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn corrupt_and_truncated_lines_are_skipped_and_reported() {
        let dir = temp_dir("corrupt");
        std::fs::create_dir_all(&dir).unwrap();
        let mut bytes = b"m f=1i 1\ngarbage\n".to_vec();
        bytes.extend_from_slice(b"m,t=\xff f=1i 2\nm f=2i 3\nm s=\"cut off");
        std::fs::write(dir.join("spool-1.lp"), bytes).unwrap();
        let loaded = load(&dir).unwrap();
        assert_eq!(loaded.lines, ["m f=1i 1", "m f=2i 3"]);
        assert_eq!(loaded.problems.len(), 1);
        assert!(
            loaded.problems[0].contains("3 invalid line(s)"),
            "{}",
            loaded.problems[0]
        );
        assert!(
            loaded.problems[0].contains("first at line 2"),
            "{}",
            loaded.problems[0]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_directory_is_an_empty_spool() {
        let loaded = load(Path::new("/nonexistent/dss-spool")).unwrap();
        assert!(loaded.lines.is_empty() && loaded.files.is_empty());
    }
}
