//! The columns of `top`'s table, shared by the terminal view and `--once`:
//! each column's title, width, the key that sorts by it, and its text.

use std::cmp::Ordering;

use crate::loadtest::format::units::{bytes, percent};
use crate::top::live::Row;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Name,
    Cpu,
    CpuOfLimit,
    Throttled,
    Mem,
    MemOfLimit,
    Peak,
    MemPressure,
    IoPressure,
    NetIn,
    NetOut,
    BlockRead,
    BlockWrite,
    Pids,
    OomKills,
    Restarts,
}

impl Column {
    /// Every column, in the order they are shown.
    pub const ALL: [Column; 16] = [
        Column::Name,
        Column::Cpu,
        Column::CpuOfLimit,
        Column::Throttled,
        Column::Mem,
        Column::MemOfLimit,
        Column::Peak,
        Column::MemPressure,
        Column::IoPressure,
        Column::NetIn,
        Column::NetOut,
        Column::BlockRead,
        Column::BlockWrite,
        Column::Pids,
        Column::OomKills,
        Column::Restarts,
    ];

    /// The order columns give way in on a narrow terminal: the last first.
    pub const PRIORITY: [Column; 16] = [
        Column::Name,
        Column::Cpu,
        Column::CpuOfLimit,
        Column::Mem,
        Column::Peak,
        Column::Throttled,
        Column::OomKills,
        Column::MemOfLimit,
        Column::MemPressure,
        Column::NetIn,
        Column::NetOut,
        Column::Pids,
        Column::Restarts,
        Column::IoPressure,
        Column::BlockRead,
        Column::BlockWrite,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Column::Name => "NAME",
            Column::Cpu => "CPU %",
            Column::CpuOfLimit => "OF LIMIT",
            Column::Throttled => "THROTTLED",
            Column::Mem => "MEM",
            Column::MemOfLimit => "MEM %",
            Column::Peak => "PEAK",
            Column::MemPressure => "MEM PSI",
            Column::IoPressure => "IO PSI",
            Column::NetIn => "NET IN/s",
            Column::NetOut => "NET OUT/s",
            Column::BlockRead => "BLK READ/s",
            Column::BlockWrite => "BLK WRITE/s",
            Column::Pids => "PIDS",
            Column::OomKills => "OOM",
            Column::Restarts => "RESTARTS",
        }
    }

    /// Characters the column needs, title included (a bar comes on top).
    pub fn width(self) -> u16 {
        match self {
            Column::Name => 20,
            Column::Cpu | Column::MemOfLimit | Column::Pids => 7,
            Column::Mem | Column::Peak | Column::MemPressure => 8,
            Column::IoPressure | Column::OomKills => 6,
            Column::CpuOfLimit | Column::NetIn | Column::NetOut | Column::Restarts => 9,
            Column::Throttled | Column::BlockRead => 10,
            Column::BlockWrite => 11,
        }
    }

    /// The text of `row` in this column; `-` where the figure is unknown.
    pub fn text(self, row: &Row) -> String {
        let percent_of = |v: Option<f64>| v.map_or("-".into(), |v| format!("{}%", percent(v)));
        let rate = |v: Option<f64>| v.map_or("-".into(), |v| format!("{}/s", bytes(v)));
        let size = |v: Option<f64>| v.map_or("-".into(), bytes);
        match self {
            Column::Name => row.name.clone(),
            Column::Cpu => percent_of(row.cpu_percent),
            Column::CpuOfLimit => percent_of(row.cpu_limit_percent),
            Column::Throttled => percent_of(row.throttled_share.map(|s| s * 100.0)),
            Column::Mem => size(row.mem_used),
            Column::MemOfLimit => percent_of(row.mem_percent),
            Column::Peak => size(row.mem_peak),
            Column::MemPressure => percent_of(row.memory_pressure),
            Column::IoPressure => percent_of(row.io_pressure),
            Column::NetIn => rate(row.net_in_rate),
            Column::NetOut => rate(row.net_out_rate),
            Column::BlockRead => rate(row.blkio_read_rate),
            Column::BlockWrite => rate(row.blkio_write_rate),
            Column::Pids => row.pids.map_or("-".into(), |p| format!("{p:.0}")),
            Column::OomKills => row.oom_kills.to_string(),
            Column::Restarts => row.restarts.to_string(),
        }
    }

    /// The columns that fit in `width` characters with the name given
    /// `name_width`, one space between them, in display order; the name
    /// always.
    pub fn fitting(width: u16, name_width: u16) -> Vec<Column> {
        let mut used = name_width;
        let mut chosen = vec![Column::Name];
        for column in Column::PRIORITY.into_iter().skip(1) {
            let needs = column.width() + 1;
            if used + needs <= width {
                used += needs;
                chosen.push(column);
            }
        }
        Column::ALL
            .into_iter()
            .filter(|c| chosen.contains(c))
            .collect()
    }
}

/// What the rows are sorted by, and the key that chooses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Cpu,
    Limit,
    Mem,
    Throttled,
    Pressure,
    Net,
    Name,
}

impl SortKey {
    pub const ALL: [SortKey; 7] = [
        SortKey::Cpu,
        SortKey::Limit,
        SortKey::Mem,
        SortKey::Throttled,
        SortKey::Pressure,
        SortKey::Net,
        SortKey::Name,
    ];

