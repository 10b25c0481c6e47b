//! The built-in runtime: youki's libcontainer, in-process.
//!
//! How libcontainer's processes relate (0.7.0): `build()` clones an intermediate
//! process, which clones the container init with CLONE_PARENT, so the init is a child
//! of the process that called `create` (the monitor) and that process reaps it with
//! `waitpid`. `build()` returns once the init has set everything up and waits on the
//! notify socket; `start()` releases it. A command that is not found or not executable
//! fails `create` (libcontainer validates the executable inside the container before it
//! reports ready); an exec that still fails later makes the init exit 127/126 (see
//! [`CoracleExecutor`]).

use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::signal::Signal;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;

use super::{error_chain, Op, ProcessIo, Runtime, RuntimeError, RuntimeState, Status};

/// youki's libcontainer with its state under `root` (one directory per container).
#[derive(Debug, Clone)]
pub struct Youki {
    root: PathBuf,
}

impl Youki {
    pub fn new(root: impl Into<PathBuf>) -> Youki {
        Youki { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn load(&self, id: &str, op: Op) -> Result<Container, RuntimeError> {
        let dir = self.root.join(id);
        if !dir.join("state.json").exists() {
            return Err(RuntimeError::NotFound {
                id: id.to_string(),
                runtime: self.name().to_string(),
            });
        }
        Container::load(dir).map_err(|e| self.err(op, id, &e))
    }

    fn err(&self, op: Op, id: &str, e: &dyn std::error::Error) -> RuntimeError {
        RuntimeError::from_message(self.name(), op, id, error_chain(e))
    }
}

impl Runtime for Youki {
    fn name(&self) -> &str {
        super::BUILTIN
    }

    fn create(&self, id: &str, bundle: &Path, io: ProcessIo) -> Result<u32, RuntimeError> {
        fs::create_dir_all(&self.root).map_err(|source| RuntimeError::Io {
            what: "create runtime state directory",
            path: self.root.clone(),
            source,
        })?;
        let mut builder = ContainerBuilder::new(id.to_string(), SyscallType::Linux)
            .with_root_path(&self.root)
            .map_err(|e| self.err(Op::Create, id, &e))?
            .with_executor(CoracleExecutor);
        builder = match io {
            ProcessIo::Inherit {
                stdin,
                stdout,
                stderr,
            } => builder
                .with_stdin(stdin)
                .with_stdout(stdout)
                .with_stderr(stderr),
            ProcessIo::ConsoleSocket(path) => builder.with_console_socket(Some(path)),
        };
        let container = builder
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(|e| self.err(Op::Create, id, &e))?;
        container
            .pid()
            .map(|p| p.as_raw() as u32)
            .ok_or_else(|| RuntimeError::Failed {
                runtime: self.name().to_string(),
                op: Op::Create,
                id: id.to_string(),
                message: "libcontainer reported no init pid".to_string(),
            })
    }

    fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let mut c = self.load(id, Op::Start)?;
        c.start().map_err(|e| self.err(Op::Start, id, &e))
    }

    fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        let mut c = self.load(id, Op::Kill)?;
        let sig = Signal::try_from(signal).map_err(|e| self.err(Op::Kill, id, &e))?;
        c.kill(sig, false).map_err(|e| self.err(Op::Kill, id, &e))
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let mut c = match self.load(id, Op::Delete) {
            Ok(c) => c,
            Err(RuntimeError::NotFound { .. }) if force => {
                // A create that died half-way may leave the directory without state.
                let _ = fs::remove_dir_all(self.root.join(id));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        c.delete(force).map_err(|e| self.err(Op::Delete, id, &e))
    }

    fn state(&self, id: &str) -> Result<RuntimeState, RuntimeError> {
        let c = self.load(id, Op::State)?;
        let status = match c.status() {
            ContainerStatus::Creating => Status::Creating,
            ContainerStatus::Created => Status::Created,
            ContainerStatus::Running => Status::Running,
            ContainerStatus::Stopped => Status::Stopped,
            ContainerStatus::Paused => Status::Paused,
        };
        Ok(RuntimeState {
            id: id.to_string(),
            status,
            pid: match status {
                Status::Stopped => None,
                _ => c.pid().map(|p| p.as_raw() as u32),
            },
            bundle: c.bundle().clone(),
        })
    }
}

/// libcontainer's default validation (command found and executable, else `create`
/// fails), then an exec that starts the payload with an empty signal mask (the monitor
/// blocks the signals it forwards, and a blocked mask survives execve) and turns a late
/// exec failure into docker's exit codes: 127 not found, 126 not executable.
#[derive(Clone)]
struct CoracleExecutor;

impl Executor for CoracleExecutor {
    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }

    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let args = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().as_ref())
            .filter(|a| !a.is_empty())
            .ok_or(ExecutorError::InvalidArg)?;
        let argv: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_bytes()).map_err(|_| ExecutorError::InvalidArg))
            .collect::<Result<_, _>>()?;
        let _ = nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&nix::sys::signal::SigSet::empty()),
            None,
        );
        let err = match nix::unistd::execvp(&argv[0], &argv) {
            Err(e) => e,
            Ok(never) => match never {},
        };
        let code = if err == nix::errno::Errno::ENOENT {
            127
        } else {
            126
        };
        eprintln!("exec {:?}: {}", args[0], err.desc());
        // SAFETY: _exit only ends this (forked, pre-exec) process.
        unsafe { libc::_exit(code) }
    }
}
