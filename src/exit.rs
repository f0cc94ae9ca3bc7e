//! The process's exit codes, in one place: what each means to the operator
//! and to the orchestrator that restarts the service.

use std::process::ExitCode;

/// How a run of the service or one of its commands ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything collected was delivered (or, for a command, it succeeded).
    Clean,
    /// Points could not be delivered before the shutdown timeout (those the
    /// spool did not save are lost), or `healthcheck` found the service
    /// unhealthy or unreachable.
    Failed,
    /// The command line or the configuration is wrong: restarting will not
    /// help until it is fixed.
    Configuration,
    /// `record` or `report`: a resource budget was not met (the report is
    /// written all the same).
    BudgetFailed,
    /// `record`: the load-test command's own non-zero exit code, passed on.
    Command(u8),
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Clean => 0,
            Exit::Failed => 1,
            Exit::Configuration => 2,
            Exit::BudgetFailed => 3,
            Exit::Command(code) => code,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}
