//! An exec run to its end: the process `prepare_exec` prepared, run by
//! the container's runtime with this process's stdio, pty and signals, its exit code
//! the session's.
//!
//! The runtime forks the process into the container, which must not be done from a
//! multi-threaded process, and with the built-in runtime must be done from a sealed
//! copy of the binary (see `coracle_runtime::exeseal`). So unless this process already
//! runs sealed (or the container's runtime is an OCI runtime binary, which seals
//! itself) and has one thread, the session re-executes the binary, sealed, as the
//! hidden [`Helper::Exec`] with the prepared process.

use crate::containers::exec::{ExecRequest, PreparedExec};
use crate::helper::Helper;
use crate::{Containers, EngineError};
use coracle_core::ErrorKind;
use coracle_runtime::exec_session::{self, ExecError, ExecOptions, Process};
use coracle_runtime::exeseal::{self, SealError};
use coracle_runtime::runtime::{Runtime, BUILTIN};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

/// A prepared exec, ready to run.
pub struct ExecSession {
    container_id: String,
    runtime: Box<dyn Runtime>,
    process: Process,
    options: ExecOptions,
    /// The store, for the helper's command line.
    root: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecSessionError {
    /// The exec itself failed; docker's exit code is [`exec_exit_code`](Self::exec_exit_code).
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// No sealed copy of the binary could be made or run.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The sealed copy could not be executed (its words only, as docker's CLI prints).
    #[error("{0}")]
    SealedExec(SealError),
    #[error("re-execute coracle for exec: {0}")]
    Reexec(std::io::Error),
}

impl ExecSessionError {
    /// When the exec itself failed, docker's exit code for it: the command's 126/127,
    /// 1 when the container stopped first, else 126. None when the session could not
    /// be got going.
    pub fn exec_exit_code(&self) -> Option<i32> {
        match self {
            ExecSessionError::Exec(e) => Some(e.exit_code()),
            _ => None,
        }
    }

    /// Whether this is the runtime's refusal to run the command, which docker prints
    /// as it is.
    pub fn is_runtime_refusal(&self) -> bool {
        matches!(self, ExecSessionError::Exec(ExecError::Exec { .. }))
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            ExecSessionError::Exec(e) => e.kind(),
            ExecSessionError::Seal(e) | ExecSessionError::SealedExec(e) => e.kind(),
            ExecSessionError::Reexec(_) => ErrorKind::Internal,
        }
    }
}

impl Containers<'_> {
    /// `exec`: the session that runs `req` in the running container `key` (docker's
    /// refusals as `prepare_exec`'s).
    pub fn exec_session(
        &mut self,
        key: &str,
        req: &ExecRequest,
    ) -> Result<ExecSession, EngineError> {
        let PreparedExec {
            container_id,
            runtime,
            process,
        } = self.prepare_exec(key, req)?;
        Ok(ExecSession {
            container_id,
            runtime,
            process,
            options: exec_options(req.interactive, req.detach),
            root: self.paths.root.clone(),
        })
    }

    /// The session of a [`Helper::Exec`]: the process `exec` prepared for container
    /// `id`.
    pub fn exec_helper_session(
        &self,
        id: &str,
        process: Process,
        interactive: bool,
        detach: bool,
    ) -> Result<ExecSession, EngineError> {
        Ok(ExecSession {
            container_id: id.to_string(),
            runtime: self.runtime_for(&self.container_config(id)?)?,
            process,
            options: exec_options(interactive, detach),
            root: self.paths.root.clone(),
        })
    }
}

fn exec_options(interactive: bool, detach: bool) -> ExecOptions {
    ExecOptions {
        interactive,
        detach,
        console_dir: PreparedExec::console_dir(),
    }
}

impl ExecSession {
    /// Runs the session from this process when it can (one thread; sealed, or an OCI
    /// runtime binary); otherwise this process (same pid, terminal and signals) is
    /// replaced by the [`Helper::Exec`] that runs it, and this returns only on failure.
    pub fn run(self) -> Result<i32, ExecSessionError> {
        let builtin = self.runtime.name() == BUILTIN;
        let sealed = builtin && exeseal::self_is_sealed();
        if exec_session::single_threaded() && (sealed || !builtin) {
            return self.run_here();
        }
        let helper = Helper::Exec {
            id: self.container_id.clone(),
            process: Box::new(self.process.clone()),
            interactive: self.options.interactive,
            detach: self.options.detach,
        };
        let mut argv: Vec<OsString> = vec![std::env::args_os()
            .next()
            .unwrap_or_else(|| "coracle".into())];
        argv.extend(helper.command_line(&self.root));
        if builtin && !sealed {
            // The built-in runtime forks into the container from this process: it
            // must run from a sealed copy of the binary (CVE-2019-5736).
            return Err(ExecSessionError::SealedExec(
                exeseal::seal_self()?.exec(&argv),
            ));
        }
        let err = std::process::Command::new("/proc/self/exe")
            .arg0(&argv[0])
            .args(&argv[1..])
            .exec();
        Err(ExecSessionError::Reexec(err))
    }

    /// The hidden [`Helper::Exec`]: with the built-in runtime this process is first
    /// replaced by a sealed copy run with the same arguments (unless already sealed),
    /// then the session runs here.
    pub fn run_as_helper(self) -> Result<i32, ExecSessionError> {
        if self.runtime.name() == BUILTIN {
            exeseal::ensure_sealed()?;
        }
        self.run_here()
    }

    fn run_here(self) -> Result<i32, ExecSessionError> {
        Ok(exec_session::run(
            self.runtime.as_ref(),
            &self.container_id,
            &self.process,
            &self.options,
        )?)
    }
}
