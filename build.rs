//! Puts the commit the binary is built from into `--version`
//! (`DSS_GIT_COMMIT`): from the environment when set (an image build, whose
//! context has no `.git`), else from git, else `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=DSS_GIT_COMMIT");
    let commit = std::env::var("DSS_GIT_COMMIT")
        .ok()
        .filter(|commit| !commit.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=DSS_GIT_COMMIT={commit}");
    // A new commit moves the branch HEAD points at (or HEAD itself when
    // detached): build again then, and only then. A path that does not
    // exist would make every build run this script again, so only those
    // that do are named; `--git-path` finds them in a worktree too.
    for file in ["HEAD", "packed-refs", "refs/heads"] {
        if let Some(path) = git(&["rev-parse", "--git-path", file]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}
