//! The caller's side of `exec`: runs a process in a running container through its
//! [`Runtime`] and stays with it until it exits, the way `docker exec` attaches:
//! the process's stdio is ours (or a pty relayed to our terminal with `-t`), the
//! signals we get are passed on to it, and our exit code is its own. With `-d` the
//! process is started on /dev/null and left running.
//!
//! The exec'd process must be our child (youki) or be adopted by us (an OCI runtime
//! binary forks it and exits): this process becomes a child subreaper. As every fork of
//! a container process, this must run in a single-threaded process.

use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use coracle_core::ErrorKind;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
/// The OCI process [`run`] takes (re-exported for callers without oci-spec).
pub use oci_spec::runtime::Process;

use crate::monitor::{tty, MonitorError, FORWARDED_SIGNALS};
use crate::runtime::{ExecFailure, ProcessIo, Runtime, RuntimeError};

/// How the caller takes part in the exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOptions {
    /// `-i`: our stdin goes to the process (directly, or through its pty with `-t`);
    /// otherwise it reads /dev/null (no tty) or nothing is written to its pty.
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
    Terminal(#[from] MonitorError),
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
            ExecError::Terminal(e) => e.kind(),
            ExecError::MultiThreaded | ExecError::Io { .. } | ExecError::Sys { .. } => {
                ErrorKind::Internal
            }
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
        let mut detached = process.clone();
        detached.set_terminal(Some(false));
        let io = ProcessIo::Inherit {
            stdin: dev_null()?,
            stdout: dev_null()?,
            stderr: dev_null()?,
        };
        rt.exec(id, &detached, io)
            .map_err(|e| runtime_error(id, process, e))?;
        reap_all();
        return Ok(0);
    }
    let mut mask = SigSet::empty();
    for s in FORWARDED_SIGNALS {
        mask.add(s);
    }
    mask.add(Signal::SIGCHLD);
    mask.add(Signal::SIGWINCH);
    let _mask_guard = SigmaskGuard::block(&mask)?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|source| ExecError::Sys {
            call: "signalfd",
            source,
        })?;

    let console = if process.terminal().unwrap_or(false) {
        fs::create_dir_all(&opts.console_dir).map_err(|source| ExecError::Io {
            what: "create",
            path: opts.console_dir.clone(),
            source,
        })?;
        let path = absolute(&opts.console_dir).join(format!("exec-{}.sock", std::process::id()));
        Some(tty::ConsoleSocket::bind(&path)?)
    } else {
        None
    };
    let stdin = std::io::stdin();
    // The process may run before we hold its pty master: the runtime gives the pty our
    // size from the start (later changes follow SIGWINCH).
    let mut sized;
    let mut process = process;
    if console.is_some() {
        let size = tty::winsize(stdin.as_fd()).and_then(|(rows, cols)| {
            oci_spec::runtime::BoxBuilder::default()
                .height(rows as u64)
                .width(cols as u64)
                .build()
                .ok()
        });
        if let Some(size) = size {
            sized = process.clone();
            sized.set_console_size(Some(size));
            process = &sized;
        }
    }
    let io = match &console {
        Some(c) => ProcessIo::ConsoleSocket(c.path().to_path_buf()),
        None => ProcessIo::Inherit {
            stdin: if opts.interactive {
                dup(stdin.as_fd())?
            } else {
                dev_null()?
            },
            stdout: dup(std::io::stdout().as_fd())?,
            stderr: dup(std::io::stderr().as_fd())?,
        },
    };
    let pid = rt
        .exec(id, process, io)
        .map_err(|e| runtime_error(id, process, e))?;
    let pid = Pid::from_raw(pid as i32);
    let result = attach(console, opts.interactive, &sigfd, pid);
    if result.is_err() {
        // Nobody would serve its terminal or wait for it.
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = waitpid(pid, None);
    }
    reap_all();
    result
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
        set_nonblocking(m.as_raw_fd())?;
        master = Some(m);
    }
    drop(console);
    // With -t but not -i our terminal stays cooked: ^C is a signal to us, passed on.
    let _raw = if master.is_some() && interactive {
        tty::RawMode::enter(stdin.as_fd())
    } else {
        None
    };
    event_loop(sigfd, pid, master.as_ref(), interactive)
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

