//! `top` as a person runs it: the real program in a real terminal (tmux,
//! driven by `send-keys` and read by `capture-pane`) beside the real
//! engine's containers: a throttled burner, an idle container, one that
//! spikes its memory between readings and one whose worker the OOM killer
//! kills; and `--once` writing to a file.

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use support::containers::{docker, TestContainers};
use support::service::BINARY;

const MIB: f64 = 1024.0 * 1024.0;

/// One test at a time: two burners at half a core each would share what a
/// busy machine leaves them and neither would reach its limit.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// What each test starts from: its turn, its containers, and the name
/// prefix `top --containers` selects them by.
struct TopTest {
    containers: TestContainers,
    prefix: String,
    // Last, so the containers are gone before the next test's turn.
    _turn: MutexGuard<'static, ()>,
}

impl TopTest {
    fn new(name: &str) -> TopTest {
        let turn = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let containers = TestContainers::new(name);
        let prefix = containers.name("").trim_end_matches('-').to_string();
        TopTest {
            containers,
            prefix,
            _turn: turn,
        }
    }

    /// The command line that runs `top` on this test's containers.
    fn command(&self, extra: &str) -> String {
        format!("{BINARY} top --containers '{}-*' {extra}", self.prefix)
    }
}

const TITLES: [&str; 16] = [
    "NAME",
    "CPU %",
    "OF LIMIT",
    "THROTTLED",
    "MEM",
    "MEM %",
    "PEAK",
    "MEM PSI",
    "IO PSI",
    "NET IN/s",
    "NET OUT/s",
    "BLK READ/s",
    "BLK WRITE/s",
    "PIDS",
    "OOM",
    "RESTARTS",
];

