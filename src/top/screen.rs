//! Drawing one frame of `top`: the header, the table (bars where the
//! terminal is wide enough) and the selected container's detail pane with
//! its sparklines of the last minute and its recent events.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row as TableRow, Sparkline, Table, TableState};
use ratatui::Frame;

use crate::loadtest::format::units::rfc3339;
use crate::top::columns::Column;
use crate::top::live::{Figure, Live, LiveContainer, Row, HISTORY_NS};
use crate::top::view::View;

/// The most characters a name is given; a longer one is cut.
const NAME_MAX: u16 = 40;
/// Characters a bar takes after its figure.
const BAR: u16 = 10;
/// The detail pane's height, drawn when the terminal has room for it.
const DETAIL_HEIGHT: u16 = 12;
const KEYS: &str = "↑↓/jk select  s sort  c l m t i n a sort by column  / filter  p pause  q quit";

/// What the header says besides the view's state.
pub struct Header {
    /// Where the readings come from, as `record` says it.
    pub sampling: String,
    pub refresh: String,
}

pub fn draw(frame: &mut Frame, view: &mut View, live: &Live, header: &Header, now_ns: i64) {
    let area = frame.area();
    let detail = if area.height >= 23 { DETAIL_HEIGHT } else { 0 };
    let [title, sampling, keys, table, pane] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(detail),
    ])
    .areas(area);
    let count = view.visible().len();
    let mut status = vec![
        Span::styled(
            "docker-stats-service top",
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            "  {count} container(s)  sort {}  redraw every {}",
            view.sort.name(),
            header.refresh,
        )),
    ];
    if view.paused {
        status.insert(
            1,
            Span::styled("  PAUSED", Style::new().add_modifier(Modifier::REVERSED)),
        );
    }
    frame.render_widget(Paragraph::new(header.sampling.as_str()), sampling);
    frame.render_widget(Paragraph::new(Line::from(status)), title);
    let prompt = if view.editing_filter || !view.filter.is_empty() {
        let cursor = if view.editing_filter { "_" } else { "" };
        format!(
            "filter: {}{cursor}   (Enter keeps it, Esc clears it)",
            view.filter
        )
    } else {
        KEYS.to_string()
    };
    frame.render_widget(Paragraph::new(prompt), keys);
    draw_table(frame, view, table);
    if detail > 0 {
        let selected = view
            .selected
            .as_ref()
            .and_then(|id| live.containers.get(id));
        draw_detail(frame, selected, view.selected_row(), pane, now_ns);
    }
}

fn draw_table(frame: &mut Frame, view: &mut View, area: Rect) {
    // Names as long as they are (up to a point): a cut name is a guess.
    let longest = view
        .visible()
        .iter()
        .map(|row| row.name.chars().count())
        .max()
        .unwrap_or(0);
    let name_width = (longest as u16).clamp(Column::Name.width(), NAME_MAX);
    let columns = Column::fitting(area.width, name_width);
    let used: u16 = name_width + columns[1..].iter().map(|c| c.width() + 1).sum::<u16>();
    let bars = area.width.saturating_sub(used) >= 2 * (BAR + 1);
    let width_of = |column: Column| {
        let bar = bars && matches!(column, Column::CpuOfLimit | Column::MemOfLimit);
        column.width() + if bar { BAR + 1 } else { 0 }
    };
    let fixed: u16 = columns
        .iter()
        .filter(|c| **c != Column::Name)
        .map(|c| width_of(*c) + 1)
        .sum();
    let name_width = area.width.saturating_sub(fixed).max(Column::Name.width());
    let widths: Vec<Constraint> = columns
        .iter()
        .map(|c| match c {
            Column::Name => Constraint::Length(name_width),
            other => Constraint::Length(width_of(*other)),
        })
        .collect();
    let sorted = view.sort.column();
    let header = TableRow::new(columns.iter().map(|c| {
        let title = if *c == sorted {
            format!("{}▼", c.title())
        } else {
            c.title().to_string()
        };
        Cell::from(title)
    }))
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows: Vec<TableRow> = view
        .visible()
        .iter()
        .map(|row| {
            TableRow::new(columns.iter().map(|c| {
                let text = c.text(row);
                let bar = match c {
                    Column::CpuOfLimit if bars => Some(bar(row.cpu_limit_percent)),
                    Column::MemOfLimit if bars => Some(bar(row.mem_percent)),
                    _ => None,
                };
                match bar {
                    Some(bar) => {
                        Cell::from(format!("{text:<w$} {bar}", w = usize::from(c.width())))
                    }
                    None => Cell::from(text),
                }
            }))
        })
        .collect();
    let mut state = TableState::default().with_selected(view.selected_index());
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    frame.render_stateful_widget(table, area, &mut state);
    view.first_row_line = Some(area.y + 1);
    view.scroll = state.offset();
    view.rows_shown = area.height.saturating_sub(1);
}