/// Pumps the pty (if any), forwards signals and returns `pid`'s exit code.
fn event_loop(
    sigfd: &SignalFd,
    pid: Pid,
    master: Option<&OwnedFd>,
    interactive: bool,
) -> Result<i32, ExecError> {
    const STDIN: RawFd = 0;
    let mut stdout = std::io::stdout().lock();
    let mut stdin_open = master.is_some() && interactive;
    let mut master_open = master.is_some();
    let mut to_master: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let mut fds = vec![libc::pollfd {
            fd: sigfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let (mut i_stdin, mut i_master) = (None, None);
        if let Some(m) = master.filter(|_| master_open) {
            let mut ev = libc::POLLIN;
            if !to_master.is_empty() {
                ev |= libc::POLLOUT;
            }
            i_master = Some(fds.len());
            fds.push(libc::pollfd {
                fd: m.as_raw_fd(),
                events: ev,
                revents: 0,
            });
        }
        if stdin_open && to_master.len() < 64 * 1024 {
            i_stdin = Some(fds.len());
            fds.push(libc::pollfd {
                fd: STDIN,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // SAFETY: fds is a valid array of pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            let e = nix::Error::last();
            if e == nix::Error::EINTR {
                continue;
            }
            return Err(ExecError::Sys {
                call: "poll",
                source: e,
            });
        }
        // Output first: what the process wrote before it exited must reach us.
        if let (Some(i), Some(m)) = (i_master, master) {
            let re = fds[i].revents;
            if re & libc::POLLIN != 0 {
                match nix::unistd::read(m.as_raw_fd(), &mut buf) {
                    Ok(0) => master_open = false,
                    Ok(k) => {
                        // Our terminal went away: keep going, drop the output.
                        let _ = stdout.write_all(&buf[..k]).and_then(|_| stdout.flush());
                    }
                    Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
                    // EIO: every slave fd is closed.
                    Err(_) => master_open = false,
                }
            } else if re & (libc::POLLHUP | libc::POLLERR) != 0 {
                master_open = false;
            }
            if master_open && re & libc::POLLOUT != 0 && !to_master.is_empty() {
                match nix::unistd::write(m.as_fd(), &to_master) {
                    Ok(k) => {
                        to_master.drain(..k);
                    }
                    Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
                    Err(_) => to_master.clear(),
                }
            }
        }
        if let (Some(i), Some(m)) = (i_stdin, master) {
            if fds[i].revents != 0 {
                match nix::unistd::read(STDIN, &mut buf) {
                    Ok(0) | Err(_) => {
                        stdin_open = false;
                        // EOF on our stdin: the process's terminal sees its EOF char.
                        to_master.push(tty::eof_char(m.as_fd()));
                    }
                    Ok(k) => to_master.extend_from_slice(&buf[..k]),
                }
            }
        }
        if fds[0].revents != 0 {
            while let Ok(Some(info)) = sigfd.read_signal() {
                let signo = info.ssi_signo as i32;
                match Signal::try_from(signo) {
                    Ok(Signal::SIGCHLD) => {
                        if let Some(code) = reap(pid) {
                            if let (Some(m), true) = (master, master_open) {
                                drain(m.as_raw_fd(), &mut buf, &mut stdout);
                            }
                            let _ = stdout.flush();
                            return Ok(code);
                        }
                    }
                    Ok(Signal::SIGWINCH) => {
                        if let Some(m) = master {
                            tty::copy_winsize(std::io::stdin().as_fd(), m.as_fd());
                        }
                    }
                    // Not yet reaped, so the pid is still the process's.
                    Ok(sig) => {
                        let _ = nix::sys::signal::kill(pid, sig);
                    }
                    Err(_) => {}
                }
            }
        }
    }
}

/// Reaps every exited child (the runtime's helpers, adopted orphans); returns `pid`'s
/// docker exit code if it was among them.
fn reap(pid: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, c)) if p == pid => code = Some(c),
            Ok(WaitStatus::Signaled(p, s, _)) if p == pid => code = Some(128 + s as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(_) => {}
        }
    }
}

fn reap_all() {
    while let Ok(s) = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
        if s == WaitStatus::StillAlive {
            break;
        }
    }
}

fn drain(fd: RawFd, buf: &mut [u8], out: &mut impl Write) {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(0) => return,
            Ok(k) => {
                let _ = out.write_all(&buf[..k]);
            }
            Err(nix::Error::EINTR) => {}
            Err(_) => return,
        }
    }
}

fn set_child_subreaper() -> Result<(), ExecError> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(ExecError::Sys {
            call: "prctl(PR_SET_CHILD_SUBREAPER)",
            source: nix::Error::last(),
        });
    }
    Ok(())
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

fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, ExecError> {
    fd.try_clone_to_owned().map_err(|source| ExecError::Io {
        what: "dup stdio fd",
        path: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
        source,
    })
}

fn set_nonblocking(fd: RawFd) -> Result<(), ExecError> {
    // SAFETY: fcntl on an fd we own.
    let r = unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK)
    };
    if r < 0 {
        return Err(ExecError::Sys {
            call: "fcntl(O_NONBLOCK)",
            source: nix::Error::last(),
        });
    }
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    }
}

/// Blocks signals and restores the previous mask when dropped.
struct SigmaskGuard {
    old: SigSet,
}

impl SigmaskGuard {
    fn block(set: &SigSet) -> Result<SigmaskGuard, ExecError> {
        let mut old = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(set), Some(&mut old)).map_err(
            |source| ExecError::Sys {
                call: "sigprocmask",
                source,
            },
        )?;
        Ok(SigmaskGuard { old })
    }
}

impl Drop for SigmaskGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
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
