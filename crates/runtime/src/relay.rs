//! What a process that stays with a container process needs, shared by the
//! foreground monitor ([`crate::monitor::run_foreground`]) and `exec`
//! ([`crate::exec_session`]): relaying our terminal to a pty master, passing signals
//! on, reaping, and the signal-mask and fd plumbing around that.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::monitor::tty;

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
            return Err(e);
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
                        if let Some(code) = reap(child) {
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
                    Ok(_) => forward(signo),
                    Err(_) => {}
                }
            }
        }
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
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}

pub(crate) fn set_nonblocking(fd: RawFd) -> nix::Result<()> {
    // SAFETY: fcntl on an fd the caller owns.
    let r = unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK)
    };
    if r < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
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
