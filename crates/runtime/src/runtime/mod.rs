//! The `Runtime` trait: the seam through which the monitor runs an OCI bundle, and its
//! implementations: [`Youki`] (youki's libcontainer, in-process) and [`OciCli`] (any
//! OCI runtime binary, e.g. crun or runc, through the standard runtime CLI).
//!
//! The calling process of `create` becomes the parent of the container's init (or, for
//! [`OciCli`], inherits it as child subreaper once the runtime binary exits), so it can
//! `waitpid` for it. Call `create` only from a single-threaded process (the monitor).

mod oci_cli;
mod youki;

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use coracle_core::ErrorKind;
use oci_spec::runtime::{LinuxResources, Process};

pub use oci_cli::OciCli;
pub use youki::Youki;

/// Name under which the built-in runtime is selected.
pub const BUILTIN: &str = "youki";

/// Where the container's init process gets its stdio.
#[derive(Debug)]
pub enum ProcessIo {
    /// The init gets these descriptors as fds 0, 1, 2 (stdout and stderr stay separate).
    Inherit {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// `process.terminal` is true: the runtime creates a pty and sends its master over
    /// this unix socket (OCI console-socket protocol, SCM_RIGHTS). Absolute path.
    ConsoleSocket(PathBuf),
}

/// OCI container status, as the runtime reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "creating" => Status::Creating,
            "created" => Status::Created,
            "running" => Status::Running,
            "paused" => Status::Paused,
            "stopped" => Status::Stopped,
            _ => return None,
        })
    }
}

/// What `state` reports about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeState {
    pub id: String,
    pub status: Status,
    /// Init pid in the host pid namespace; None once stopped.
    pub pid: Option<u32>,
    pub bundle: PathBuf,
}

/// Runs OCI bundles. One value serves many containers, told apart by id.
pub trait Runtime {
    /// Short name for messages ("youki", "crun", "/usr/bin/runc").
    fn name(&self) -> &str;
    /// Creates the container from `bundle` (config.json + the rootfs it names); returns
    /// the init pid (host namespace). The process is ready but has not run the payload.
    fn create(&self, id: &str, bundle: &Path, io: ProcessIo) -> Result<u32, RuntimeError>;
    /// Runs the payload of a created container.
    fn start(&self, id: &str) -> Result<(), RuntimeError>;
    /// Sends `signal` to the container's init.
    fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError>;
    /// Removes the container's runtime state and cgroups. `force` kills it first if it
    /// still runs. Deleting an unknown container with `force` succeeds.
    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError>;
    fn state(&self, id: &str) -> Result<RuntimeState, RuntimeError>;
    /// Runs `process` inside the running container `id`: its namespaces and cgroup,
    /// with the security settings `process` carries (capabilities, no_new_privileges,
    /// user, rlimits; the container's seccomp filter, apparmor, masked paths stay as the
    /// container has them). Returns the host pid. The caller must be able to waitpid()
    /// it: it is the caller's child, or (runtimes that fork-and-exit) the caller is a
    /// child subreaper. Call only from a single-threaded process. `io` is
    /// [`ProcessIo::ConsoleSocket`] exactly when `process.terminal` is true.
    fn exec(&self, id: &str, process: &Process, io: ProcessIo) -> Result<u32, RuntimeError>;
    /// Freezes every process of the container (cgroup freezer).
    fn pause(&self, id: &str) -> Result<(), RuntimeError>;
    /// Thaws a paused container.
    fn resume(&self, id: &str) -> Result<(), RuntimeError>;
    /// Applies `resources` to the cgroups of a created, running or paused container
    /// (`runc update`): only the controllers `resources` names are written.
    fn update(&self, id: &str, resources: &LinuxResources) -> Result<(), RuntimeError>;
}

/// Picks a runtime by name: `youki` (or empty) is the built-in one, an absolute path or
/// a name found on PATH (`crun`, `runc`) is driven through the OCI CLI. `state_root` is
/// where coracle keeps runtime state (e.g. /run/coracle/runtime); each runtime gets its
/// own subdirectory.
pub fn select(name: &str, state_root: &Path) -> Result<Box<dyn Runtime>, RuntimeError> {
    if name.is_empty() || name == BUILTIN {
        return Ok(Box::new(Youki::new(state_root.join(BUILTIN))));
    }
    let binary = OciCli::resolve(name)?;
    let sub = binary
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "oci".to_string());
    Ok(Box::new(OciCli::new(binary, Some(state_root.join(sub)))))
}

/// Why the container's command could not be executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecFailure {
    /// Not found (docker exits 127).
    NotFound,
    /// Found but not executable (docker exits 126).
    PermissionDenied,
}

impl ExecFailure {
    pub fn exit_code(self) -> i32 {
        match self {
            ExecFailure::NotFound => 127,
            ExecFailure::PermissionDenied => 126,
        }
    }

    /// docker's wording: `exec: "nosuch": executable file not found in $PATH`.
    pub fn docker_message(self, command: &str) -> String {
        match self {
            ExecFailure::NotFound => {
                format!("exec: {command:?}: executable file not found in $PATH")
            }
            ExecFailure::PermissionDenied => format!("exec: {command:?}: permission denied"),
        }
    }