/// A tmux server of the test's own, with one window running a shell.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(test: &str, width: u16, height: u16) -> Tmux {
        let tmux = Tmux {
            socket: format!("dss-test-{test}-{}", std::process::id()),
        };
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "env -i PATH=/usr/bin:/bin HOME=/tmp TERM=screen PS1='$ ' sh",
        ]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("running tmux (scripts/test installs it)");
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Types `text` literally, then Enter when asked.
    fn type_line(&self, text: &str) {
        self.run(&["send-keys", "-t", "0", "-l", "--", text]);
        self.run(&["send-keys", "-t", "0", "Enter"]);
    }

    fn keys(&self, keys: &str) {
        self.run(&["send-keys", "-t", "0", "-l", "--", keys]);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "0"])
    }

    fn show(&self, format: &str) -> String {
        self.run(&["display-message", "-p", "-t", "0", format])
            .trim()
            .to_string()
    }

    fn resize(&self, width: u16, height: u16) {
        self.run(&[
            "resize-window",
            "-t",
            "0",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
    }

    /// Waits for the shell to be back after `top`: no alternate screen, the
    /// cursor shown, and exit code 0.
    fn wait_until_top_has_exited(&self) {
        self.wait_for(Duration::from_secs(10), "the shell again", |_| {
            (self.show("#{alternate_on}") == "0").then_some(())
        });
        assert_eq!(self.show("#{cursor_flag}"), "1", "cursor visible");
        self.type_line("echo exit=$?");
        self.wait_for(Duration::from_secs(5), "top's exit code", |screen| {
            screen.text.contains("exit=0").then_some(())
        });
    }

    /// Captures the screen until `check` finds what it wants in it.
    fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        check: impl Fn(&Screen) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = Screen::read(&self.screen());
            if let Some(found) = check(&screen) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {timeout:?}; the screen:\n{}",
                screen.text
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// A captured screen, its table read by the header's column positions.
struct Screen {
    text: String,
    rows: Vec<HashMap<&'static str, String>>,
}

impl Screen {
    fn read(text: &str) -> Screen {
        let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
        let mut rows = Vec::new();
        if let Some(at) = lines
            .iter()
            .position(|l| l.starts_with(&['N', 'A', 'M', 'E']))
        {
            let header: String = lines[at].iter().collect::<String>().replace('▼', " ");
            let header: Vec<char> = header.chars().collect();
            let starts: Vec<(&'static str, usize)> = TITLES
                .iter()
                .filter_map(|title| Some((*title, find(&header, title)?)))
                .collect();
            for line in &lines[at + 1..] {
                if line.iter().all(|c| *c == ' ') || line.first() == Some(&'┌') {
                    break;
                }
                let mut row = HashMap::new();
                for (i, (title, start)) in starts.iter().enumerate() {
                    let end = starts.get(i + 1).map_or(line.len(), |(_, s)| *s);
                    let cell: String = line
                        .get(*start..end.min(line.len()))
                        .unwrap_or_default()
                        .iter()
                        .collect();
                    row.insert(*title, cell.trim().to_string());
                }
                rows.push(row);
            }
        }
        Screen {
            text: text.to_string(),
            rows,
        }
    }

    fn row(&self, name: &str) -> Option<&HashMap<&'static str, String>> {
        self.rows.iter().find(|row| row["NAME"] == name)
    }

    fn names(&self) -> Vec<String> {
        self.rows.iter().map(|row| row["NAME"].clone()).collect()
    }
}

/// Where `title` starts in `header` as a whole word (`MEM` is not `MEM %`).
fn find(header: &[char], title: &str) -> Option<usize> {
    let title: Vec<char> = title.chars().collect();
    (0..header.len().saturating_sub(title.len() - 1)).find(|&i| {
        header[i..i + title.len()] == title[..]
            && (i == 0 || header[i - 1] == ' ')
            && header.get(i + title.len()).is_none_or(|c| *c == ' ')
    })
}

/// A figure as shown: `50.1%` as 50.1, `40MiB` and `1.5MiB/s` in bytes.
fn number(cell: &str) -> Option<f64> {
    let figure = cell.split_whitespace().next()?.trim_end_matches("/s");
    if figure == "-" {
        return None;
    }
    let split = figure
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(figure.len());
    let (value, unit) = figure.split_at(split);
    let scale = match unit {
        "" | "%" | "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => MIB,
        "GiB" => 1024.0 * MIB,
        _ => return None,
    };
    Some(value.parse::<f64>().ok()? * scale)
}

fn figure(row: &HashMap<&'static str, String>, title: &str) -> Option<f64> {
    number(&row[title])
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[test]
fn the_live_view_shows_limits_throttling_peaks_oom_kills_and_follows_containers() {
    let test = TopTest::new("top");
    let containers = &test.containers;
    let tmux = Tmux::start("top", 200, 60);
    tmux.type_line(&test.command("--sort name"));
    let burner = containers.name("burner");
    let idle = containers.name("idle");
    let spiky = containers.name("spiky");
    let oom = containers.name("oom");
    containers.cpu_starved("burner");
    containers.idle("idle");
    let oom_id = containers.oom_worker("oom");
    tmux.wait_for(Duration::from_secs(30), "row of each container", |screen| {
        [&burner, &idle, &oom]
            .iter()
            .all(|name| screen.row(name).is_some())
            .then_some(())
    });

    // The burner over five redraws: half a core, all of its limit, and
    // throttled in most periods; the idle container at nothing.
    let mut cpu = Vec::new();
    let mut of_limit = Vec::new();
    let mut throttled = Vec::new();
    let mut idle_cpu = Vec::new();
    let started = Instant::now();
    while cpu.len() < 5 {
        let screen = Screen::read(&tmux.screen());
        let (Some(row), Some(idle_row)) = (screen.row(&burner), screen.row(&idle)) else {
            panic!("rows missing:\n{}", screen.text);
        };
        if let (Some(c), Some(l), Some(t), Some(i)) = (
            figure(row, "CPU %"),
            figure(row, "OF LIMIT"),
            figure(row, "THROTTLED"),
            figure(idle_row, "CPU %"),
        ) {
            if cpu.last() != Some(&c) || of_limit.last() != Some(&l) {
                cpu.push(c);
                of_limit.push(l);
                throttled.push(t);
                idle_cpu.push(i);
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            screen.text
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let (cpu, of_limit) = (median(cpu), median(of_limit));
    eprintln!("burner: CPU {cpu}%, {of_limit}% of its limit, throttled {throttled:?}");
    assert!((cpu - 50.0).abs() <= 5.0, "CPU {cpu}%");
    assert!((of_limit - 100.0).abs() <= 10.0, "{of_limit}% of the limit");
    assert!(median(throttled) > 50.0, "throttled share");
    assert!(idle_cpu.iter().all(|c| *c < 0.5), "idle CPU {idle_cpu:?}");

    // A spike between readings shows in PEAK while MEM stays low: 40 MiB
    // and one more each second, for as long as dd takes to fill it, far
    // shorter than the 100 ms between readings. Each is higher than the
    // last, so a kernel without a peak per reader (cgroup v1) shows each as
    // a rise of the container's since-start peak.
    containers.run(
        "spiky",
        &["-m", "256m"],
        &[
            "sh",
            "-c",
            "i=40; while :; do sleep 1; dd if=/dev/zero of=/dev/null bs=${i}M count=1 2>/dev/null; i=$((i+1)); done",
        ],
    );
    let (peak, used) = tmux.wait_for(Duration::from_secs(20), "spike in PEAK", |screen| {
        let row = screen.row(&spiky)?;
        let peak = figure(row, "PEAK")?;
        let used = figure(row, "MEM")?;
        (peak >= 40.0 * MIB && used < 20.0 * MIB).then_some((peak, used))
    });
    eprintln!("spiky: peak {peak} B while in use {used} B");

    // The OOM killer kills the worker: the row counts it, the events show it.
    containers.kill_worker(&oom_id);
    tmux.wait_for(Duration::from_secs(20), "OOM kill in the row", |screen| {
        (figure(screen.row(&oom)?, "OOM")? >= 1.0).then_some(())
    });
    tmux.keys("/");
    tmux.keys("-oom");
    tmux.run(&["send-keys", "-t", "0", "Enter"]);
    tmux.wait_for(
        Duration::from_secs(10),
        "oom in the events pane",
        |screen| {
            let pane_title = format!(" {oom} (last minute) ");
            (screen.text.contains(&pane_title) && screen.text.contains(" oom")).then_some(())
        },
    );
    // Escape alone: a key right behind it would read as Alt and that key.
    tmux.run(&["send-keys", "-t", "0", "Escape"]);
    tmux.wait_for(Duration::from_secs(5), "the filter cleared", |screen| {
        (!screen.text.contains("filter:") && screen.rows.len() >= 4).then_some(())
    });

    // Each order, by its key: the column it names reads from high to low
    // (unknown last), names from A to Z.
    for (key, title) in [
        ("c", "CPU %"),
        ("l", "OF LIMIT"),
        ("m", "MEM"),
        ("t", "THROTTLED"),
        ("i", "MEM PSI"),
        ("n", "NET IN/s"),
        ("a", "NAME"),
    ] {
        tmux.keys(key);
        let marked = format!("{title}▼");
        tmux.wait_for(
            Duration::from_secs(5),
            &format!("order by {title}"),
            |screen| {
                if !screen.text.contains(&marked) || screen.rows.len() < 4 {
                    return None;
                }
                // A screen out of order fails at the timeout, shown.
                if title == "NAME" {
                    let names = screen.names();
                    let mut sorted = names.clone();
                    sorted.sort();
                    return (names == sorted).then_some(());
                }
                // The network order is by both directions.
                let shown: Vec<Option<f64>> = screen
                    .rows
                    .iter()
                    .map(|r| match title {
                        "NET IN/s" => Some(figure(r, title)? + figure(r, "NET OUT/s")?),
                        _ => figure(r, title),
                    })
                    .collect();
                let known = shown.iter().take_while(|v| v.is_some()).count();
                let unknown_last = shown[known..].iter().all(Option::is_none);
                let values: Vec<f64> = shown.iter().flatten().copied().collect();
                let high_to_low = values.windows(2).all(|w| w[0] >= w[1]);
                (unknown_last && high_to_low).then_some(())
            },
        );
    }

    // A container started now appears within a refresh or two; a removed
    // one leaves.
    let later = containers.name("later");
    let asked = Instant::now();
    containers.idle("later");
    tmux.wait_for(Duration::from_secs(3), "the later container", |screen| {
        screen.row(&later).map(|_| ())
    });
    eprintln!(
        "later container shown {:?} after docker run returned",
        asked.elapsed()
    );
    let asked = Instant::now();
    docker(&["rm", "-f", &later]);
    tmux.wait_for(
        Duration::from_secs(3),
        "the removed container gone",
        |screen| screen.row(&later).is_none().then_some(()),
    );
    eprintln!(
        "removed container gone {:?} after docker rm returned",
        asked.elapsed()
    );

    // A click selects a row (SGR mouse report, as a terminal sends it).
    let screen = Screen::read(&tmux.screen());
    let header_line = screen
        .text
        .lines()
        .position(|l| l.starts_with("NAME"))
        .unwrap();
    let second = screen.rows[1]["NAME"].clone();
    let click = format!(
        "\x1b[<0;3;{}M\x1b[<0;3;{}m",
        header_line + 3,
        header_line + 3
    );
    tmux.keys(&click);
    tmux.wait_for(
        Duration::from_secs(5),
        "the clicked row's detail",
        |screen| {
            screen
                .text
                .contains(&format!(" {second} (last minute) "))
                .then_some(())
        },
    );

    // Narrow and wide terminals keep the table readable.
    for (width, height) in [(80u16, 24u16), (200, 60)] {
        tmux.resize(width, height);
        tmux.wait_for(
            Duration::from_secs(5),
            &format!("a table at {width}x{height}"),
            |screen| {
                if screen
                    .text
                    .lines()
                    .any(|l| l.chars().count() > usize::from(width))
                {
                    return None;
                }
                let row = screen.row(&burner)?;
                figure(row, "CPU %")?;
                figure(row, "MEM")?;
                let wide_columns = screen.text.contains("RESTARTS");
                (wide_columns == (width >= 200)).then_some(())
            },
        );
    }

    // q gives the terminal back: no alternate screen, the cursor shown.
    assert_eq!(tmux.show("#{alternate_on}"), "1");
    tmux.keys("q");
    tmux.wait_until_top_has_exited();
}

#[test]
fn sigterm_gives_the_terminal_back_and_once_prints_one_table() {
    let test = TopTest::new("top-once");
    let (containers, prefix) = (&test.containers, &test.prefix);
    let burner = containers.name("burner");
    containers.cpu_starved("burner");
    containers.idle("idle");

    let tmux = Tmux::start("top-term", 120, 40);
    tmux.type_line(&test.command(""));
    tmux.wait_for(Duration::from_secs(30), "the burner's row", |screen| {
        screen.row(&burner).map(|_| ())
    });
    let pattern = format!("top --containers {prefix}-");
    let killed = Command::new("pkill")
        .args(["-TERM", "-f", &pattern])
        .status()
        .unwrap();
    assert!(killed.success(), "pkill found top");
    tmux.wait_until_top_has_exited();

    // Piped to a file: one table of every column, and exit 0.
    let output = Command::new(BINARY)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .args(["top", "--containers", &format!("{prefix}-*")])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let table = String::from_utf8(output.stdout).unwrap();
    let screen = Screen::read(&table);
    assert_eq!(screen.rows.len(), 2, "{table}");
    let header = table.lines().next().unwrap();
    for title in TITLES {
        assert!(
            find(&header.chars().collect::<Vec<_>>(), title).is_some(),
            "{title} in {header}"
        );
    }
    let row = screen.row(&burner).unwrap();
    let cpu = figure(row, "CPU %").unwrap();
    assert!((cpu - 50.0).abs() <= 10.0, "burner CPU {cpu}% in:\n{table}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("sampling every 100ms from the cgroup files"),
        "{stderr}"
    );
}
