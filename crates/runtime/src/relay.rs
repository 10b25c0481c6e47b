//! What a process that stays with a container process needs, shared by the
//! foreground monitor (`monitor::run_foreground`), `exec` (`exec_session`) and the
//! attach client (`monitor::session`): relaying our terminal to a pty master, passing
//! signals on, reaping, and the signal-mask and fd plumbing around that. It depends on
//! none of them, so they share it without importing each other.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};

use crate::tty;

/// Signals `coracle run` forwards to the container (docker's sig-proxy).
pub const FORWARDED_SIGNALS: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Relays our stdin/stdout to `master` (with `interactive`, stdin is read; without a
/// pty nothing is relayed: the child has our stdio), hands the signals read from
/// `sigfd` to `forward` (SIGWINCH resizes the pty, SIGCHLD reaps) and returns
/// `child`'s docker exit code (status, or 128 + signal) once it is reaped.
pub(crate) fn relay_until_exit(
    sigfd: &SignalFd,
    child: Pid,
    master: Option<&OwnedFd>,
    interactive: bool,
    forward: &mut dyn FnMut(i32),
) -> nix::Result<i32> {
    let mut pty = PtyRelay {
        master,
        stdin: std::io::stdin(),
        stdout: std::io::stdout().lock(),
        stdin_open: master.is_some() && interactive,
        master_open: master.is_some(),
        to_master: Vec::new(),
        buf: vec![0u8; 32 * 1024],
    };
    loop {
        let Some(ready) = pty.wait(sigfd)? else {
            continue;
        };
        // Output first: what the process wrote before it exited must reach us.
        if let Some(revents) = ready.master {
            pty.serve_master(revents);
        }
        if ready.stdin {
            pty.read_stdin();
        }
        if ready.signals {
            if let Some(code) = pty.handle_signals(sigfd, child, forward) {
                return Ok(code);
            }
        }
    }
}

/// Our terminal relayed to a pty master while the process runs.
struct PtyRelay<'a> {
    master: Option<&'a OwnedFd>,
    stdin: std::io::Stdin,
    stdout: std::io::StdoutLock<'static>,
    stdin_open: bool,
    master_open: bool,
    /// Our input not yet written to the master.
    to_master: Vec<u8>,
    buf: Vec<u8>,
}

/// What one poll found ready: signals, the master (its events, when polled), stdin.
struct PtyReady {
    signals: bool,
    master: Option<PollFlags>,
    stdin: bool,
}

impl PtyRelay<'_> {
    /// Waits for a signal, the master (while open) or our stdin (while open and
    /// the input queue has room); None when interrupted.
    fn wait(&self, sigfd: &SignalFd) -> nix::Result<Option<PtyReady>> {
        let mut fds = vec![PollFd::new(sigfd, PollFlags::IN)];
        let (mut i_stdin, mut i_master) = (None, None);
        if let Some(m) = self.master.filter(|_| self.master_open) {
            let mut ev = PollFlags::IN;
            if !self.to_master.is_empty() {
                ev |= PollFlags::OUT;
            }
            i_master = Some(fds.len());
            fds.push(PollFd::new(m, ev));
        }
        if self.stdin_open && self.to_master.len() < 64 * 1024 {
            i_stdin = Some(fds.len());
            fds.push(PollFd::new(&self.stdin, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(None),
            Err(e) => return Err(nix_error(e)),
        }
        Ok(Some(PtyReady {
            signals: !fds[0].revents().is_empty(),
            master: i_master.map(|i| fds[i].revents()),
            stdin: i_stdin.is_some_and(|i| !fds[i].revents().is_empty()),
        }))
    }

    /// Copies the master's output to our stdout and writes queued input to it.
    fn serve_master(&mut self, revents: PollFlags) {
        let Some(m) = self.master else {
            return;
        };
        if revents.contains(PollFlags::IN) {
            match nix::unistd::read(m.as_raw_fd(), &mut self.buf) {
                Ok(0) => self.master_open = false,
                Ok(k) => {
                    // Our terminal went away: keep going, drop the output.
                    let _ = self
                        .stdout
                        .write_all(&self.buf[..k])
                        .and_then(|_| self.stdout.flush());
                }
                Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
                // EIO: every slave fd is closed.
                Err(_) => self.master_open = false,
            }
        } else if revents.intersects(PollFlags::HUP | PollFlags::ERR) {
            self.master_open = false;
        }
        if self.master_open && revents.contains(PollFlags::OUT) && !self.to_master.is_empty() {
            match nix::unistd::write(m.as_fd(), &self.to_master) {
                Ok(k) => {
                    self.to_master.drain(..k);
                }
                Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
                Err(_) => self.to_master.clear(),
            }
        }
    }

    /// Queues what our stdin holds for the master; at its end, the terminal's EOF char.
    fn read_stdin(&mut self) {
        const STDIN: RawFd = 0;
        let Some(m) = self.master else {
            return;
        };
        match nix::unistd::read(STDIN, &mut self.buf) {
            Ok(0) | Err(_) => {
                self.stdin_open = false;
                // EOF on our stdin: the process's terminal sees its EOF char.
                self.to_master.push(tty::eof_char(m.as_fd()));
            }
            Ok(k) => self.to_master.extend_from_slice(&self.buf[..k]),
        }
    }

    /// SIGCHLD reaps (returning `child`'s code, after copying the master's last
    /// output, once it is reaped), SIGWINCH resizes the pty, the others go to
    /// `forward`.
    fn handle_signals(
        &mut self,
        sigfd: &SignalFd,
        child: Pid,
        forward: &mut dyn FnMut(i32),
    ) -> Option<i32> {
        while let Ok(Some(info)) = sigfd.read_signal() {
            let signo = info.ssi_signo as i32;
            match Signal::try_from(signo) {
                Ok(Signal::SIGCHLD) => {
                    if let Some(code) = reap(child) {
                        if let (Some(m), true) = (self.master, self.master_open) {
                            drain(m.as_raw_fd(), &mut self.buf, &mut self.stdout);
                        }
                        let _ = self.stdout.flush();
                        return Some(code);
                    }
                }
                Ok(Signal::SIGWINCH) => {
                    if let Some(m) = self.master {
                        tty::copy_winsize(self.stdin.as_fd(), m.as_fd());
                    }
                }
                // Not yet reaped, so the pid is still the process's.
                Ok(_) => forward(signo),
                Err(_) => {}
            }
        }
        None
    }
}

/// Reaps every exited child (the runtime's helpers, adopted orphans); returns
/// `child`'s docker exit code if it was among them.
pub(crate) fn reap(child: Pid) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, c)) if p == child => code = Some(c),
            Ok(WaitStatus::Signaled(p, s, _)) if p == child => code = Some(128 + s as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(_) => {}
        }
    }
}

