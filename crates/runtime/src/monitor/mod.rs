//! The per-container monitor: a small single-threaded process (the coracle binary
//! re-executed as a hidden subcommand, see coracle-engine's `helper` module) that
//! creates the container through a [`Runtime`], is the parent (child subreaper) of
//! its init, holds its pty or passes its stdio, forwards signals, waits for it,
//! records the exit code and deletes the container in the runtime (which removes its
//! cgroups).
//!
//! Two ways to run: [`run_foreground`] relays the monitor's own stdio (the runtime
//! crate's tests run containers with it); the engine's detached monitor uses
//! [`create_detached`] and [`supervise::Supervisor`] (logs, attach clients, health
//! probes) instead.

pub mod attach;
pub mod logfile;
pub mod session;
pub mod supervise;
/// Where the terminal plumbing lived before `exec` and the attach client shared it.
pub use crate::tty;

use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use coracle_core::ErrorKind;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

pub use crate::relay::FORWARDED_SIGNALS;
use crate::relay::{self, absolute, reap_all, SigmaskGuard};
use crate::runtime::{self, ExecFailure, ProcessIo, Runtime, RuntimeError};
use crate::tty::TtyError;

/// What the monitor runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorConfig {
    /// OCI bundle: the container directory holding config.json.
    pub bundle: PathBuf,
    pub id: String,
    /// `youki` (built-in), a runtime name on PATH (`crun`, `runc`) or an absolute path.
    pub runtime: String,
    /// Runtime state directory (each runtime uses a subdirectory).
    pub state_root: PathBuf,
    /// `-t`: the container gets a pty (config.json must say `process.terminal: true`).
    pub terminal: bool,
    /// `-i`: our stdin is forwarded to the container; otherwise it gets /dev/null.
    pub interactive: bool,
    /// Where the container's exit code is written (decimal + newline, atomically).
    pub exit_file: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The container's command could not be executed (docker: 127 / 126).
    #[error("failed to create task for container: {}", .failure.docker_message(.command))]
    Exec {
        failure: ExecFailure,
        command: String,
        #[source]
        source: RuntimeError,
    },
    #[error("failed to create task for container: {0}")]
    Runtime(#[source] RuntimeError),
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
    #[error(transparent)]
    Tty(#[from] TtyError),
}

impl MonitorError {
    /// docker's exit code for this failure: 127/126 when the command cannot be run,
    /// 125 when coracle itself failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            MonitorError::Exec { failure, .. } => failure.exit_code(),
            _ => 125,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            MonitorError::Exec { .. } => ErrorKind::InvalidArgument,
            MonitorError::Runtime(e) => e.kind(),
            MonitorError::Io { .. } | MonitorError::Sys { .. } | MonitorError::Tty(_) => {
                ErrorKind::Internal
            }
        }
    }
}

/// Runs the container of `cfg` in the foreground with the runtime it names; returns the
/// container's exit code (docker's: the exit status, or 128+signal).
pub fn run_foreground(cfg: &MonitorConfig) -> Result<i32, MonitorError> {
    let runtime = runtime::select(&cfg.runtime, &cfg.state_root).map_err(MonitorError::Runtime)?;
    run_foreground_with(cfg, runtime.as_ref())
}

/// [`run_foreground`] with a given runtime (tests pass fakes or a specific one).
pub fn run_foreground_with(cfg: &MonitorConfig, rt: &dyn Runtime) -> Result<i32, MonitorError> {
    set_child_subreaper()?;
    // Block the signals we handle so they queue on a signalfd. The runtimes start the
    // payload with an empty mask (std::process resets it; Youki's executor too).
    let mut mask = SigSet::empty();
    for s in FORWARDED_SIGNALS {
        mask.add(s);
    }
    mask.add(Signal::SIGCHLD);
    mask.add(Signal::SIGWINCH);
    let _mask_guard = SigmaskGuard::block(&mask).map_err(|source| MonitorError::Sys {
        call: "sigprocmask",
        source,
    })?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|source| MonitorError::Sys {
            call: "signalfd",
            source,
        })?;

    let result = create_and_wait(cfg, rt, &sigfd);
    let code = match &result {
        Ok(code) => Some(*code),
        Err(MonitorError::Exec { failure, .. }) => Some(failure.exit_code()),
        Err(_) => None,
    };
    let mut exit_file_err = None;
    if let Some(code) = code {
        exit_file_err = write_exit_file(&cfg.exit_file, code).err();
    }
    // Teardown: report and keep going; the container's exit code wins.
    if let Err(e) = rt.delete(&cfg.id, true) {
        note(format_args!("coracle: delete container {}: {e}", cfg.id));
    }
    reap_all();
    match (result, exit_file_err) {
        (Ok(_), Some(e)) => Err(e),
        (r, _) => r,
    }
}