/// A bar of `BAR` characters for a percentage of a limit.
fn bar(percent: Option<f64>) -> String {
    let Some(percent) = percent else {
        return String::new();
    };
    let eighths = (percent.clamp(0.0, 100.0) / 100.0 * f64::from(BAR) * 8.0).round() as usize;
    let full = eighths / 8;
    let partial = [" ", "▏", "▎", "▍", "▌", "▋", "▊", "▉"][eighths % 8];
    let mut text = "█".repeat(full);
    if full < usize::from(BAR) {
        text.push_str(partial);
    }
    format!("{text:<w$}", w = usize::from(BAR))
}

fn draw_detail(
    frame: &mut Frame,
    live: Option<&LiveContainer>,
    row: Option<&Row>,
    area: Rect,
    now_ns: i64,
) {
    let (Some(live), Some(row)) = (live, row) else {
        frame.render_widget(Block::bordered().title(" no container selected "), area);
        return;
    };
    let block = Block::bordered().title(format!(" {} (last minute) ", row.name));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [charts, events] =
        Layout::horizontal([Constraint::Percentage(65), Constraint::Percentage(35)]).areas(inner);
    let [top, bottom] =
        Layout::vertical([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(charts);
    let [a, b] = Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(top);
    let [c, d] =
        Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)]).areas(bottom);
    for (figure, area) in Figure::ALL.into_iter().zip([a, b, c, d]) {
        let history = live.history(figure);
        let latest = history
            .last()
            .map_or("-".to_string(), |(_, v)| format!("{v:.0}%"));
        let title = format!(" {} {latest} ", figure.title());
        let bars = buckets(&history, area.width.saturating_sub(2), now_ns);
        let sparkline = Sparkline::default()
            .block(Block::bordered().title(title))
            .data(&bars)
            .max(1000);
        frame.render_widget(sparkline, area);
    }
    let lines: Vec<Line> = live
        .events
        .iter()
        .rev()
        .map(|event| {
            let time = rfc3339(event.t_ns);
            let clock = time.get(11..23).unwrap_or(&time).to_string();
            Line::from(format!("{clock} {}", event.action)).style(if event.action.contains("oom") {
                Style::new().add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            })
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" events ")),
        events,
    );
}

/// The last minute in `width` columns, each the highest reading that falls
/// in it (a spike is never averaged away), in tenths of a percent.
fn buckets(history: &[(i64, f64)], width: u16, now_ns: i64) -> Vec<u64> {
    let width = usize::from(width.max(1));
    let start = now_ns - HISTORY_NS;
    let mut bars = vec![0u64; width];
    for (t, value) in history {
        if *t < start {
            continue;
        }
        let at = ((t - start) as i128 * width as i128 / HISTORY_NS as i128) as usize;
        let bar = &mut bars[at.min(width - 1)];
        *bar = (*bar).max((value.clamp(0.0, 100.0) * 10.0).round() as u64);
    }
    bars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fill_with_the_share_of_the_limit() {
        assert_eq!(bar(Some(100.0)), "█".repeat(10));
        assert_eq!(
            bar(Some(50.0)),
            format!("{}{}", "█".repeat(5), " ".repeat(5))
        );
        assert_eq!(bar(Some(250.0)), "█".repeat(10), "over the limit: full");
        assert_eq!(bar(None), "");
    }

    #[test]
    fn buckets_keep_the_highest_reading() {
        let now = HISTORY_NS;
        let history = [(now - 1, 10.0), (now - 2, 90.0), (1, 5.0)];
        assert_eq!(buckets(&history, 4, now), [50, 0, 0, 900]);
    }
}