    pub fn parse(text: &str) -> Result<SortKey, String> {
        SortKey::ALL
            .into_iter()
            .find(|key| key.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = SortKey::ALL.iter().map(|k| k.name()).collect();
                format!("{text:?} is not a sort order; use {}", names.join(", "))
            })
    }

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Cpu => "cpu",
            SortKey::Limit => "limit",
            SortKey::Mem => "mem",
            SortKey::Throttled => "throttled",
            SortKey::Pressure => "pressure",
            SortKey::Net => "net",
            SortKey::Name => "name",
        }
    }

    /// The key that sorts by it in the terminal view.
    pub fn key(self) -> char {
        match self {
            SortKey::Cpu => 'c',
            SortKey::Limit => 'l',
            SortKey::Mem => 'm',
            SortKey::Throttled => 't',
            SortKey::Pressure => 'i',
            SortKey::Net => 'n',
            SortKey::Name => 'a',
        }
    }

    pub fn next(self) -> SortKey {
        let at = SortKey::ALL.iter().position(|k| *k == self).unwrap_or(0);
        SortKey::ALL[(at + 1) % SortKey::ALL.len()]
    }

    /// The column whose title shows the order.
    pub fn column(self) -> Column {
        match self {
            SortKey::Cpu => Column::Cpu,
            SortKey::Limit => Column::CpuOfLimit,
            SortKey::Mem => Column::Mem,
            SortKey::Throttled => Column::Throttled,
            SortKey::Pressure => Column::MemPressure,
            SortKey::Net => Column::NetIn,
            SortKey::Name => Column::Name,
        }
    }

    /// Sorts `rows`: the highest figure first (unknown last), names A to Z;
    /// ties by name, so rows do not jump between redraws.
    pub fn sort(self, rows: &mut [Row]) {
        let figure = |row: &Row| match self {
            SortKey::Cpu => row.cpu_percent,
            SortKey::Limit => row.cpu_limit_percent,
            SortKey::Mem => row.mem_used,
            SortKey::Throttled => row.throttled_share,
            SortKey::Pressure => row.memory_pressure,
            SortKey::Net => row.net_rate(),
            SortKey::Name => None,
        };
        rows.sort_by(|a, b| {
            let by_figure = match (figure(a), figure(b)) {
                (Some(x), Some(y)) => y.total_cmp(&x),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            };
            by_figure
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.id.cmp(&b.id))
        });
    }
}

/// The table as plain text, every column (`--once`, or stdout not a
/// terminal), like `docker stats --no-stream`.
pub fn plain_table(rows: &[Row]) -> String {
    let widths: Vec<usize> = Column::ALL
        .iter()
        .map(|column| {
            rows.iter()
                .map(|row| column.text(row).chars().count())
                .chain([column.title().len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(Column::ALL.iter().map(|c| c.title().to_string()).collect());
    for row in rows {
        out.push_str(&line(Column::ALL.iter().map(|c| c.text(row)).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, cpu: Option<f64>) -> Row {
        Row {
            id: name.into(),
            cpu_percent: cpu,
            ..Row::named(name)
        }
    }

    #[test]
    fn rows_sort_highest_first_unknown_last_ties_by_name() {
        let mut rows = vec![
            row("b", Some(5.0)),
            row("a", None),
            row("c", Some(50.0)),
            row("a2", Some(5.0)),
        ];
        SortKey::Cpu.sort(&mut rows);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["c", "a2", "b", "a"]);
        SortKey::Name.sort(&mut rows);
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "a2", "b", "c"]);
    }

    #[test]
    fn narrow_terminals_keep_the_name_and_the_first_columns() {
        let narrow = Column::fitting(80, 30);
        assert_eq!(narrow[..3], [Column::Name, Column::Cpu, Column::CpuOfLimit]);
        let others: u16 = narrow[1..].iter().map(|c| c.width() + 1).sum();
        assert!(30 + others <= 80, "{narrow:?}");
        assert_eq!(Column::fitting(400, 30).len(), Column::ALL.len());
        assert_eq!(Column::fitting(5, 30), [Column::Name]);
    }

    #[test]
    fn every_title_fits_with_the_order_mark() {
        for column in Column::ALL {
            let mark = SortKey::ALL.iter().any(|k| k.column() == column);
            let needs = column.title().chars().count() + usize::from(mark);
            assert!(usize::from(column.width()) >= needs, "{column:?}");
        }
    }

    #[test]
    fn sort_orders_are_named_and_keyed_uniquely() {
        for key in SortKey::ALL {
            assert_eq!(SortKey::parse(key.name()), Ok(key));
            let same_key = SortKey::ALL.iter().filter(|k| k.key() == key.key()).count();
            assert_eq!(same_key, 1);
        }
        let error = SortKey::parse("cpus").unwrap_err();
        assert!(error.contains("cpu, limit, mem"), "{error}");
    }

    #[test]
    fn the_plain_table_has_every_column_and_dashes_for_unknowns() {
        let text = plain_table(&[row("web", Some(12.25))]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAME  CPU %"), "{text}");
        assert!(lines[0].ends_with("OOM  RESTARTS"), "{text}");
        assert!(lines[1].starts_with("web   12.2%"), "{text}");
    }
}