fn create_and_wait(
    cfg: &MonitorConfig,
    rt: &dyn Runtime,
    sigfd: &SignalFd,
) -> Result<i32, MonitorError> {
    let stdin = std::io::stdin();
    let console = if cfg.terminal {
        fs::create_dir_all(&cfg.state_root).map_err(|source| MonitorError::Io {
            what: "create state root",
            path: cfg.state_root.clone(),
            source,
        })?;
        let path = absolute(&cfg.state_root).join(format!("console-{}.sock", std::process::id()));
        Some(tty::ConsoleSocket::bind(&path)?)
    } else {
        None
    };
    let io = match &console {
        Some(c) => ProcessIo::ConsoleSocket(c.path().to_path_buf()),
        None => ProcessIo::Inherit {
            stdin: if cfg.interactive {
                dup(stdin.as_fd())?
            } else {
                fs::File::open("/dev/null")
                    .map_err(|source| MonitorError::Io {
                        what: "open",
                        path: "/dev/null".into(),
                        source,
                    })?
                    .into()
            },
            stdout: dup(std::io::stdout().as_fd())?,
            stderr: dup(std::io::stderr().as_fd())?,
        },
    };
    let init = rt
        .create(&cfg.id, &cfg.bundle, io)
        .map_err(|e| runtime_error(cfg, e))?;
    let init = Pid::from_raw(init as i32);

    let mut term = None;
    if let Some(console) = &console {
        let master = console.receive_master(Duration::from_secs(30))?;
        tty::copy_winsize(stdin.as_fd(), master.as_fd());
        set_nonblocking(&master)?;
        term = Some(master);
    }
    drop(console);
    // Raw mode only once everything that may fail before start is done; restored when
    // `_raw` drops, on every path out of this function.
    let _raw = if term.is_some() {
        tty::RawMode::enter(stdin.as_fd())
    } else {
        None
    };
    rt.start(&cfg.id).map_err(|e| runtime_error(cfg, e))?;
    relay::relay_until_exit(sigfd, init, term.as_ref(), cfg.interactive, &mut |signo| {
        // The container may be gone already; nothing to forward then.
        let _ = rt.kill(&cfg.id, signo);
    })
    .map_err(|source| MonitorError::Sys {
        call: "poll",
        source,
    })
}

fn runtime_error(cfg: &MonitorConfig, e: RuntimeError) -> MonitorError {
    runtime_error_for(&cfg.bundle, e)
}

/// A runtime error, as docker reports it: 126/127 with docker's wording when the
/// command cannot be executed.
pub fn runtime_error_for(bundle: &Path, e: RuntimeError) -> MonitorError {
    match e.exec_failure() {
        Some(failure) => MonitorError::Exec {
            failure,
            command: command_of(bundle).unwrap_or_default(),
            source: e,
        },
        None => MonitorError::Runtime(e),
    }
}

/// The container's end of its stdio, as the monitor holds it.
pub enum ContainerIo {
    /// Without a tty: the write end of the container's stdin pipe (None: /dev/null),
    /// the read ends of its stdout and stderr pipes.
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// With a tty: the pty master (output and input).
    Pty { master: OwnedFd },
}

/// Creates (not starts) the container of `bundle` for a detached monitor: stdio on
/// pipes the monitor holds (stdin a pipe with `interactive`, else /dev/null), or a
/// pty whose master the monitor receives. Returns the init pid and the monitor's ends.
pub fn create_detached(
    rt: &dyn Runtime,
    id: &str,
    bundle: &Path,
    terminal: bool,
    interactive: bool,
    state_root: &Path,
) -> Result<(Pid, ContainerIo), MonitorError> {
    if terminal {
        fs::create_dir_all(state_root).map_err(|source| MonitorError::Io {
            what: "create state root",
            path: state_root.to_path_buf(),
            source,
        })?;
        let path = absolute(state_root).join(format!("console-{}.sock", std::process::id()));
        let console = tty::ConsoleSocket::bind(&path)?;
        let init = rt
            .create(id, bundle, ProcessIo::ConsoleSocket(path))
            .map_err(|e| runtime_error_for(bundle, e))?;
        let master = console.receive_master(Duration::from_secs(30))?;
        return Ok((Pid::from_raw(init as i32), ContainerIo::Pty { master }));
    }
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|source| MonitorError::Sys {
            call: "pipe2",
            source,
        })
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (stdin_child, stdin_ours) = if interactive {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        let null = fs::File::open("/dev/null").map_err(|source| MonitorError::Io {
            what: "open",
            path: "/dev/null".into(),
            source,
        })?;
        (OwnedFd::from(null), None)
    };
    let init = rt
        .create(
            id,
            bundle,
            ProcessIo::Inherit {
                stdin: stdin_child,
                stdout: out_w,
                stderr: err_w,
            },
        )
        .map_err(|e| runtime_error_for(bundle, e))?;
    Ok((
        Pid::from_raw(init as i32),
        ContainerIo::Pipes {
            stdin: stdin_ours,
            stdout: out_r,
            stderr: err_r,
        },
    ))
}

