//! The command line as users meet it: every example command in README.md
//! and docs/ parses, the synopses of docs/load-tests.md list exactly the
//! options each command's help lists, and the binary's exit codes, version,
//! completions (run by bash and fish themselves) and man page (rendered by
//! groff) are what docs/ says.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "support/markdown.rs"]
mod markdown;
use markdown::{markdown_files, root};

use docker_stats_service::cli;

fn binary(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_docker-stats-service"))
        .args(args)
        .output()
        .expect("running the binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The shell lines of a markdown file's fenced code blocks (not ```text
/// ones, which show output), with `\`
/// continuations joined and `#` comments removed, and its inline code
/// spans that name the service.
fn code_lines(path: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let mut in_block = false;
    // A ```text block shows what a terminal printed, not commands.
    let mut shown_text = false;
    let mut pending = String::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        if let Some(fence) = line.trim_start().strip_prefix("```") {
            in_block = !in_block;
            shown_text = in_block && fence.trim() == "text";
            continue;
        }
        if shown_text {
            continue;
        }
        if !in_block {
            // Inline commands: `docker-stats-service healthcheck --liveness`.
            lines.extend(
                line.split('`')
                    .skip(1)
                    .step_by(2)
                    .filter(|span| span.contains("docker-stats-service "))
                    .map(str::to_string),
            );
            continue;
        }
        let line = match line.find(" #") {
            Some(at) => &line[..at],
            None => line,
        };
        if let Some(start) = line.trim_end().strip_suffix('\\') {
            pending.push_str(start);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        lines.push(std::mem::take(&mut pending));
    }
    lines
}

/// The arguments of a documented invocation of the service: the words
/// after `docker-stats-service` (run directly, after `VAR=value`
/// assignments) or after `cargo run ... --`; `None` for other lines and for
/// synopses (`[--flag ...]`).
fn invocation(line: &str) -> Option<Vec<String>> {
    if ["[--", "(--", " <", "..."].iter().any(|s| line.contains(s)) {
        return None;
    }
    let words = shlex::split(line)?;
    let mut words = words.into_iter().skip_while(|w| {
        w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
    });
    let first = words.next()?;
    let args: Vec<String> = if first == "cargo" {
        let rest: Vec<String> = words.collect();
        if rest.first().map(String::as_str) != Some("run") {
            return None;
        }
        rest.into_iter().skip_while(|w| w != "--").skip(1).collect()
    } else if is_service(&first) {
        words.collect()
    } else if first == "docker" {
        // `docker exec CONTAINER docker-stats-service ...`, or `docker run
        // ... IMAGE ...` with the service's image: what follows is its
        // command line.
        let rest: Vec<String> = words.collect();
        if !matches!(rest.first().map(String::as_str), Some("exec" | "run")) {
            return None;
        }
        let at = rest.iter().position(|w| is_service(w) || is_image(w))?;
        rest[at + 1..].to_vec()
    } else {
        return None;
    };
    // A pipe or a redirection ends the service's arguments.
    Some(
        args.into_iter()
            .take_while(|w| !matches!(w.as_str(), "|" | "&&" | ";" | ">" | "2>&1"))
            .collect(),
    )
}

fn is_service(word: &str) -> bool {
    word == "docker-stats-service" || word.ends_with("/docker-stats-service")
}

fn is_image(word: &str) -> bool {
    word.split(':').next() == Some("docker-stats-service")
}

#[test]
fn every_documented_example_command_parses() {
    let mut checked = 0;
    for file in markdown_files() {
        for line in code_lines(&file) {
            let Some(args) = invocation(&line) else {
                continue;
            };
            if let Err(error) = cli::parse(args.clone()) {
                assert_eq!(
                    error.exit_code(),
                    0,
                    "{}: `{line}` does not parse:\n{error}",
                    file.display()
                );
            }
            checked += 1;
        }
    }
    // README's and docs/'s quick starts, configuration and load-test pages.
    assert!(checked >= 10, "only {checked} example commands found");
}

/// The `--flags` of the synopsis in docs/load-tests.md that starts with
/// `docker-stats-service COMMAND`, up to the block's end.
fn synopsis_flags(command: &str) -> Vec<String> {
    let page = std::fs::read_to_string(root().join("docs/load-tests.md")).unwrap();
    let start = page
        .find(&format!("docker-stats-service {command} ["))
        .or_else(|| page.find(&format!("docker-stats-service {command} (")))
        .unwrap_or_else(|| panic!("no synopsis of {command} in docs/load-tests.md"));
    let block = &page[start..start + page[start..].find("```").unwrap()];
    flags(block)
}

fn flags(text: &str) -> Vec<String> {
    let mut found: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(str::to_string)
        .collect();
    found.sort();
    found.dedup();
    found
}

#[test]
fn each_command_s_help_lists_the_options_its_synopsis_lists() {
    let global = ["--config", "--help", "--log-level", "--set"];
    for command in ["record", "report", "top"] {
        let help = binary(&[command, "--help"]);
        assert!(help.status.success());
        let options = text(&help.stdout);
        let options = &options[options.find("Options:").unwrap()..];
        let options = &options[..options.find("\n\n").unwrap_or(options.len())];
        let in_help: Vec<String> = flags(options)
            .into_iter()
            .filter(|f| !global.contains(&f.as_str()))
            .collect();
        assert_eq!(
            synopsis_flags(command),
            in_help,
            "docs/load-tests.md's synopsis of {command} against `{command} --help`"
        );
    }
}

#[test]
fn usage_errors_exit_2_on_stderr_and_help_exits_0_on_stdout() {
    let typo = binary(&["record", "--budgte", "*:oom_kills==0"]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(typo.stdout.is_empty());
    assert!(
        text(&typo.stderr).contains("'--budget'"),
        "{}",
        text(&typo.stderr)
    );
    let help = binary(&["report", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("--last <DURATION>"));
}

#[test]
fn version_names_the_commit_built() {
    // build.rs takes DSS_GIT_COMMIT when it is set, else git's HEAD.
    let commit = match std::env::var("DSS_GIT_COMMIT") {
        Ok(commit) if !commit.is_empty() => commit,
        _ => {
            let head = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .current_dir(root())
                .output()
                .expect("git");
            assert!(head.status.success(), "the test needs the git checkout");
            text(&head.stdout).trim().to_string()
        }
    };
    let version = binary(&["--version"]);
    assert!(version.status.success());
    let expected = format!(
        "docker-stats-service {} (commit {commit})\n",
        env!("CARGO_PKG_VERSION"),
    );
    assert_eq!(text(&version.stdout), expected);
}

fn completion_script(shell: &str) -> PathBuf {
    let out = binary(&["completions", shell]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Cargo's scratch directory for tests, under target/: nothing is left in /tmp.
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("completions.{shell}"));
    std::fs::write(&path, out.stdout).unwrap();
    path
}

fn shell(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed (scripts/test installs it): {e}"));
    assert!(out.status.success(), "{program}: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn bash_completes_commands_and_options() {
    let script = completion_script("bash");
    let complete = |words: &str| {
        let program = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; \
             function=$(complete -p docker-stats-service | sed -E 's/.*-F ([^ ]+).*/\\1/'); \
             $function docker-stats-service \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        shell("bash", &["-c", &program])
    };
    assert_eq!(complete("docker-stats-service rec").trim(), "record");
    let options = complete("docker-stats-service report --l");
    assert!(options.lines().any(|o| o == "--last"), "{options}");
    assert!(options.lines().any(|o| o == "--log-level"), "{options}");
}

#[test]
fn fish_completes_commands_and_options() {
    let script = completion_script("fish");
    let complete = |line: &str| {
        shell(
            "fish",
            &[
                "-c",
                &format!("source {}; complete -C '{line}'", script.display()),
            ],
        )
    };
    let commands = complete("docker-stats-service rep");
    assert!(commands.starts_with("report\t"), "{commands}");
    let options = complete("docker-stats-service record --");
    for option in [
        "--budget",
        "--containers",
        "--duration",
        "--interval",
        "--out",
    ] {
        assert!(
            options.lines().any(|o| o.starts_with(option)),
            "{option}: {options}"
        );
    }
}

#[test]
fn zsh_reads_its_completion_script() {
    let script = completion_script("zsh");
    // zsh -n parses without running: a syntax error fails it.
    shell("zsh", &["-n", script.to_str().unwrap()]);
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.starts_with("#compdef docker-stats-service"));
    assert!(text.contains("--budget") && text.contains("healthcheck"));
}

#[test]
fn the_man_page_renders_without_warnings_and_names_every_command() {
    let page = binary(&["man"]);
    assert!(page.status.success());
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("docker-stats-service.1");
    std::fs::write(&path, &page.stdout).unwrap();
    let out = Command::new("groff")
        // -P-cbou: plain text, no bold or underline overstrikes.
        .args(["-man", "-Tutf8", "-ww", "-P-cbou", path.to_str().unwrap()])
        .output()
        .expect("groff is needed (scripts/test installs groff-base)");
    assert!(out.status.success());
    assert_eq!(text(&out.stderr), "", "groff warnings");
    // groff renders a hyphen as U+2010.
    let rendered = text(&out.stdout).replace('\u{2010}', "-");
    for name in [
        "run",
        "healthcheck",
        "check-config",
        "record",
        "report",
        "top",
        "completions",
        "--config",
        "--set",
        "--log-level",
        "--version",
    ] {
        assert!(
            rendered.contains(name),
            "{name} missing from the man page:\n{rendered}"
        );
    }
}
