//! The module tree reads as the data flow, and a lower layer never imports
//! a higher one (docs/design/architecture.md): every `crate::` path outside test
//! modules is checked against the layer order.

use std::path::{Path, PathBuf};

/// Lowest first. `cli`, `logging`, `loadtest` (which runs the app's
/// collection for a recorded run) and `top` (which runs it for the live
/// view) sit with `app`, at the top.
const LAYERS: &[&[&str]] = &[
    &["clock", "backoff", "exit"],
    &["telemetry"],
    &["engine"],
    &["schema"],
    &["config"],
    &["sources"],
    &["writer"],
    &["supervision"],
    &["app", "cli", "logging", "loadtest", "top"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The top-level modules a text names as `crate::<module>`.
fn crate_paths(text: &str) -> Vec<&str> {
    text.match_indices("crate::")
        .map(|(at, _)| {
            let rest = &text[at + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

#[test]
fn no_module_imports_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = Vec::new();
    for file in rust_files(&src) {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.iter().next().unwrap().to_str().unwrap();
        let top = top.strip_suffix(".rs").unwrap_or(top);
        if top == "lib" || top == "main" {
            continue;
        }
        let own = layer_of(top).unwrap_or_else(|| panic!("src/{top} is in no layer"));
        let text = std::fs::read_to_string(&file).unwrap();
        // Tests may reach anywhere; the code may not.
        let code = text.split("#[cfg(test)]").next().unwrap();
        for module in crate_paths(code) {
            let theirs =
                layer_of(module).unwrap_or_else(|| panic!("crate::{module} is in no layer"));
            if theirs > own {
                wrong.push(format!("{} imports crate::{module}", relative.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "lower layers importing higher ones:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_sees_an_import_from_a_higher_layer() {
    assert_eq!(
        crate_paths("use crate::writer::WritePoint;\nuse crate::clock::now_ns;"),
        ["writer", "clock"]
    );
    assert!(layer_of("writer") > layer_of("sources"));
}
