//! The monitor's steady state while a container runs: one poll loop that copies the
//! container's output into its json-file log and to attached clients, passes clients'
//! input to the container, starts health probes on schedule, and reaps the init.
//! Single-threaded and allocation-light: there is one of these per running container.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use rustix::event::{poll, PollFd, PollFlags, Timespec};

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
    fn fds(&self) -> Vec<BorrowedFd<'_>>;
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

/// What the loop carries from one turn to the next.
struct LoopState {
    started: Instant,
    /// Clients' input not yet written to the container.
    to_stdin: Vec<u8>,
    /// The container's stdin pipe is closed once `to_stdin` is written.
    close_stdin: bool,
    probe: Option<Probe>,
    next_probe: Option<Instant>,
    buf: Vec<u8>,
    /// The init's exit code, once it is reaped.
    exit: Option<i32>,
}

/// Where each group of fds sits in one turn's poll events, in the order `poll`
/// polls them: signals (0), listener (1), outputs, input, clients, services.
struct PollLayout {
    outputs: Vec<RawFd>,
    input_at: usize,
    /// The container's input is polled (there is input for it).
    want_input: bool,
    clients_at: usize,
    /// Clients' input is read (the queue for the container's stdin has room).
    take_input: bool,
    service_at: usize,
    service_fds: Vec<RawFd>,
}

