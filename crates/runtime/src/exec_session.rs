//! The caller's side of `exec`: runs a process in a running container through its
//! [`Runtime`] and stays with it until it exits, the way `docker exec` attaches: the
//! process's stdio is pipes we relay to ours (stdin only with `-i`, else /dev/null, as
//! docker), or a pty relayed to our terminal with `-t`; the signals we get are passed
//! on to it, and our exit code is its own. With `-d` the process is started on
//! /dev/null and left running.
//!
//! The exec'd process must be our child (youki) or be adopted by us (an OCI runtime
//! binary forks it and exits): this process becomes a child subreaper. As every fork of
//! a container process, this must run in a single-threaded process.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use coracle_core::ErrorKind;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
/// The OCI process [`run`] takes (re-exported for callers without oci-spec).
pub use oci_spec::runtime::Process;

use crate::relay::{self, absolute, reap_all, SigmaskGuard, FORWARDED_SIGNALS};
use crate::runtime::{ExecFailure, ProcessIo, Runtime, RuntimeError, Status};
use crate::tty::{self, TtyError};

/// How the caller takes part in the exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOptions {
    /// `-i`: our stdin goes to the process (through a pipe, or its pty with `-t`), and
    /// our end of input is its; otherwise it reads /dev/null (no tty) or nothing is
    /// written to its pty.
    pub interactive: bool,
    /// `-d`: start the process with stdio on /dev/null and return at once; it is
    /// reparented when we exit. A terminal is not allocated then: nothing would hold
    /// its other end.
    pub detach: bool,
    /// A directory only root can write to, for the console socket of `-t`.
    pub console_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The command could not be executed (docker: 127 not found, 126 otherwise).
    #[error(
        "OCI runtime exec failed: exec failed: unable to start container process: {}: unknown",
        .failure.docker_message(.command)
    )]
    Exec {
        failure: ExecFailure,
        command: String,
        #[source]
        source: RuntimeError,
    },
    /// The container stopped before the process could join it.
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("OCI runtime exec failed: {0}")]
    Runtime(#[source] RuntimeError),
    #[error("exec must be run from a single-threaded process")]
    MultiThreaded,
    #[error(transparent)]
    Terminal(#[from] TtyError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{call}: {source}")]
    Sys {
        call: &'static str,
        #[source]
        source: nix::Error,
    },
}

impl ExecError {
    /// docker's exit code: 127/126 when the command cannot be executed, 1 when the
    /// container is not running, else 126 (dockerd's code for a failed exec start).
    pub fn exit_code(&self) -> i32 {
        match self {
            ExecError::Exec { failure, .. } => failure.exit_code(),
            ExecError::NotRunning(_) => 1,
            _ => 126,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            ExecError::Exec { .. } => ErrorKind::InvalidArgument,
            ExecError::NotRunning(_) => ErrorKind::Conflict,
            ExecError::Runtime(e) => e.kind(),
            ExecError::MultiThreaded
            | ExecError::Terminal(_)
            | ExecError::Io { .. }
            | ExecError::Sys { .. } => ErrorKind::Internal,
        }
    }
}

/// Whether this process has one thread.
pub fn single_threaded() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .map(|n| n.trim() == "1")
        })
        .unwrap_or(false)
}

