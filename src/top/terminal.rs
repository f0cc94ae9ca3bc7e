//! The terminal while `top` runs: raw mode, the alternate screen, mouse
//! reports and a hidden cursor, given back on every way out (quit, error,
//! signal, panic); and the keys and mouse read on a thread of their own.

use std::io::{stdout, BufWriter, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, BeginSynchronizedUpdate, EndSynchronizedUpdate,
    EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::crossterm::{cursor, execute, queue};
use ratatui::{Frame, Terminal};
use tokio::sync::mpsc;

/// A frame leaves in one write (a terminal, or `tmux capture-pane`, never
/// shows half of one), bracketed as one update where the terminal knows how.
const FRAME_BUFFER: usize = 1 << 18;

pub struct Screen {
    terminal: Terminal<CrosstermBackend<BufWriter<Stdout>>>,
}

impl Screen {
    pub fn enter() -> std::io::Result<Screen> {
        restore_on_panic();
        enable_raw_mode()?;
        let entered = execute!(
            stdout(),
            EnterAlternateScreen,
            EnableMouseCapture,
            cursor::Hide
        )
        .and_then(|()| {
            let out = BufWriter::with_capacity(FRAME_BUFFER, stdout());
            Terminal::new(CrosstermBackend::new(out))
        });
        match entered {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(error) => {
                restore();
                Err(error)
            }
        }
    }

    pub fn draw<F: FnOnce(&mut Frame)>(&mut self, render: F) -> std::io::Result<()> {
        queue!(self.terminal.backend_mut(), BeginSynchronizedUpdate)?;
        self.terminal.draw(render)?;
        execute!(self.terminal.backend_mut(), EndSynchronizedUpdate)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Gives the terminal back as it was; harmless when it already is.
fn restore() {
    let _ = execute!(
        stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = disable_raw_mode();
}

/// Set by a panic anywhere: the terminal was given back, so the view ends.
static PANICKED: AtomicBool = AtomicBool::new(false);

/// Whether a panic gave the terminal back (an actor the supervisor restarts
/// can panic while the view goes on: it must not draw over the shell).
pub fn panicked() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

/// A panic's message goes to a terminal given back first, or it would be
/// lost in the alternate screen.
fn restore_on_panic() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            restore();
            previous(info);
        }));
    });
}

/// The terminal's input events, read on their own thread (crossterm's
/// read blocks); the channel closes when reading fails for good.
pub fn input_events() -> mpsc::UnboundedReceiver<std::io::Result<Event>> {
    let (sender, receiver) = mpsc::unbounded_channel();
    std::thread::spawn(move || loop {
        let event = event::read();
        let failed = event.is_err();
        if sender.send(event).is_err() || failed {
            break;
        }
    });
    receiver
}
