//! Terminal plumbing shared by the monitor, `exec` and the attach client: the console
//! socket on which the runtime sends the pty master, raw mode on the caller's terminal,
//! window size propagation.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use nix::sys::termios::{self, SetArg, Termios};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::termios::{tcgetwinsize, tcsetwinsize, Winsize};

/// A console socket that could not be set up or did not deliver the pty master.
#[derive(Debug, thiserror::Error)]
pub enum TtyError {
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

/// A listening console socket; removes its path when dropped.
pub(crate) struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    pub(crate) fn bind(path: &Path) -> Result<ConsoleSocket, TtyError> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(|source| TtyError::Io {
            what: "bind console socket",
            path: path.to_path_buf(),
            source,
        })?;
        Ok(ConsoleSocket {
            listener,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the runtime's connection and receives the pty master (SCM_RIGHTS).
    /// The runtime sends it during `create`, so this is called after `create` returns.
    pub(crate) fn receive_master(&self, timeout: Duration) -> Result<OwnedFd, TtyError> {
        let io = |what: &'static str, source: std::io::Error| TtyError::Io {
            what,
            path: self.path.clone(),
            source,
        };
        self.listener
            .set_nonblocking(true)
            .map_err(|e| io("set console socket non-blocking", e))?;
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(io(
                            "wait for the runtime on the console socket",
                            std::io::Error::from(std::io::ErrorKind::TimedOut),
                        ));
                    }
                    poll_one(
                        &self.listener,
                        PollFlags::IN,
                        Some(Duration::from_millis(100)),
                    );
                }
                Err(e) => return Err(io("accept on console socket", e)),
            }
        };
        stream
            .set_nonblocking(false)
            .map_err(|e| io("set console stream blocking", e))?;
        let mut buf = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<UnixAddr>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| TtyError::Sys {
            call: "recvmsg(console socket)",
            source: e,
        })?;
        let cmsgs = msg.cmsgs().map_err(|e| TtyError::Sys {
            call: "recvmsg(console socket)",
            source: e,
        })?;
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(&fd) = fds.first() {
                    for &extra in &fds[1..] {
                        // SAFETY: received fds are ours to close.
                        drop(unsafe { OwnedFd::from_raw_fd(extra) });
                    }
                    // SAFETY: the kernel just installed this fd in our table.
                    return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        Err(io(
            "receive pty master",
            std::io::Error::new(std::io::ErrorKind::InvalidData, "no fd in message"),
        ))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Puts a terminal in raw mode and restores its settings when dropped.
pub struct RawMode {
    fd: RawFd,
    saved: Termios,
}

impl RawMode {
    /// Raw mode on `fd` if it is a terminal; None otherwise.
    pub fn enter(fd: BorrowedFd<'_>) -> Option<RawMode> {
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode {
            fd: fd.as_raw_fd(),
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: fd 0 (or the fd given) outlives the guard: it is the process's stdin.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = termios::tcsetattr(fd, SetArg::TCSANOW, &self.saved);
    }
}

/// Copies the window size of `from` (our terminal) to `to` (the pty master).
pub(crate) fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    if let Ok(ws) = tcgetwinsize(from) {
        if ws.ws_row > 0 {
            let _ = tcsetwinsize(to, ws);
        }
    }
}

/// Sets the window size of a pty master.
pub(crate) fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) {
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let _ = tcsetwinsize(fd, ws);
}

/// The window size (rows, cols) of the terminal on `fd`, if it is one.
pub fn winsize(fd: BorrowedFd<'_>) -> Option<(u16, u16)> {
    let ws = tcgetwinsize(fd).ok()?;
    (ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// The terminal's EOF character (VEOF) on `fd`, ^D by default.
pub(crate) fn eof_char(fd: impl AsFd) -> u8 {
    termios::tcgetattr(fd)
        .map(|t| t.control_chars[libc::VEOF])
        .unwrap_or(4)
}

/// Waits up to `timeout` (None: without limit) for `events` on `fd`; returns the
/// events that happened, none on timeout or error.
pub fn poll_one(fd: impl AsFd, events: PollFlags, timeout: Option<Duration>) -> PollFlags {
    // A timeout too large for a timespec is as good as none.
    let timeout = timeout.and_then(|d| Timespec::try_from(d).ok());
    let mut p = [PollFd::new(&fd, events)];
    match poll(&mut p, timeout.as_ref()) {
        Ok(n) if n > 0 => p[0].revents(),
        _ => PollFlags::empty(),
    }
}