/// Runs `process` in container `id` and returns its exit code (128+signal when a
/// signal ended it), or 0 at once with `-d`.
pub fn run(
    rt: &dyn Runtime,
    id: &str,
    process: &Process,
    opts: &ExecOptions,
) -> Result<i32, ExecError> {
    if !single_threaded() {
        return Err(ExecError::MultiThreaded);
    }
    set_child_subreaper()?;
    if opts.detach {
        return run_detached(rt, id, process);
    }
    let (passed_on, early) = signal_sets();
    // The signals we pass on are blocked (and read from `sigfd`) only once the process
    // runs: until then Ctrl-C or SIGTERM ends this exec, waiting for the container's
    // exec lock included, and the runtime's helpers die with it.
    let _early_guard = block_signals(&early)?;
    let sigfd = signalfd(&passed_on)?;
    let console = console_socket(process, opts)?;
    let sized = console
        .as_ref()
        .and_then(|_| sized_to_our_terminal(process));
    let process = sized.as_ref().unwrap_or(process);
    let (io, pipes) = process_stdio(console.as_ref(), opts)?;
    // The runtime consumes `io`: once it returns, only the process holds the write
    // ends, so their end of file is the process's (and its children's) last output.
    let pid = rt
        .exec(id, process, io)
        .map_err(|e| exec_error(rt, id, process, e))?;
    let pid = Pid::from_raw(pid as i32);
    let _mask_guard = block_signals(&passed_on)?;
    let result = match pipes {
        Some(p) => {
            relay::relay_pipes_until_exit(&sigfd, pid, p, &mut |signo| pass_signal(pid, signo))
                .map_err(poll_error)
        }
        None => attach(console, opts.interactive, &sigfd, pid),
    };
    if result.is_err() {
        // Nobody would serve its terminal or wait for it.
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
    }
    reap_all();
    result
}

/// `-d`: starts the process on /dev/null and leaves it running.
fn run_detached(rt: &dyn Runtime, id: &str, process: &Process) -> Result<i32, ExecError> {
    let mut detached = process.clone();
    detached.set_terminal(Some(false));
    let io = ProcessIo::Inherit {
        stdin: dev_null()?,
        stdout: dev_null()?,
        stderr: dev_null()?,
    };
    rt.exec(id, &detached, io)
        .map_err(|e| exec_error(rt, id, process, e))?;
    reap_all();
    Ok(0)
}

/// The signals read from the signalfd while the process runs (those passed on to it,
/// SIGCHLD and SIGWINCH), and the ones blocked from the start (SIGCHLD and SIGWINCH).
fn signal_sets() -> (SigSet, SigSet) {
    let mut early = SigSet::empty();
    early.add(Signal::SIGCHLD);
    early.add(Signal::SIGWINCH);
    let mut all = early;
    for s in FORWARDED_SIGNALS {
        all.add(s);
    }
    (all, early)
}

fn block_signals(set: &SigSet) -> Result<SigmaskGuard, ExecError> {
    SigmaskGuard::block(set).map_err(|source| ExecError::Sys {
        call: "sigprocmask",
        source,
    })
}

fn signalfd(set: &SigSet) -> Result<SignalFd, ExecError> {
    SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).map_err(|source| {
        ExecError::Sys {
            call: "signalfd",
            source,
        }
    })
}

/// The socket the runtime sends the pty master on, when the process has a terminal.
fn console_socket(
    process: &Process,
    opts: &ExecOptions,
) -> Result<Option<tty::ConsoleSocket>, ExecError> {
    if !process.terminal().unwrap_or(false) {
        return Ok(None);
    }
    fs::create_dir_all(&opts.console_dir).map_err(|source| ExecError::Io {
        what: "create",
        path: opts.console_dir.clone(),
        source,
    })?;
    let path = absolute(&opts.console_dir).join(format!("exec-{}.sock", std::process::id()));
    Ok(Some(tty::ConsoleSocket::bind(&path)?))
}

/// `process` with our terminal's size, if stdin is a terminal. The process may run
/// before we hold its pty master: the runtime gives the pty our size from the start
/// (later changes follow SIGWINCH).
fn sized_to_our_terminal(process: &Process) -> Option<Process> {
    let (rows, cols) = tty::winsize(std::io::stdin().as_fd())?;
    let size = oci_spec::runtime::BoxBuilder::default()
        .height(rows as u64)
        .width(cols as u64)
        .build()
        .ok()?;
    let mut sized = process.clone();
    sized.set_console_size(Some(size));
    Some(sized)
}