    /// Recognises the exec failures youki, crun and runc report in their create errors.
    pub fn classify(message: &str) -> Option<ExecFailure> {
        let m = message.to_ascii_lowercase();
        if m.contains("not found in $path")
            || (m.contains("exec") && m.contains("no such file or directory"))
        {
            Some(ExecFailure::NotFound)
        } else if m.contains("does not have correct permissions")
            || m.contains("open executable: permission denied")
            || m.contains("open executable: operation not permitted")
            || (m.contains("exec") && m.contains("permission denied"))
        {
            Some(ExecFailure::PermissionDenied)
        } else {
            None
        }
    }
}

/// Operation a runtime error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Start,
    Kill,
    Delete,
    State,
    Exec,
    Pause,
    Resume,
    Update,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Create => "create",
            Op::Start => "start",
            Op::Kill => "kill",
            Op::Delete => "delete",
            Op::State => "state",
            Op::Exec => "exec",
            Op::Pause => "pause",
            Op::Resume => "resume",
            Op::Update => "update",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("OCI runtime {name:?} not found: {reason}")]
    RuntimeNotFound { name: String, reason: String },
    #[error("container {id:?} does not exist in runtime {runtime}")]
    NotFound { id: String, runtime: String },
    /// The container's command could not be executed (not found / not executable).
    #[error("{runtime} {op} {id}: {message}")]
    Exec {
        runtime: String,
        op: Op,
        id: String,
        failure: ExecFailure,
        message: String,
    },
    #[error("{runtime} {op} {id}: {message}")]
    Failed {
        runtime: String,
        op: Op,
        id: String,
        message: String,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RuntimeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RuntimeError::RuntimeNotFound { .. } => ErrorKind::InvalidArgument,
            RuntimeError::NotFound { .. } => ErrorKind::NotFound,
            RuntimeError::Exec { .. } => ErrorKind::InvalidArgument,
            RuntimeError::Failed { .. } | RuntimeError::Io { .. } => ErrorKind::Internal,
        }
    }

    /// The exec failure, if this error is one.
    pub fn exec_failure(&self) -> Option<ExecFailure> {
        match self {
            RuntimeError::Exec { failure, .. } => Some(*failure),
            _ => None,
        }
    }

    /// Builds `Exec` when the message is an exec failure of create/start/exec, else
    /// `Failed`.
    pub(crate) fn from_message(runtime: &str, op: Op, id: &str, message: String) -> Self {
        let failure = match op {
            Op::Create | Op::Start | Op::Exec => ExecFailure::classify(&message),
            _ => None,
        };
        match failure {
            Some(failure) => RuntimeError::Exec {
                runtime: runtime.to_string(),
                op,
                id: id.to_string(),
                failure,
                message,
            },
            None => RuntimeError::Failed {
                runtime: runtime.to_string(),
                op,
                id: id.to_string(),
                message,
            },
        }
    }
}

/// Flattens an error and its sources into one line ("a: b: c").
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_exec_failures_of_each_runtime() {
        let cases = [
            // youki 0.7.0 (DefaultExecutor::validate)
            (
                "failed to create container: exec process failed with error executable 'nosuch' not found in $PATH",
                Some(ExecFailure::NotFound),
            ),
            (
                "executable 'x' at path '\"/bin/x\"' does not have correct permissions",
                Some(ExecFailure::PermissionDenied),
            ),
            // crun 1.x
            (
                "executable file `nosuch` not found in $PATH: No such file or directory",
                Some(ExecFailure::NotFound),
            ),
            ("open executable: Permission denied", Some(ExecFailure::PermissionDenied)),
            ("open executable: Operation not permitted", Some(ExecFailure::PermissionDenied)),
            // runc
            (
                "runc create failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH",
                Some(ExecFailure::NotFound),
            ),
            (
                "unable to start container process: exec: \"/etc\": permission denied",
                Some(ExecFailure::PermissionDenied),
            ),
            ("cgroup: mkdir /sys/fs/cgroup/x: permission denied", None),
            ("no space left on device", None),
        ];
        for (msg, want) in cases {
            assert_eq!(ExecFailure::classify(msg), want, "{msg}");
        }
    }

    #[test]
    fn docker_messages_and_codes() {
        assert_eq!(
            ExecFailure::NotFound.docker_message("nosuch"),
            "exec: \"nosuch\": executable file not found in $PATH"
        );
        assert_eq!(ExecFailure::NotFound.exit_code(), 127);
        assert_eq!(ExecFailure::PermissionDenied.exit_code(), 126);
    }

    #[test]
    fn only_create_start_and_exec_errors_are_exec_failures() {
        let e = RuntimeError::from_message("crun", Op::Kill, "x", "not found in $PATH".into());
        assert!(e.exec_failure().is_none());
        let e = RuntimeError::from_message("crun", Op::Create, "x", "not found in $PATH".into());
        assert_eq!(e.exec_failure(), Some(ExecFailure::NotFound));
        let e = RuntimeError::from_message(
            "youki",
            Op::Exec,
            "x",
            "exec \"/etc\": Permission denied".into(),
        );
        assert_eq!(e.exec_failure(), Some(ExecFailure::PermissionDenied));
        let e = RuntimeError::from_message("crun", Op::Pause, "x", "not found in $PATH".into());
        assert!(e.exec_failure().is_none());
    }

    #[test]
    fn select_resolves_builtin_and_rejects_unknown() {
        let root = Path::new("/tmp/coracle-select-test");
        assert_eq!(select("youki", root).unwrap().name(), "youki");
        assert_eq!(select("", root).unwrap().name(), "youki");
        let err = select("no-such-runtime-xyz", root).err().unwrap();
        assert!(matches!(err, RuntimeError::RuntimeNotFound { .. }), "{err}");
    }
}
