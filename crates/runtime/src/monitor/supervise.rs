//! The monitor's steady state while a container runs: one poll loop that copies the
//! container's output into its json-file log and to attached clients, passes clients'
//! input to the container, starts health probes on schedule, and reaps the init.
//! Single-threaded and allocation-light: there is one of these per running container.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::attach::{self, Client};
use super::logfile::{LogWriter, Stream};
pub use super::ContainerIo;
use super::MonitorError;

/// When and how to start health probes (each probe is its own process).
pub struct HealthSchedule {
    /// Program and arguments of the probe process.
    pub command: Vec<OsString>,
    pub interval: Duration,
    /// Used instead of `interval` during the start period.
    pub start_interval: Duration,
    pub start_period: Duration,
    /// A probe process still running after this long is killed.
    pub kill_after: Duration,
}

/// Something else the monitor serves from its poll loop (the embedded DNS server of
/// user-defined networks), so one loop and no threads serve everything.
pub trait Service {
    /// Fds to poll for POLLIN.
    fn fds(&self) -> Vec<RawFd>;
    /// `fd` is readable.
    fn ready(&mut self, fd: RawFd);
    /// When `timeout` must run next, if ever.
    fn deadline(&self) -> Option<Instant>;
    fn timeout(&mut self);
}

pub struct Supervisor<'a> {
    pub init: Pid,
    pub io: ContainerIo,
    pub log: Option<LogWriter>,
    pub listener: &'a UnixListener,
    pub clients: Vec<Client>,
    /// `run -i`/`start -ai`: the container's stdin closes when the attached client's
    /// input ends (docker's StdinOnce).
    pub stdin_once: bool,
    pub health: Option<HealthSchedule>,
    pub signals: &'a SignalFd,
    pub service: Option<&'a mut dyn Service>,
}

/// Signals the monitor takes on its signalfd while supervising: SIGCHLD, and the ones
/// it passes on to the container (someone signalled the monitor, e.g. at shutdown).
pub const SUPERVISOR_SIGNALS: [Signal; 5] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// Input queued for the container's stdin beyond which clients are not read.
const STDIN_BUFFER: usize = 256 * 1024;

struct Probe {
    pid: Pid,
    deadline: Instant,
}