/// The process's stdio as the runtime takes it, and our ends of its pipes (None with
/// a terminal). Without a terminal the process gets pipes we relay, as docker's: never
/// our own stdio, which it could keep (a terminal, a file our output went to) after we
/// exit.
fn process_stdio(
    console: Option<&tty::ConsoleSocket>,
    opts: &ExecOptions,
) -> Result<(ProcessIo, Option<relay::Pipes>), ExecError> {
    if let Some(c) = console {
        return Ok((ProcessIo::ConsoleSocket(c.path().to_path_buf()), None));
    }
    let (stdin, ours) = if opts.interactive {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        (dev_null()?, None)
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let io = ProcessIo::Inherit {
        stdin,
        stdout: out_w,
        stderr: err_w,
    };
    let pipes = relay::Pipes {
        stdin: ours,
        stdout: out_r,
        stderr: err_r,
    };
    Ok((io, Some(pipes)))
}

/// Passes a signal we received on to the process.
fn pass_signal(pid: Pid, signo: i32) {
    if let Ok(sig) = Signal::try_from(signo) {
        let _ = nix::sys::signal::kill(pid, sig);
    }
}

fn poll_error(source: nix::Error) -> ExecError {
    ExecError::Sys {
        call: "poll",
        source,
    }
}

/// Takes the pty (if any), relays it and waits for `pid`.
fn attach(
    console: Option<tty::ConsoleSocket>,
    interactive: bool,
    sigfd: &SignalFd,
    pid: Pid,
) -> Result<i32, ExecError> {
    let stdin = std::io::stdin();
    let mut master = None;
    if let Some(console) = &console {
        // The runtime sent the master while it set the process up, before returning.
        let m = console.receive_master(Duration::from_secs(30))?;
        tty::copy_winsize(stdin.as_fd(), m.as_fd());
        set_nonblocking(&m)?;
        master = Some(m);
    }
    drop(console);
    // With -t but not -i our terminal stays cooked: ^C is a signal to us, passed on.
    let _raw = if master.is_some() && interactive {
        tty::RawMode::enter(stdin.as_fd())
    } else {
        None
    };
    relay::relay_until_exit(sigfd, pid, master.as_ref(), interactive, &mut |signo| {
        pass_signal(pid, signo)
    })
    .map_err(poll_error)
}

/// An exec racing a stop fails wherever the dying init pulls the ground away (its
/// /proc/PID/ns files, the netns path, the intermediate process): when the container
/// is gone the cause is the stop, docker's "container ID is not running" (exit 1).
fn exec_error(rt: &dyn Runtime, id: &str, process: &Process, e: RuntimeError) -> ExecError {
    match runtime_error(id, process, e) {
        ExecError::Runtime(_) if !alive_after_grace(rt, id) => {
            ExecError::NotRunning(id.to_string())
        }
        other => other,
    }
}

/// How long a failed exec waits for the container's init to exit before taking the
/// failure as its own: a stop's SIGKILL reaches the exec's helpers in the container's
/// cgroup a moment before the init is seen gone.
const STOP_RACE_GRACE: Duration = Duration::from_secs(1);

/// Whether the init still runs once it has had [`STOP_RACE_GRACE`] to exit (waited on
/// through a pidfd: no polling loop, and no wait at all when it is already gone).
fn alive_after_grace(rt: &dyn Runtime, id: &str) -> bool {
    let Some(pid) = alive_init_pid(rt, id) else {
        return false;
    };
    let pidfd = rustix::process::Pid::from_raw(pid)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    if let Some(fd) = pidfd {
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let grace = rustix::event::Timespec {
            tv_sec: STOP_RACE_GRACE.as_secs() as _,
            tv_nsec: 0,
        };
        let _ = rustix::event::poll(&mut fds, Some(&grace));
    }
    container_alive(rt, id)
}

fn runtime_error(id: &str, process: &Process, e: RuntimeError) -> ExecError {
    if let Some(failure) = e.exec_failure() {
        let command = process
            .args()
            .as_ref()
            .and_then(|a| a.first().cloned())
            .unwrap_or_default();
        return ExecError::Exec {
            failure,
            command,
            source: e,
        };
    }
    match e {
        RuntimeError::NotFound { .. } => ExecError::NotRunning(id.to_string()),
        e => ExecError::Runtime(e),
    }
}

/// Whether the container's init still runs (not gone, not a zombie).
fn container_alive(rt: &dyn Runtime, id: &str) -> bool {
    alive_init_pid(rt, id).is_some()
}

/// The container's init pid while it runs (not gone, not a zombie).
fn alive_init_pid(rt: &dyn Runtime, id: &str) -> Option<i32> {
    let state = rt.state(id).ok()?;
    let pid = state.pid.filter(|_| state.status != Status::Stopped)?;
    // An exiting process drops its namespaces (what exec joins) before it turns into
    // a zombie: one without them is as good as gone.
    fs::symlink_metadata(format!("/proc/{pid}/ns/mnt")).ok()?;
    // The third field of /proc/PID/stat is the state; the command before it is in
    // parentheses and may hold spaces.
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let running = rest
        .split_whitespace()
        .next()
        .is_some_and(|st| st != "Z" && st != "X");
    running.then(|| i32::try_from(pid).ok()).flatten()
}

fn set_child_subreaper() -> Result<(), ExecError> {
    relay::set_child_subreaper().map_err(|source| ExecError::Sys {
        call: "prctl(PR_SET_CHILD_SUBREAPER)",
        source,
    })
}

fn dev_null() -> Result<OwnedFd, ExecError> {
    fs::File::open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|source| ExecError::Io {
            what: "open",
            path: "/dev/null".into(),
            source,
        })
}

