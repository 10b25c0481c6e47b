//! The client side of attach: `coracle run` (attached), `start -a` and `attach` relay
//! their terminal to a container's monitor over its attach socket.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::event::{poll, PollFd, PollFlags};

use super::attach::{self, DetachKeys, FrameReader};
use super::{tty, FORWARDED_SIGNALS};

pub struct AttachOptions {
    /// Send our stdin to the container.
    pub stdin: bool,
    /// Show the container's stdout, its stderr (`run -a`; with a tty both are one
    /// stream, stdout).
    pub stdout: bool,
    pub stderr: bool,
    /// The container has a tty: raw mode on ours, window size passed on.
    pub tty: bool,
    /// Detach sequence (empty: none). Applies only with `tty`.
    pub detach_keys: Vec<u8>,
    /// Pass the signals we receive on to the container (docker's --sig-proxy; never
    /// with a tty, where ^C is a byte for the container's terminal).
    pub proxy_signals: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachEnd {
    /// The container stopped with this exit code.
    Exited(i32),
    /// The user typed the detach sequence.
    Detached,
    /// The monitor went away without an exit code.
    Lost,
}

/// Relays stdin/stdout/stderr to the monitor on `stream` until the container stops,
/// the user detaches, or the monitor disappears. `on_signal` is called for each
/// signal to pass on.
pub fn relay(
    mut stream: UnixStream,
    opts: &AttachOptions,
    on_signal: &mut dyn FnMut(i32),
) -> io::Result<AttachEnd> {
    let stdin = io::stdin();
    let mut mask = SigSet::empty();
    if opts.tty {
        mask.add(Signal::SIGWINCH);
    }
    if opts.proxy_signals && !opts.tty {
        for s in FORWARDED_SIGNALS {
            mask.add(s);
        }
    }
    let _restore = crate::relay::SigmaskGuard::block(&mask)?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;

    let _raw = if opts.tty && opts.stdin {
        tty::RawMode::enter(stdin.as_fd())
    } else {
        None
    };
    let send = |s: &mut UnixStream, kind: u8, payload: &[u8]| -> io::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 5);
        attach::encode(kind, payload, &mut frame);
        s.write_all(&frame)
    };
    if opts.tty {
        if let Some((rows, cols)) = terminal_size() {
            send(
                &mut stream,
                attach::RESIZE,
                &attach::encode_resize(rows, cols),
            )?;
        }
    }
    // Only a terminal's keystrokes can be a detach sequence: without a tty, stdin is
    // data (a piped tar or blob holds 0x10 0x11 often enough), as in docker.
    let mut detach = DetachKeys::new(if opts.stdin && opts.tty {
        opts.detach_keys.clone()
    } else {
        Vec::new()
    });
    let mut frames = FrameReader::new();
    let mut stdin_open = opts.stdin;
    let mut buf = vec![0u8; 32 * 1024];
    let (mut out, mut err) = (io::stdout().lock(), io::stderr().lock());
    loop {
        let mut fds = vec![
            PollFd::new(&sigfd, PollFlags::IN),
            PollFd::new(&stream, PollFlags::IN),
        ];
        if stdin_open {
            fds.push(PollFd::new(&stdin, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        // Which fds are ready; `fds` borrows the stream we read from below.
        let ready: Vec<bool> = fds.iter().map(|p| !p.revents().is_empty()).collect();
        if ready[0] {
            while let Ok(Some(info)) = sigfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGWINCH) => {
                        if let Some((rows, cols)) = terminal_size() {
                            send(
                                &mut stream,
                                attach::RESIZE,
                                &attach::encode_resize(rows, cols),
                            )?;
                        }
                    }
                    Ok(s) => on_signal(s as i32),
                    Err(_) => {}
                }
            }
        }
        if ready[1] {
            match stream.read(&mut buf) {
                Ok(0) => return Ok(AttachEnd::Lost),
                Ok(k) => frames.push(&buf[..k]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Ok(AttachEnd::Lost),
            }
            while let Some((kind, payload)) = frames.next_frame()? {
                match kind {
                    attach::STDOUT if opts.stdout => {
                        // Our reader going away must not stop the container.
                        let _ = out.write_all(&payload).and_then(|_| out.flush());
                    }
                    attach::STDERR if opts.stderr => {
                        let _ = err.write_all(&payload).and_then(|_| err.flush());
                    }
                    attach::EXIT => {
                        let code = String::from_utf8_lossy(&payload)
                            .trim()
                            .parse()
                            .unwrap_or(255);
                        return Ok(AttachEnd::Exited(code));
                    }
                    _ => {}
                }
            }
        }
        if stdin_open && ready.len() > 2 && ready[2] {
            let mut lock = stdin.lock();
            match lock.read(&mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    send(&mut stream, attach::STDIN_CLOSE, &[])?;
                }
                Ok(k) => {
                    let (pass, detached) = detach.feed(&buf[..k]);
                    if !pass.is_empty() {
                        send(&mut stream, attach::STDIN, &pass)?;
                    }
                    if detached {
                        return Ok(AttachEnd::Detached);
                    }
                }
            }
        }
    }
}

/// Our terminal's size: stdin's, else stdout's.
fn terminal_size() -> Option<(u16, u16)> {
    tty::winsize(io::stdin().as_fd()).or_else(|| tty::winsize(io::stdout().as_fd()))
}
