//! The client side of attach: `coracle run` (attached), `start -a` and `attach` relay
//! their terminal to a container's monitor over its attach socket.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::event::{poll, PollFd, PollFlags};

use super::attach::{self, DetachKeys, FrameReader};
use crate::relay::{SigmaskGuard, FORWARDED_SIGNALS};
use crate::tty;

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
    stream: UnixStream,
    opts: &AttachOptions,
    on_signal: &mut dyn FnMut(i32),
) -> io::Result<AttachEnd> {
    let stdin = io::stdin();
    let mask = relayed_signals(opts);
    let _restore = SigmaskGuard::block(&mask)?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    let _raw = if opts.tty && opts.stdin {
        tty::RawMode::enter(stdin.as_fd())
    } else {
        None
    };
    let mut session = Session::new(stream, opts);
    if opts.tty {
        session.send_terminal_size()?;
    }
    loop {
        let Some(ready) = session.wait(&sigfd, &stdin)? else {
            continue;
        };
        if ready.signals {
            session.pass_signals(&sigfd, on_signal)?;
        }
        if ready.monitor {
            if let Some(end) = session.take_output()? {
                return Ok(end);
            }
        }
        if ready.stdin {
            if let Some(end) = session.send_input(&stdin)? {
                return Ok(end);
            }
        }
    }
}

/// The signals the client reads from its signalfd: SIGWINCH with a tty, the ones it
/// passes on with `proxy_signals` (never with a tty).
fn relayed_signals(opts: &AttachOptions) -> SigSet {
    let mut mask = SigSet::empty();
    if opts.tty {
        mask.add(Signal::SIGWINCH);
    }
    if opts.proxy_signals && !opts.tty {
        for s in FORWARDED_SIGNALS {
            mask.add(s);
        }
    }
    mask
}

/// Which of the client's fds are ready after one poll.
struct Ready {
    signals: bool,
    monitor: bool,
    stdin: bool,
}

/// The client's side of one attach while it runs.
struct Session<'a> {
    stream: UnixStream,
    opts: &'a AttachOptions,
    detach: DetachKeys,
    frames: FrameReader,
    stdin_open: bool,
    buf: Vec<u8>,
    out: io::StdoutLock<'static>,
    err: io::StderrLock<'static>,
}

impl<'a> Session<'a> {
    fn new(stream: UnixStream, opts: &'a AttachOptions) -> Session<'a> {
        // Only a terminal's keystrokes can be a detach sequence: without a tty, stdin
        // is data (a piped tar or blob holds 0x10 0x11 often enough), as in docker.
        let detach = DetachKeys::new(if opts.stdin && opts.tty {
            opts.detach_keys.clone()
        } else {
            Vec::new()
        });
        Session {
            stream,
            opts,
            detach,
            frames: FrameReader::new(),
            stdin_open: opts.stdin,
            buf: vec![0u8; 32 * 1024],
            out: io::stdout().lock(),
            err: io::stderr().lock(),
        }
    }

    fn send(&mut self, kind: u8, payload: &[u8]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 5);
        attach::encode(kind, payload, &mut frame);
        self.stream.write_all(&frame)
    }

    fn send_terminal_size(&mut self) -> io::Result<()> {
        match terminal_size() {
            Some((rows, cols)) => self.send(attach::RESIZE, &attach::encode_resize(rows, cols)),
            None => Ok(()),
        }
    }

    /// Waits for a signal, the monitor, or our stdin (while open); None when
    /// interrupted.
    fn wait(&self, sigfd: &SignalFd, stdin: &io::Stdin) -> io::Result<Option<Ready>> {
        let mut fds = vec![
            PollFd::new(sigfd, PollFlags::IN),
            PollFd::new(&self.stream, PollFlags::IN),
        ];
        if self.stdin_open {
            fds.push(PollFd::new(stdin, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let ready = |i: usize| fds.get(i).is_some_and(|p| !p.revents().is_empty());
        Ok(Some(Ready {
            signals: ready(0),
            monitor: ready(1),
            stdin: self.stdin_open && ready(2),
        }))
    }

    /// SIGWINCH sends our terminal's size; the others go to `on_signal`.
    fn pass_signals(&mut self, sigfd: &SignalFd, on_signal: &mut dyn FnMut(i32)) -> io::Result<()> {
        while let Ok(Some(info)) = sigfd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGWINCH) => self.send_terminal_size()?,
                Ok(s) => on_signal(s as i32),
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// Reads the monitor's frames: output goes to ours; the exit code ends the attach,
    /// as does the monitor going away.
    fn take_output(&mut self) -> io::Result<Option<AttachEnd>> {
        match self.stream.read(&mut self.buf) {
            Ok(0) => return Ok(Some(AttachEnd::Lost)),
            Ok(k) => self.frames.push(&self.buf[..k]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(Some(AttachEnd::Lost)),
        }
        while let Some((kind, payload)) = self.frames.next_frame()? {
            match kind {
                attach::STDOUT if self.opts.stdout => {
                    // Our reader going away must not stop the container.
                    let _ = self.out.write_all(&payload).and_then(|_| self.out.flush());
                }
                attach::STDERR if self.opts.stderr => {
                    let _ = self.err.write_all(&payload).and_then(|_| self.err.flush());
                }
                attach::EXIT => {
                    let code = String::from_utf8_lossy(&payload)
                        .trim()
                        .parse()
                        .unwrap_or(255);
                    return Ok(Some(AttachEnd::Exited(code)));
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// Sends what our stdin holds (its end as STDIN_CLOSE); ends the attach when the
    /// user typed the detach sequence.
    fn send_input(&mut self, stdin: &io::Stdin) -> io::Result<Option<AttachEnd>> {
        let mut lock = stdin.lock();
        match lock.read(&mut self.buf) {
            Ok(0) | Err(_) => {
                self.stdin_open = false;
                self.send(attach::STDIN_CLOSE, &[])?;
            }
            Ok(k) => {
                let (pass, detached) = self.detach.feed(&self.buf[..k]);
                if !pass.is_empty() {
                    self.send(attach::STDIN, &pass)?;
                }
                if detached {
                    return Ok(Some(AttachEnd::Detached));
                }
            }
        }
        Ok(None)
    }
}

/// Our terminal's size: stdin's, else stdout's.
fn terminal_size() -> Option<(u16, u16)> {
    tty::winsize(io::stdin().as_fd()).or_else(|| tty::winsize(io::stdout().as_fd()))
}