pub(crate) fn reap_all() {
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

pub(crate) fn set_child_subreaper() -> nix::Result<()> {
    // Any non-zero argument makes us the subreaper; rustix passes the pid given.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).map_err(nix_error)
}

pub(crate) fn set_nonblocking(fd: impl AsFd) -> nix::Result<()> {
    let fl = fcntl_getfl(&fd).map_err(nix_error)?;
    fcntl_setfl(&fd, fl | OFlags::NONBLOCK).map_err(nix_error)
}

/// rustix's errno as nix's, for the callers that speak nix.
fn nix_error(e: rustix::io::Errno) -> nix::Error {
    nix::Error::from_raw(e.raw_os_error())
}

/// `p` made absolute against the working directory (socket paths handed to runtimes
/// that run elsewhere).
pub(crate) fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    }
}

/// Blocks signals and restores the previous mask when dropped.
pub(crate) struct SigmaskGuard {
    old: SigSet,
}

impl SigmaskGuard {
    pub(crate) fn block(set: &SigSet) -> nix::Result<SigmaskGuard> {
        let mut old = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(set), Some(&mut old))?;
        Ok(SigmaskGuard { old })
    }
}

impl Drop for SigmaskGuard {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// The caller's ends of an exec'd process's stdio pipes.
pub(crate) struct Pipes {
    /// Where our stdin goes (`-i`); None when the process reads /dev/null.
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// Most of our stdin held for a process that does not read it yet.
const STDIN_BUFFER: usize = 64 * 1024;

/// Relays the process's stdout and stderr pipes to ours and our stdin (if relayed) to
/// its stdin pipe, closing that at our end of input; hands signals read from `sigfd`
/// to `forward` (SIGCHLD reaps) and returns `child`'s docker exit code once reaped,
/// after copying what it left in the pipes. Our stdio is never the process's: it
/// cannot keep or read our terminal or files after it (or we) exits.
pub(crate) fn relay_pipes_until_exit(
    sigfd: &SignalFd,
    child: Pid,
    pipes: Pipes,
    forward: &mut dyn FnMut(i32),
) -> nix::Result<i32> {
    // A closed output of ours must fail the write (EPIPE), not kill us: the process
    // then gets EPIPE as it would writing to a closed pipe itself.
    let _sigpipe = IgnoreSigpipe::new();
    let Pipes {
        mut stdin,
        stdout,
        stderr,
    } = pipes;
    for fd in [Some(&stdout), Some(&stderr), stdin.as_ref()]
        .into_iter()
        .flatten()
    {
        set_nonblocking(fd)?;
    }
    // (the process's output pipe, our fd it is copied to)
    let mut outs = [Some((stdout, 1)), Some((stderr, 2))];
    let mut reading_stdin = stdin.is_some();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let our_stdin = std::io::stdin();
    loop {
        if !reading_stdin && pending.is_empty() {
            // Our end of input is the process's.
            stdin = None;
        }
        let mut fds = vec![PollFd::new(sigfd, PollFlags::IN)];
        for (fd, _) in outs.iter().flatten() {
            fds.push(PollFd::new(fd, PollFlags::IN));
        }
        if reading_stdin && pending.len() < STDIN_BUFFER {
            fds.push(PollFd::new(&our_stdin, PollFlags::IN));
        }
        if let Some(w) = stdin.as_ref().filter(|_| !pending.is_empty()) {
            fds.push(PollFd::new(w, PollFlags::OUT));
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(nix_error(e)),
        }
        // The ready fds, by number: `fds` borrows the pipes we read and close below.
        let ready_fds: Vec<RawFd> = fds
            .iter()
            .filter(|p| !p.revents().is_empty())
            .map(|p| p.as_fd().as_raw_fd())
            .collect();
        drop(fds);
        let ready = |fd: RawFd| ready_fds.contains(&fd);
        for out in outs.iter_mut() {
            if out.as_ref().is_some_and(|(fd, _)| ready(fd.as_raw_fd())) {
                copy_available(out, &mut buf, false);
            }
        }
        if reading_stdin && ready(0) {
            match nix::unistd::read(0, &mut buf) {
                Ok(0) => reading_stdin = false,
                Ok(k) => pending.extend_from_slice(&buf[..k]),
                Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
                Err(_) => reading_stdin = false,
            }
        }
        if let Some(w) = stdin.as_ref().filter(|w| ready(w.as_raw_fd())) {
            match nix::unistd::write(w, &pending) {
                Ok(k) => {
                    pending.drain(..k);
                }
                Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
                // The process closed its stdin: nothing more reaches it.
                Err(_) => {
                    pending.clear();
                    reading_stdin = false;
                }
            }
        }
        if ready(sigfd.as_raw_fd()) {
            if let Some(code) = read_signals(sigfd, child, forward) {
                for out in outs.iter_mut() {
                    copy_available(out, &mut buf, true);
                }
                return Ok(code);
            }
        }
    }
}

/// Copies what the pipe holds to our fd (once, or with `all` until it is empty);
/// closes it at its end, or when ours is gone.
fn copy_available(out: &mut Option<(OwnedFd, RawFd)>, buf: &mut [u8], all: bool) {
    while let Some((fd, ours)) = out.as_ref() {
        match nix::unistd::read(fd.as_raw_fd(), buf) {
            Ok(0) => *out = None,
            Ok(k) => {
                if write_all(*ours, &buf[..k]).is_err() {
                    *out = None;
                }
            }
            Err(nix::Error::EINTR) => continue,
            Err(nix::Error::EAGAIN) => return,
            Err(_) => *out = None,
        }
        if !all {
            return;
        }
    }
}

/// Writes all of `data` to `fd`, waiting while it is full (it may be non-blocking).
fn write_all(fd: RawFd, mut data: &[u8]) -> nix::Result<()> {
    // SAFETY: fd is one of our stdio descriptors, open for the whole call.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    while !data.is_empty() {
        match nix::unistd::write(borrowed, data) {
            Ok(k) => data = &data[k..],
            Err(nix::Error::EINTR) => {}
            Err(nix::Error::EAGAIN) => {
                let _ = poll(&mut [PollFd::new(&borrowed, PollFlags::OUT)], None);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Handles the queued signals: SIGCHLD reaps (returning `child`'s code once it is
/// reaped), the others go to `forward` (SIGWINCH: no terminal to resize).
fn read_signals(sigfd: &SignalFd, child: Pid, forward: &mut dyn FnMut(i32)) -> Option<i32> {
    while let Ok(Some(info)) = sigfd.read_signal() {
        let signo = info.ssi_signo as i32;
        match Signal::try_from(signo) {
            Ok(Signal::SIGCHLD) => {
                if let Some(code) = reap(child) {
                    return Some(code);
                }
            }
            Ok(Signal::SIGWINCH) | Err(_) => {}
            // Not yet reaped, so the pid is still the process's.
            Ok(_) => forward(signo),
        }
    }
    None
}

/// SIGPIPE ignored until dropped (then its earlier disposition is back).
struct IgnoreSigpipe {
    old: Option<nix::sys::signal::SigHandler>,
}

impl IgnoreSigpipe {
    fn new() -> IgnoreSigpipe {
        use nix::sys::signal::{signal, SigHandler};
        // SAFETY: SIG_IGN installs no handler.
        let old = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.ok();
        IgnoreSigpipe { old }
    }
}

impl Drop for IgnoreSigpipe {
    fn drop(&mut self) {
        if let Some(old) = self.old {
            // SAFETY: restores the disposition signal() returned.
            let _ = unsafe { nix::sys::signal::signal(Signal::SIGPIPE, old) };
        }
    }
}
