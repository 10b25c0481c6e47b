//! Attached sessions (`run` in the foreground, `start -a`, `attach`): a terminal
//! relayed to a container's monitor over its attach socket, the signals this process
//! receives passed on to the container.

use crate::Containers;
use coracle_core::ErrorKind;
use coracle_model::DEFAULT_DETACH_KEYS;
use coracle_runtime::monitor::session::{relay, AttachOptions};
use std::os::unix::net::UnixStream;

/// How an attached session ended.
pub use coracle_runtime::monitor::session::AttachEnd;

/// What a front end attaches of its terminal (this process's stdio) to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachSession {
    /// The container's full id.
    pub container: String,
    /// The container has a tty: raw mode on ours, its window size passed on.
    pub tty: bool,
    /// Send our stdin to the container.
    pub stdin: bool,
    /// Show the container's stdout, its stderr (`run -a`).
    pub stdout: bool,
    pub stderr: bool,
    /// The detach sequence; None: docker's default (ctrl-p,ctrl-q).
    pub detach_keys: Option<Vec<u8>>,
    /// docker's `--sig-proxy` (never with a tty, where ^C is a byte for the container).
    pub sig_proxy: bool,
}

/// The relay with the monitor broke (not the container's end, nor the monitor's).
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(transparent)]
    Relay(#[from] std::io::Error),
}

impl AttachError {
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

impl Containers<'_> {
    /// Runs the session on `stream` (from [`attach_container`](Engine::attach_container)
    /// or `start_container`) to its end. A monitor lost mid-session (killed) is
    /// reconciled and the container's recorded exit code returned.
    pub fn run_attach_session(
        &mut self,
        stream: UnixStream,
        s: &AttachSession,
    ) -> Result<AttachEnd, AttachError> {
        let opts = AttachOptions {
            stdout: s.stdout,
            stderr: s.stderr,
            stdin: s.stdin,
            tty: s.tty,
            detach_keys: s
                .detach_keys
                .clone()
                .unwrap_or_else(|| DEFAULT_DETACH_KEYS.to_vec()),
            proxy_signals: s.sig_proxy && !s.tty,
        };
        let end = relay(stream, &opts, &mut |sig| {
            // The container may have just exited: nothing to pass the signal to then.
            let _ = self.signal_container(&s.container, sig);
        })?;
        if end == AttachEnd::Lost {
            return Ok(match self.wait_container(&s.container) {
                Ok(code) => AttachEnd::Exited(code as i32),
                Err(_) => AttachEnd::Lost,
            });
        }
        Ok(end)
    }
}
