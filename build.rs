//! Puts the commit the binary is built from into `--version`
//! (`DSS_GIT_COMMIT`): from the environment when set (an image build, whose
//! context has no `.git`), else from git, else `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=DSS_GIT_COMMIT");
    let own_checkout = in_own_checkout();
    let commit = std::env::var("DSS_GIT_COMMIT")
        .ok()
        .filter(|commit| !commit.is_empty())
        .or_else(|| own_checkout.then(|| git(&["rev-parse", "--short=12", "HEAD"]))?)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=DSS_GIT_COMMIT={commit}");
    if !own_checkout {
        return;
    }
    // A new commit moves HEAD's reflog (whatever the ref storage) and the
    // branch HEAD points at: build again then, and only then. A path that
    // does not exist would make every build run this script again, so only
    // those that do are named; `--git-path` finds them in a worktree too.
    for file in ["HEAD", "packed-refs", "refs/heads", "logs/HEAD"] {
        if let Some(path) = git(&["rev-parse", "--git-path", file]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}

/// Whether this crate is the top of a git checkout: unpacked inside some
/// other repository (a crate from crates.io under a home directory kept in
/// git), that repository's commit is not this build's.
fn in_own_checkout() -> bool {
    let top = git(&["rev-parse", "--show-toplevel"]).map(std::path::PathBuf::from);
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map(std::path::PathBuf::from);
    match (top, manifest) {
        (Some(top), Some(manifest)) => match (top.canonicalize(), manifest.canonicalize()) {
            (Ok(top), Ok(manifest)) => top == manifest,
            _ => false,
        },
        _ => false,
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}
