//! A container's lifecycle state, stored as docker's word for it (`State.Status`), so
//! the column reads the same to anyone who opens the database.

use crate::StateError;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use std::fmt;
use std::str::FromStr;

/// The states a container record is in. docker also names `removing` and `dead`:
/// coracle removes a container in one step and never keeps a half-removed one, so no
/// record is in either (`ps --filter status=` still accepts them, matching nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerState {
    /// Made and never started, or its last start failed.
    Created,
    Running,
    /// Frozen (`pause`): its processes exist but do not run.
    Paused,
    /// Exited, and its monitor will start it again (restart policy).
    Restarting,
    /// Stopped for good; its monitor is gone.
    Exited,
}

impl ContainerState {
    pub const ALL: [ContainerState; 5] = [
        ContainerState::Created,
        ContainerState::Running,
        ContainerState::Paused,
        ContainerState::Restarting,
        ContainerState::Exited,
    ];

    /// docker's word, as stored in the database and shown by `ps` and `inspect`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Exited => "exited",
        }
    }

    /// Running, paused or restarting: its monitor should be alive (docker's
    /// `State.Running`).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            ContainerState::Running | ContainerState::Paused | ContainerState::Restarting
        )
    }

    /// Running or paused: its processes exist ("Up" in `ps`). Between restarts there
    /// are none.
    pub fn is_up(self) -> bool {
        matches!(self, ContainerState::Running | ContainerState::Paused)
    }

    /// `kill` needs processes to signal; a paused container's get theirs when thawed.
    pub fn can_kill(self) -> bool {
        self.is_up()
    }

    pub fn can_pause(self) -> bool {
        self == ContainerState::Running
    }

    pub fn can_unpause(self) -> bool {
        self == ContainerState::Paused
    }

    /// `exec` runs a process beside the container's own, which must be running.
    pub fn can_exec(self) -> bool {
        self == ContainerState::Running
    }

    /// Stopped (created or exited): a monitor may claim it to start it.
    pub fn can_start(self) -> bool {
        matches!(self, ContainerState::Created | ContainerState::Exited)
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ContainerState {
    type Err = StateError;

    fn from_str(s: &str) -> Result<ContainerState, StateError> {
        ContainerState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| StateError::Corrupt {
                what: "container state",
                value: s.to_string(),
            })
    }
}

impl ToSql for ContainerState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

/// A word this coracle does not know is a corrupt record, reported as
/// [`StateError::Corrupt`] inside the query's error.
impl FromSql for ContainerState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<ContainerState> {
        value
            .as_str()?
            .parse()
            .map_err(|e: StateError| FromSqlError::Other(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_are_dockers() {
        let words: Vec<&str> = ContainerState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            words,
            ["created", "running", "paused", "restarting", "exited"]
        );
        for s in ContainerState::ALL {
            assert_eq!(s.as_str().parse::<ContainerState>().unwrap(), s);
            assert_eq!(s.to_string(), s.as_str());
        }
    }

    #[test]
    fn unknown_words_are_corrupt() {
        for bad in ["", "Running", "dead", "removing", "up"] {
            let err = bad.parse::<ContainerState>().unwrap_err();
            assert!(
                matches!(&err, StateError::Corrupt { what: "container state", value } if value == bad),
                "{err}"
            );
            assert_eq!(err.kind(), coracle_core::ErrorKind::Internal);
        }
    }

    #[test]
    fn predicates() {
        use ContainerState::*;
        let with = |p: fn(ContainerState) -> bool| -> Vec<ContainerState> {
            ContainerState::ALL.into_iter().filter(|s| p(*s)).collect()
        };
        assert_eq!(
            with(ContainerState::is_active),
            [Running, Paused, Restarting]
        );
        assert_eq!(with(ContainerState::is_up), [Running, Paused]);
        assert_eq!(with(ContainerState::can_kill), [Running, Paused]);
        assert_eq!(with(ContainerState::can_pause), [Running]);
        assert_eq!(with(ContainerState::can_unpause), [Paused]);
        assert_eq!(with(ContainerState::can_exec), [Running]);
        assert_eq!(with(ContainerState::can_start), [Created, Exited]);
    }
}
