//! Configuration errors: each names the setting, where its value came from,
//! and what is wrong with it.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum ConfigError {
    /// The file named by `--config` could not be read.
    ReadFile {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, or a bad value; the
    /// parser's message carries the line and column.
    File { path: PathBuf, message: String },
    /// An environment variable has a bad value.
    Env {
        var: &'static str,
        key: &'static str,
        message: String,
    },
    /// A command-line flag is malformed or has a bad value.
    Flag { flag: String, message: String },
    /// A value is well-formed but does not fit with the others.
    Invalid {
        key: &'static str,
        origin: String,
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ReadFile { path, error } => {
                write!(f, "cannot read config file {}: {error}", path.display())
            }
            ConfigError::File { path, message } => {
                write!(f, "config file {}: {}", path.display(), message.trim_end())
            }
            ConfigError::Env { var, key, message } => {
                write!(f, "environment variable {var} (setting `{key}`): {message}")
            }
            ConfigError::Flag { flag, message } => write!(f, "command-line flag {flag}: {message}"),
            ConfigError::Invalid {
                key,
                origin,
                message,
            } => {
                write!(f, "setting `{key}` (from {origin}): {message}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}