/// `process.args[0]` of the bundle's config.json, for messages.
fn command_of(bundle: &Path) -> Option<String> {
    let text = fs::read(bundle.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    v["process"]["args"][0].as_str().map(str::to_string)
}

/// Writes `code` to `path` atomically (temp file, fsync, rename).
pub fn write_exit_file(path: &Path, code: i32) -> Result<(), MonitorError> {
    let io = |what: &'static str, p: &Path, source| MonitorError::Io {
        what,
        path: p.to_path_buf(),
        source,
    };
    let tmp = tmp_path(path);
    // Private, as every state file of a container.
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io("create", &tmp, e))?;
    f.write_all(format!("{code}\n").as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io("rename exit file to", path, e))
}

/// The space of a container's exit file, taken when the container starts: on a disk
/// that fills up while it runs, its exit code can still be recorded. The file is
/// `PATH.tmp` until [`commit`](Self::commit) renames it into place.
pub struct ExitFileReservation {
    path: PathBuf,
    tmp: PathBuf,
    file: fs::File,
}

impl ExitFileReservation {
    /// Creates `PATH.tmp` holding a block of its own.
    pub fn new(path: &Path) -> Result<ExitFileReservation, MonitorError> {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = tmp_path(path);
        let io = |source| MonitorError::Io {
            what: "reserve the exit file",
            path: tmp.clone(),
            source,
        };
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        // Written rather than fallocated: every file system allocates written data.
        file.write_all(&[b'\n'; 64])
            .and_then(|_| file.sync_all())
            .map_err(io)?;
        Ok(ExitFileReservation {
            path: path.to_path_buf(),
            tmp,
            file,
        })
    }

    /// Writes `code` into the reserved block (no new space needed: it overwrites,
    /// then shrinks) and renames it into place; falls back to [`write_exit_file`].
    pub fn commit(mut self, code: i32) -> Result<(), MonitorError> {
        use std::io::{Seek, SeekFrom};
        let text = format!("{code}\n");
        let written = self
            .file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.write_all(text.as_bytes()))
            .and_then(|_| self.file.set_len(text.len() as u64))
            .and_then(|_| self.file.sync_all())
            .and_then(|_| fs::rename(&self.tmp, &self.path));
        match written {
            Ok(()) => Ok(()),
            Err(_) => write_exit_file(&self.path, code),
        }
    }
}

impl Drop for ExitFileReservation {
    /// Not committed (the container did not start): the reservation goes. After a
    /// commit there is nothing left at `tmp` to remove.
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

/// Writes one line to stderr and ignores failure. The monitor's stderr is
/// `monitor.log` in the store: on a full disk `eprintln!` panics, and a panicking
/// monitor takes the container's output pipes (and so the container) with it.
pub fn note(args: std::fmt::Arguments<'_>) {
    let mut line = args.to_string();
    line.push('\n');
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// [`note`] with `format!` arguments: `eprintln!` that never panics.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {
        $crate::monitor::note(format_args!($($arg)*))
    };
}