impl Supervisor<'_> {
    /// Runs until the container's init exits; returns docker's exit code for it
    /// (status, or 128 + signal). Attached clients stay in `self.clients` so the
    /// caller can send them the exit code once the container is torn down.
    pub fn run(&mut self) -> Result<i32, MonitorError> {
        let started = Instant::now();
        self.set_up()?;
        let mut state = LoopState {
            started,
            to_stdin: Vec::new(),
            close_stdin: false,
            probe: None,
            next_probe: self.health.as_ref().map(|h| started + h.first_delay()),
            buf: vec![0u8; 16 * 1024],
            exit: None,
        };
        let code = loop {
            self.turn(&mut state)?;
            if let Some(code) = state.exit {
                break code;
            }
        };
        self.tear_down(state);
        Ok(code)
    }

    /// Makes the attach socket and the container's stdio non-blocking: the loop never
    /// waits on one fd.
    fn set_up(&self) -> Result<(), MonitorError> {
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
        Ok(())
    }

    /// One turn of the loop: waits for the next event (or deadline) and serves what
    /// is ready.
    fn turn(&mut self, state: &mut LoopState) -> Result<(), MonitorError> {
        let layout = self.poll_layout(&state.to_stdin);
        let now = Instant::now();
        let timeout = self
            .next_wake(state)
            .map(|w| w.saturating_duration_since(now));
        let Some(revents) = self.poll(layout.want_input, layout.take_input, timeout)? else {
            return Ok(());
        };
        if !revents[0].is_empty() {
            self.handle_signals(state);
        }
        if !revents[1].is_empty() {
            self.accept_clients();
        }
        for (i, fd) in layout.outputs.iter().enumerate() {
            if !revents[2 + i].is_empty() {
                self.pump(*fd, &mut state.buf);
            }
        }
        if layout.want_input && !revents[layout.input_at].is_empty() {
            self.write_stdin(&mut state.to_stdin);
        }
        self.serve_clients(&revents, layout.clients_at, state);
        self.serve_service(&revents, layout.service_at, &layout.service_fds);
        self.clients.retain(|c| !c.closed);
        self.feed_stdin(state);
        self.run_health_probes(state);
        Ok(())
    }

    /// The init is gone; in its pid namespace so is everything else, so the pipes are
    /// at EOF once drained. Copies what they hold, flushes the log and stops a probe
    /// still running.
    fn tear_down(&mut self, mut state: LoopState) {
        for fd in self.output_fds() {
            self.pump(fd, &mut state.buf);
        }
        if let Some(log) = &mut self.log {
            log.flush(SystemTime::now());
        }
        if let Some(p) = state.probe {
            let _ = nix::sys::signal::kill(p.pid, Signal::SIGKILL);
            let _ = waitpid(p.pid, None);
        }
    }

    fn poll_layout(&self, to_stdin: &[u8]) -> PollLayout {
        let outputs = self.output_fds();
        let input_at = 2 + outputs.len();
        let want_input = self.input_fd().is_some() && !to_stdin.is_empty();
        let clients_at = input_at + usize::from(want_input);
        // Clients' input waits in their sockets while the container is slow to read
        // it, rather than piling up here.
        let take_input = to_stdin.len() < STDIN_BUFFER;
        let service_at = clients_at + self.clients.len();
        let service_fds: Vec<RawFd> = self.service.as_ref().map_or_else(Vec::new, |s| {
            s.fds().iter().map(AsRawFd::as_raw_fd).collect()
        });
        PollLayout {
            outputs,
            input_at,
            want_input,
            clients_at,
            take_input,
            service_at,
            service_fds,
        }
    }

    /// The earliest deadline: the next probe, killing the running probe, the service's.
    fn next_wake(&self, state: &LoopState) -> Option<Instant> {
        let service_deadline = self.service.as_ref().and_then(|s| s.deadline());
        [
            state.next_probe,
            state.probe.as_ref().map(|p| p.deadline),
            service_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// SIGCHLD reaps (the init, the probe); other signals go on to the init.
    fn handle_signals(&mut self, state: &mut LoopState) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => self.reap_children(state),
                Ok(sig) => {
                    let _ = nix::sys::signal::kill(self.init, sig);
                }
                Err(_) => {}
            }
        }
    }

    fn reap_children(&self, state: &mut LoopState) {
        let (init_code, probe_done) = reap(self.init, state.probe.as_ref().map(|p| p.pid));
        if probe_done {
            state.probe = None;
            if let Some(h) = &self.health {
                state.next_probe = Some(Instant::now() + h.period(state.started));
            }
        }
        if init_code.is_some() {
            state.exit = init_code;
        }
    }

    /// Sends attached clients their pending output and takes their input.
    fn serve_clients(&mut self, revents: &[PollFlags], clients_at: usize, state: &mut LoopState) {
        for (i, client) in self.clients.iter_mut().enumerate() {
            let re = revents.get(clients_at + i).copied();
            let re = re.unwrap_or(PollFlags::empty());
            if re.contains(PollFlags::OUT) {
                client.flush();
            }
            if re.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
                for (kind, payload) in client.receive() {
                    take_client_frame(&self.io, kind, &payload, state);
                }
                if client.closed && self.stdin_once {
                    state.close_stdin = true;
                }
            }
        }
    }

    fn serve_service(&mut self, revents: &[PollFlags], service_at: usize, fds: &[RawFd]) {
        if let Some(service) = self.service.as_deref_mut() {
            for (i, fd) in fds.iter().enumerate() {
                if !revents[service_at + i].is_empty() {
                    service.ready(*fd);
                }
            }
            if service.deadline().is_some_and(|d| Instant::now() >= d) {
                service.timeout();
            }
        }
    }

    /// Writes the clients' queued input; closes the container's stdin pipe once all
    /// of it is written, when asked to.
    fn feed_stdin(&mut self, state: &mut LoopState) {
        if !state.to_stdin.is_empty() {
            self.write_stdin(&mut state.to_stdin);
        }
        if state.close_stdin && state.to_stdin.is_empty() {
            if let ContainerIo::Pipes { stdin, .. } = &mut self.io {
                *stdin = None;
            }
        }
    }

    /// Kills a probe past its deadline; starts the next one when it is due.
    fn run_health_probes(&self, state: &mut LoopState) {
        let now = Instant::now();
        if let Some(p) = &state.probe {
            if now >= p.deadline {
                let _ = nix::sys::signal::kill(p.pid, Signal::SIGKILL);
            }
        }
        if state.probe.is_none() && state.next_probe.is_some_and(|t| now >= t) {
            state.next_probe = None;
            if let Some(h) = &self.health {
                match spawn_probe(&h.command) {
                    Ok(pid) => {
                        state.probe = Some(Probe {
                            pid,
                            deadline: now + h.kill_after,
                        })
                    }
                    Err(e) => {
                        super::note(format_args!("coracle: start health probe: {e}"));
                        state.next_probe = Some(now + h.period(state.started));
                    }
                }
            }
        }
    }

    /// Polls every fd the loop serves, in the order `turn` indexes the events by:
    /// signals, listener, outputs, the input (`want_input`), clients (their input
    /// with `take_input`, their pending output), services. None when interrupted.
    fn poll(
        &self,
        want_input: bool,
        take_input: bool,
        timeout: Option<Duration>,
    ) -> Result<Option<Vec<PollFlags>>, MonitorError> {
        let mut fds = Vec::with_capacity(8 + self.clients.len());
        fds.push(PollFd::new(self.signals, PollFlags::IN));
        fds.push(PollFd::new(self.listener, PollFlags::IN));
        let (outputs, input): (Vec<&OwnedFd>, Option<&OwnedFd>) = match &self.io {
            ContainerIo::Pipes {
                stdin,
                stdout,
                stderr,
            } => (vec![stdout, stderr], stdin.as_ref()),
            ContainerIo::Pty { master } => (vec![master], Some(master)),
        };
        for fd in outputs {
            fds.push(PollFd::new(fd, PollFlags::IN));
        }
        if let (Some(fd), true) = (input, want_input) {
            fds.push(PollFd::new(fd, PollFlags::OUT));
        }
        for c in &self.clients {
            let mut ev = if take_input {
                PollFlags::IN
            } else {
                PollFlags::empty()
            };
            if !c.pending.is_empty() {
                ev |= PollFlags::OUT;
            }
            fds.push(PollFd::new(&c.stream, ev));
        }
        let services = self.service.as_ref().map(|s| s.fds()).unwrap_or_default();
        for fd in services {
            fds.push(PollFd::from_borrowed_fd(fd, PollFlags::IN));
        }
        // A timeout too large for a timespec is as good as none.
        let timeout = timeout.and_then(|d| Timespec::try_from(d).ok());
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) => Ok(Some(fds.iter().map(PollFd::revents).collect())),
            Err(rustix::io::Errno::INTR) => Ok(None),
            Err(e) => Err(MonitorError::Sys {
                call: "poll",
                source: nix::Error::from_raw(e.raw_os_error()),
            }),
        }
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

/// A frame from an attached client: input for the container, its end, a resize.
fn take_client_frame(io: &ContainerIo, kind: u8, payload: &[u8], state: &mut LoopState) {
    match kind {
        attach::STDIN => state.to_stdin.extend_from_slice(payload),
        attach::STDIN_CLOSE => match io {
            // The terminal sees its EOF character, as when ^D is typed.
            ContainerIo::Pty { master } => state.to_stdin.push(crate::tty::eof_char(master)),
            ContainerIo::Pipes { .. } => state.close_stdin = true,
        },
        attach::RESIZE => {
            if let (ContainerIo::Pty { master }, Some((rows, cols))) =
                (io, attach::decode_resize(payload))
            {
                crate::tty::set_winsize(master.as_fd(), rows, cols);
            }
        }
        _ => {}
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
