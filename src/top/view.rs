//! What the person at the terminal chose: the order, the selected
//! container, the name filter, pause; and what each key does to it.

use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind,
};

use crate::top::columns::SortKey;
use crate::top::live::Row;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Draw again (something changed).
    Redraw,
    Quit,
    Nothing,
}

#[derive(Debug)]
pub struct View {
    pub sort: SortKey,
    /// The selected container's id: the selection follows it as rows move.
    pub selected: Option<String>,
    pub filter: String,
    /// The filter is being typed (after `/`).
    pub editing_filter: bool,
    pub paused: bool,
    /// The rows of the last redraw, sorted, before the filter.
    rows: Vec<Row>,
    /// Where the first row was drawn, for mouse selection: its screen line.
    pub first_row_line: Option<u16>,
    /// How many rows the table scrolled past, and how many it shows, for
    /// mouse selection.
    pub scroll: usize,
    pub rows_shown: u16,
}

impl View {
    pub fn new(sort: SortKey) -> View {
        View {
            sort,
            selected: None,
            filter: String::new(),
            editing_filter: false,
            paused: false,
            rows: Vec::new(),
            first_row_line: None,
            scroll: 0,
            rows_shown: 0,
        }
    }

    pub fn set_rows(&mut self, mut rows: Vec<Row>) {
        self.sort.sort(&mut rows);
        self.rows = rows;
        if self.selected_index().is_none() {
            self.selected = self.visible().first().map(|row| row.id.clone());
        }
    }

    /// The rows the filter lets through, in order.
    pub fn visible(&self) -> Vec<&Row> {
        let filter = self.filter.to_lowercase();
        self.rows
            .iter()
            .filter(|row| row.name.to_lowercase().contains(&filter))
            .collect()
    }

    pub fn selected_index(&self) -> Option<usize> {
        let id = self.selected.as_ref()?;
        self.visible().iter().position(|row| &row.id == id)
    }

    pub fn selected_row(&self) -> Option<&Row> {
        self.selected_index().map(|i| self.visible()[i])
    }

    fn select_at(&mut self, index: usize) {
        if let Some(row) = self.visible().get(index) {
            self.selected = Some(row.id.clone());
        }
    }

    fn move_selection(&mut self, down: bool) {
        let count = self.visible().len();
        if count == 0 {
            return;
        }
        let at = self.selected_index().unwrap_or(0);
        let next = if down {
            (at + 1).min(count - 1)
        } else {
            at.saturating_sub(1)
        };
        self.select_at(next);
    }

    fn resort(&mut self, sort: SortKey) {
        self.sort = sort;
        let rows = std::mem::take(&mut self.rows);
        self.set_rows(rows);
    }

    /// What an input event does.
    pub fn handle(&mut self, event: &Event) -> Outcome {
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => self.key(key),
            Event::Mouse(mouse) if mouse.kind == MouseEventKind::Down(MouseButton::Left) => {
                let Some(first) = self.first_row_line else {
                    return Outcome::Nothing;
                };
                if mouse.row < first || mouse.row >= first + self.rows_shown {
                    return Outcome::Nothing;
                }
                self.select_at(self.scroll + usize::from(mouse.row - first));
                Outcome::Redraw
            }
            Event::Mouse(mouse) if mouse.kind == MouseEventKind::ScrollDown => {
                self.move_selection(true);
                Outcome::Redraw
            }
            Event::Mouse(mouse) if mouse.kind == MouseEventKind::ScrollUp => {
                self.move_selection(false);
                Outcome::Redraw
            }
            Event::Resize(..) => Outcome::Redraw,
            _ => Outcome::Nothing,
        }
    }

    fn key(&mut self, key: &KeyEvent) -> Outcome {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Outcome::Quit;
        }
        if key
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
        {
            return Outcome::Nothing;
        }
        if self.editing_filter {
            match key.code {
                KeyCode::Enter => self.editing_filter = false,
                KeyCode::Esc => {
                    self.editing_filter = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => return Outcome::Nothing,
            }
            if self.selected_index().is_none() {
                self.select_at(0);
            }
            return Outcome::Redraw;
        }
        match key.code {
            KeyCode::Char('q') => return Outcome::Quit,
            KeyCode::Esc if !self.filter.is_empty() => self.filter.clear(),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(true),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(false),
            KeyCode::Home => self.select_at(0),
            KeyCode::End => self.select_at(self.visible().len().saturating_sub(1)),
            KeyCode::Char('/') => {
                self.editing_filter = true;
                self.filter.clear();
            }
            KeyCode::Char('p') => self.paused = !self.paused,
            KeyCode::Char('s') => self.resort(self.sort.next()),
            KeyCode::Char(c) => match SortKey::ALL.into_iter().find(|k| k.key() == c) {
                Some(sort) => self.resort(sort),
                None => return Outcome::Nothing,
            },
            _ => return Outcome::Nothing,
        }
        Outcome::Redraw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, cpu: f64) -> Row {
        Row {
            cpu_percent: Some(cpu),
            mem_used: Some(100.0 - cpu),
            ..Row::named(name)
        }
    }

    fn press(view: &mut View, code: KeyCode) -> Outcome {
        view.handle(&Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    fn names(view: &View) -> Vec<String> {
        view.visible().iter().map(|r| r.name.clone()).collect()
    }

    #[test]
    fn keys_sort_select_filter_pause_and_quit() {
        let mut view = View::new(SortKey::Cpu);
        view.set_rows(vec![row("api", 10.0), row("web", 50.0), row("db", 30.0)]);
        assert_eq!(names(&view), ["web", "db", "api"]);
        assert_eq!(view.selected_row().unwrap().name, "web");
        press(&mut view, KeyCode::Char('j'));
        assert_eq!(view.selected_row().unwrap().name, "db");
        press(&mut view, KeyCode::Char('m'));
        assert_eq!(names(&view), ["api", "db", "web"], "by memory");
        assert_eq!(view.selected_row().unwrap().name, "db", "selection follows");
        press(&mut view, KeyCode::Char('s'));
        assert_eq!(view.sort, SortKey::Throttled);
        press(&mut view, KeyCode::Char('/'));
        for c in "WE".chars() {
            press(&mut view, KeyCode::Char(c));
        }
        press(&mut view, KeyCode::Enter);
        assert_eq!(names(&view), ["web"]);
        assert_eq!(view.selected_row().unwrap().name, "web");
        press(&mut view, KeyCode::Esc);
        assert_eq!(names(&view).len(), 3);
        press(&mut view, KeyCode::Char('p'));
        assert!(view.paused);
        assert_eq!(press(&mut view, KeyCode::Char('z')), Outcome::Nothing);
        assert_eq!(press(&mut view, KeyCode::Char('q')), Outcome::Quit);
        let ctrl_l = KeyEvent::new(KeyCode::Char('l'), KeyModifiers::CONTROL);
        assert_eq!(view.handle(&Event::Key(ctrl_l)), Outcome::Nothing);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(view.handle(&Event::Key(ctrl_c)), Outcome::Quit);
    }
}