/// Reads an exit file written by [`write_exit_file`].
pub fn read_exit_file(path: &Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Gives back the memory the monitor used to set the container up (the engine,
/// SQLite, the runtime) before it settles into its loop for the container's life:
/// free heap goes back to the kernel, and pages of read-only file mappings that hold
/// no private changes (program text, constant data) leave the resident set; the few
/// the loop needs fault back in from the page cache. Writable or modified mappings
/// (data, relocations) are left alone: discarding them would lose their contents.
pub fn shed_memory() {
    if let Ok(smaps) = fs::read_to_string("/proc/self/smaps") {
        for (start, len) in clean_read_only_file_mappings(&smaps) {
            // SAFETY: each range is a whole read-only, unmodified file mapping of
            // this process; MADV_DONTNEED there only drops pages that are refilled
            // from the file on the next access.
            unsafe {
                libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED);
            }
        }
    }
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// (start, length) of the mappings in `smaps` that are file-backed, not writable and
/// have neither private dirty nor anonymous pages.
fn clean_read_only_file_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize, bool)> = None;
    let mut flush = |cur: &mut Option<(usize, usize, bool)>| {
        if let Some((start, end, true)) = cur.take() {
            out.push((start, end - start));
        }
    };
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if let Some((a, b)) = first.split_once('-').filter(|_| !first.ends_with(':')) {
            flush(&mut current);
            let perms = fields.next().unwrap_or_default();
            let inode = fields.nth(2).unwrap_or("0");
            let path = fields.next().unwrap_or_default();
            let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            else {
                continue;
            };
            let candidate = !perms.contains('w') && inode != "0" && path.starts_with('/');
            current = Some((start, end, candidate));
        } else if (first == "Private_Dirty:" || first == "Anonymous:")
            && fields.next().is_some_and(|kb| kb != "0")
        {
            if let Some(c) = current.as_mut() {
                c.2 = false;
            }
        }
    }
    flush(&mut current);
    out
}

/// Restores SIGPIPE's default action (Rust's runtime ignores it).
pub fn default_sigpipe() {
    // SAFETY: setting a signal disposition to SIG_DFL.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

pub fn set_child_subreaper() -> Result<(), MonitorError> {
    relay::set_child_subreaper().map_err(|source| MonitorError::Sys {
        call: "prctl(PR_SET_CHILD_SUBREAPER)",
        source,
    })
}

fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, MonitorError> {
    fd.try_clone_to_owned().map_err(|source| MonitorError::Io {
        what: "dup stdio fd",
        path: PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
        source,
    })
}

fn set_nonblocking(fd: impl AsFd) -> Result<(), MonitorError> {
    relay::set_nonblocking(fd).map_err(|source| MonitorError::Sys {
        call: "fcntl(O_NONBLOCK)",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_file_mappings_are_shed() {
        let smaps = "\
55d0a0000000-55d0a0100000 r--p 00000000 fd:01 1234 /usr/bin/coracle
Private_Dirty:         0 kB
Anonymous:             0 kB
55d0a0100000-55d0a0200000 r-xp 00100000 fd:01 1234 /usr/bin/coracle
Private_Dirty:         0 kB
Anonymous:             0 kB
55d0a0200000-55d0a0210000 r--p 00200000 fd:01 1234 /usr/bin/coracle
Private_Dirty:         8 kB
Anonymous:             8 kB
55d0a0210000-55d0a0220000 rw-p 00210000 fd:01 1234 /usr/bin/coracle
Private_Dirty:         0 kB
7f0000000000-7f0000001000 r--p 00000000 00:00 0
Private_Dirty:         0 kB
";
        assert_eq!(
            clean_read_only_file_mappings(smaps),
            vec![(0x55d0a0000000, 0x100000), (0x55d0a0100000, 0x100000)]
        );
    }

    #[test]
    fn exit_file_is_written_atomically() {
        let dir = std::env::temp_dir().join(format!("coracle-exit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("exit");
        write_exit_file(&p, 137).unwrap();
        assert_eq!(read_exit_file(&p), Some(137));
        assert!(!dir.join("exit.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_reserved_exit_file_is_committed_in_place() {
        let dir = std::env::temp_dir().join(format!("coracle-exitres-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("exit");
        let r = ExitFileReservation::new(&p).unwrap();
        assert!(dir.join("exit.tmp").exists() && !p.exists());
        r.commit(143).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "143\n");
        assert!(!dir.join("exit.tmp").exists());
        fs::remove_file(&p).unwrap();
        // Not committed (the container never started): nothing is left.
        drop(ExitFileReservation::new(&p).unwrap());
        assert!(!dir.join("exit.tmp").exists() && !p.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn exec_errors_map_to_docker_codes() {
        let src = RuntimeError::Exec {
            runtime: "youki".into(),
            op: runtime::Op::Create,
            id: "x".into(),
            failure: ExecFailure::NotFound,
            message: "executable 'nosuch' not found in $PATH".into(),
        };
        let e = MonitorError::Exec {
            failure: ExecFailure::NotFound,
            command: "nosuch".into(),
            source: src,
        };
        assert_eq!(e.exit_code(), 127);
        assert_eq!(
            e.to_string(),
            "failed to create task for container: exec: \"nosuch\": executable file not found in $PATH"
        );
    }
}