impl Supervisor<'_> {
    /// Runs until the container's init exits; returns docker's exit code for it
    /// (status, or 128 + signal). Attached clients stay in `self.clients` so the
    /// caller can send them the exit code once the container is torn down.
    pub fn run(&mut self) -> Result<i32, MonitorError> {
        let started = Instant::now();
        self.listener
            .set_nonblocking(true)
            .map_err(|source| MonitorError::Io {
                what: "set attach socket non-blocking",
                path: "attach socket".into(),
                source,
            })?;
        match &self.io {
            ContainerIo::Pipes {
                stdin,
                stdout,
                stderr,
            } => {
                for fd in [Some(stdout), Some(stderr), stdin.as_ref()]
                    .into_iter()
                    .flatten()
                {
                    super::set_nonblocking(fd)?;
                }
            }
            ContainerIo::Pty { master } => super::set_nonblocking(master)?,
        }
        let mut to_stdin: Vec<u8> = Vec::new();
        let mut close_stdin = false;
        let mut probe: Option<Probe> = None;
        let mut next_probe = self.health.as_ref().map(|h| started + h.first_delay());
        let mut buf = vec![0u8; 16 * 1024];
        let mut exit: Option<i32> = None;
        while exit.is_none() {
            let mut fds: Vec<libc::pollfd> = Vec::with_capacity(8 + self.clients.len());
            let pfd = |fd: RawFd, events: i16| libc::pollfd {
                fd,
                events,
                revents: 0,
            };
            fds.push(pfd(self.signals.as_raw_fd(), libc::POLLIN));
            fds.push(pfd(self.listener.as_raw_fd(), libc::POLLIN));
            let outputs = self.output_fds();
            for fd in &outputs {
                fds.push(pfd(*fd, libc::POLLIN));
            }
            let input_at = fds.len();
            if let (Some(fd), false) = (self.input_fd(), to_stdin.is_empty()) {
                fds.push(pfd(fd, libc::POLLOUT));
            }
            let clients_at = fds.len();
            // Clients' input waits in their sockets while the container is slow to
            // read it, rather than piling up here.
            let take_input = to_stdin.len() < STDIN_BUFFER;
            for c in &self.clients {
                let mut ev = if take_input { libc::POLLIN } else { 0 };
                if !c.pending.is_empty() {
                    ev |= libc::POLLOUT;
                }
                fds.push(pfd(c.stream.as_raw_fd(), ev));
            }
            let service_at = fds.len();
            let service_fds = self.service.as_ref().map(|s| s.fds()).unwrap_or_default();
            for fd in &service_fds {
                fds.push(pfd(*fd, libc::POLLIN));
            }
            let now = Instant::now();
            let service_deadline = self.service.as_ref().and_then(|s| s.deadline());
            let wake = [
                next_probe,
                probe.as_ref().map(|p| p.deadline),
                service_deadline,
            ]
            .into_iter()
            .flatten()
            .min();
            let timeout = wake.map_or(-1, |w| {
                w.saturating_duration_since(now)
                    .as_millis()
                    .min(i32::MAX as u128) as i32
            });
            // SAFETY: fds is a valid array of pollfd.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                let e = nix::Error::last();
                if e == nix::Error::EINTR {
                    continue;
                }
                return Err(MonitorError::Sys {
                    call: "poll",
                    source: e,
                });
            }
            if fds[0].revents != 0 {
                while let Ok(Some(info)) = self.signals.read_signal() {
                    match Signal::try_from(info.ssi_signo as i32) {
                        Ok(Signal::SIGCHLD) => {
                            let (init_code, probe_done) =
                                reap(self.init, probe.as_ref().map(|p| p.pid));
                            if probe_done {
                                probe = None;
                                if let Some(h) = &self.health {
                                    next_probe = Some(Instant::now() + h.period(started));
                                }
                            }
                            if init_code.is_some() {
                                exit = init_code;
                            }
                        }
                        Ok(sig) => {
                            let _ = nix::sys::signal::kill(self.init, sig);
                        }
                        Err(_) => {}
                    }
                }
            }
            if fds[1].revents != 0 {
                self.accept_clients();
            }
            for (i, fd) in outputs.iter().enumerate() {
                if fds[2 + i].revents != 0 {
                    self.pump(*fd, &mut buf);
                }
            }
            if fds.len() > input_at && input_at < clients_at && fds[input_at].revents != 0 {
                self.write_stdin(&mut to_stdin);
            }
            for (i, client) in self.clients.iter_mut().enumerate() {
                let re = fds.get(clients_at + i).map_or(0, |p| p.revents);
                if re & libc::POLLOUT != 0 {
                    client.flush();
                }
                if re & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                    for (kind, payload) in client.receive() {
                        match kind {
                            attach::STDIN => to_stdin.extend_from_slice(&payload),
                            attach::STDIN_CLOSE => match &self.io {
                                // The terminal sees its EOF character, as when
                                // ^D is typed.
                                ContainerIo::Pty { master } => {
                                    to_stdin.push(super::tty::eof_char(master))
                                }
                                ContainerIo::Pipes { .. } => close_stdin = true,
                            },
                            attach::RESIZE => {
                                if let (ContainerIo::Pty { master }, Some((rows, cols))) =
                                    (&self.io, attach::decode_resize(&payload))
                                {
                                    super::tty::set_winsize(master.as_fd(), rows, cols);
                                }
                            }
                            _ => {}
                        }
                    }
                    if client.closed && self.stdin_once {
                        close_stdin = true;
                    }
                }
            }
            if let Some(service) = self.service.as_deref_mut() {
                for (i, fd) in service_fds.iter().enumerate() {
                    if fds[service_at + i].revents != 0 {
                        service.ready(*fd);
                    }
                }
                if service.deadline().is_some_and(|d| Instant::now() >= d) {
                    service.timeout();
                }
            }
            self.clients.retain(|c| !c.closed);
            if !to_stdin.is_empty() {
                self.write_stdin(&mut to_stdin);
            }
            if close_stdin && to_stdin.is_empty() {
                if let ContainerIo::Pipes { stdin, .. } = &mut self.io {
                    *stdin = None;
                }
            }
            let now = Instant::now();
            if let Some(p) = &probe {
                if now >= p.deadline {
                    let _ = nix::sys::signal::kill(p.pid, Signal::SIGKILL);
                }
            }
            if probe.is_none() && next_probe.is_some_and(|t| now >= t) {
                next_probe = None;
                if let Some(h) = &self.health {
                    match spawn_probe(&h.command) {
                        Ok(pid) => {
                            probe = Some(Probe {
                                pid,
                                deadline: now + h.kill_after,
                            })
                        }
                        Err(e) => {
                            super::note(format_args!("coracle: start health probe: {e}"));
                            next_probe = Some(now + h.period(started));
                        }
                    }
                }
            }
        }
        // The init is gone; in its pid namespace so is everything else, so the pipes
        // are at EOF once drained.
        for fd in self.output_fds() {
            self.pump(fd, &mut buf);
        }
        if let Some(log) = &mut self.log {
            log.flush(SystemTime::now());
        }
        if let Some(p) = probe {
            let _ = nix::sys::signal::kill(p.pid, Signal::SIGKILL);
            let _ = waitpid(p.pid, None);
        }
        Ok(exit.expect("loop ends with an exit code"))
    }

    fn output_fds(&self) -> Vec<RawFd> {
        match &self.io {
            ContainerIo::Pipes { stdout, stderr, .. } => {
                vec![stdout.as_raw_fd(), stderr.as_raw_fd()]
            }
            ContainerIo::Pty { master } => vec![master.as_raw_fd()],
        }
    }

    fn input_fd(&self) -> Option<RawFd> {
        match &self.io {
            ContainerIo::Pipes { stdin, .. } => stdin.as_ref().map(|f| f.as_raw_fd()),
            ContainerIo::Pty { master } => Some(master.as_raw_fd()),
        }
    }

    fn stream_of(&self, fd: RawFd) -> Stream {
        match &self.io {
            ContainerIo::Pipes { stderr, .. } if stderr.as_raw_fd() == fd => Stream::Stderr,
            _ => Stream::Stdout,
        }
    }

    /// Copies what is readable on `fd` now to the log and the clients.
    fn pump(&mut self, fd: RawFd, buf: &mut [u8]) {
        let stream = self.stream_of(fd);
        let kind = match stream {
            Stream::Stdout => attach::STDOUT,
            Stream::Stderr => attach::STDERR,
        };
        // Bounded: one busy stream must not starve the rest of the loop.
        for _ in 0..16 {
            match nix::unistd::read(fd, buf) {
                Ok(0) => return,
                Ok(n) => {
                    // A log the disk does not take drops lines; output goes on.
                    if let Some(log) = &mut self.log {
                        log.write(stream, &buf[..n], SystemTime::now());
                    }
                    for c in &mut self.clients {
                        c.send(kind, &buf[..n]);
                    }
                }
                Err(nix::Error::EINTR) => {}
                // EAGAIN: drained; EIO: every pty slave is closed.
                Err(_) => return,
            }
        }
    }

    fn write_stdin(&mut self, data: &mut Vec<u8>) {
        let Some(fd) = self.input_fd() else {
            data.clear();
            return;
        };
        while !data.is_empty() {
            // SAFETY: fd stays open for the duration of the call (owned by self.io).
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            match nix::unistd::write(fd, data) {
                Ok(n) => {
                    data.drain(..n);
                }
                Err(nix::Error::EAGAIN) => return,
                Err(nix::Error::EINTR) => {}
                // The container closed its stdin: drop what it will never read.
                Err(_) => {
                    data.clear();
                    return;
                }
            }
        }
    }

    fn accept_clients(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => match Client::new(stream) {
                    Ok(c) => self.clients.push(c),
                    Err(e) => super::note(format_args!("coracle: attach client: {e}")),
                },
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

impl HealthSchedule {
    fn first_delay(&self) -> Duration {
        if self.start_period.is_zero() {
            self.interval
        } else {
            self.start_interval
        }
    }

    /// The wait before the next probe: the start interval while in the start period.
    fn period(&self, started: Instant) -> Duration {
        if started.elapsed() < self.start_period {
            self.start_interval
        } else {
            self.interval
        }
    }
}

/// Reaps every exited child. Returns the init's exit code if it was among them, and
/// whether the probe process was.
fn reap(init: Pid, probe: Option<Pid>) -> (Option<i32>, bool) {
    let (mut code, mut probe_done) = (None, false);
    loop {
        let (pid, c) = match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, c)) => (pid, c),
            Ok(WaitStatus::Signaled(pid, s, _)) => (pid, 128 + s as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return (code, probe_done),
            Ok(_) => continue,
        };
        if pid == init {
            code = Some(c);
        } else if Some(pid) == probe {
            probe_done = true;
        }
    }
}

fn spawn_probe(command: &[OsString]) -> std::io::Result<Pid> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty health probe command"))?;
    let child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    // Reaped by the loop's waitpid(-1), not through `Child`.
    Ok(Pid::from_raw(child.id() as i32))
}