/// A pipe, both ends close-on-exec (the runtime moves the process's end onto its
/// stdio).
fn pipe() -> Result<(OwnedFd, OwnedFd), ExecError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|source| ExecError::Sys {
        call: "pipe2",
        source,
    })
}

fn set_nonblocking(fd: impl AsFd) -> Result<(), ExecError> {
    relay::set_nonblocking(fd).map_err(|source| ExecError::Sys {
        call: "fcntl(O_NONBLOCK)",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec_err(failure: ExecFailure) -> ExecError {
        ExecError::Exec {
            failure,
            command: "nosuch".into(),
            source: RuntimeError::Exec {
                runtime: "youki".into(),
                op: crate::runtime::Op::Exec,
                id: "x".into(),
                failure,
                message: "executable 'nosuch' not found in $PATH".into(),
            },
        }
    }

    #[test]
    fn docker_messages_and_exit_codes() {
        let e = exec_err(ExecFailure::NotFound);
        assert_eq!(e.exit_code(), 127);
        assert_eq!(
            e.to_string(),
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH: unknown"
        );
        assert_eq!(exec_err(ExecFailure::PermissionDenied).exit_code(), 126);
        assert_eq!(ExecError::NotRunning("abc".into()).exit_code(), 1);
        assert_eq!(ExecError::MultiThreaded.exit_code(), 126);
    }

    #[test]
    fn runtime_errors_are_classified() {
        let mut p = Process::default();
        p.set_args(Some(vec!["/etc".into()]));
        let e = runtime_error(
            "c1",
            &p,
            RuntimeError::from_message(
                "crun",
                crate::runtime::Op::Exec,
                "c1",
                "open executable: Permission denied".into(),
            ),
        );
        assert!(
            matches!(&e, ExecError::Exec { failure: ExecFailure::PermissionDenied, command, .. } if command == "/etc"),
            "{e:?}"
        );
        let e = runtime_error(
            "c1",
            &p,
            RuntimeError::NotFound {
                id: "c1".into(),
                runtime: "crun".into(),
            },
        );
        assert_eq!(e.to_string(), "container c1 is not running");
    }

    #[test]
    fn a_test_binary_is_multi_threaded_and_refused() {
        // libtest runs each test on a thread of its own.
        assert!(!single_threaded());
        let rt = crate::runtime::Youki::new("/nonexistent/coracle-test");
        let e = run(
            &rt,
            "x",
            &Process::default(),
            &ExecOptions {
                interactive: false,
                detach: false,
                console_dir: "/nonexistent".into(),
            },
        )
        .unwrap_err();
        assert!(matches!(e, ExecError::MultiThreaded), "{e:?}");
    }
}
