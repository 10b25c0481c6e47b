//! The per-container monitor (`coracle __monitor ID`): started detached by `start`
//! (and so by `run`), it creates and starts the container through its runtime, is
//! the parent of its init, keeps its log, serves attach clients, runs health probes,
//! restarts it as its policy says, and finally tears it down and records how it
//! ended (or removes it, with `--rm`). It reports to the process that started it on a
//! pipe, one [`StartReport`] a line: ready (attach socket bound), then started or failed.

use crate::clock::now_rfc3339;
use crate::containers::restart;
use crate::containers::teardown::report_teardown_failures;
use crate::helper::{Helper, StartReport};
use crate::names::short;
use crate::networks::{DbNames, DnsService};
use crate::stored::ContainerRuntimeConfig;
use crate::{Containers, Engine, EngineError};
use coracle_net::dns::DnsServer;
use coracle_runtime::monitor::attach::Client;
use coracle_runtime::monitor::logfile::LogWriter;
use coracle_runtime::monitor::supervise::{
    HealthSchedule, Service, Supervisor, SUPERVISOR_SIGNALS,
};
use coracle_runtime::monitor::{self as rtmon, ContainerIo, MonitorError};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use rustix::event::PollFlags;
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The monitor's own stderr, in the container's directory.
pub const MONITOR_LOG: &str = "monitor.log";

/// How long an attached start waits for its client to connect.
const ATTACH_WAIT: Duration = Duration::from_secs(30);

pub struct MonitorArgs {
    /// Where to send the [`StartReport`]s (closed once started).
    pub sync: Option<OwnedFd>,
    /// Start only once an attach client has connected (`run` in the foreground,
    /// `start -a`), so it sees all output.
    pub attach_wait: bool,
}

struct Sync(Option<File>);

impl Sync {
    fn say(&mut self, report: StartReport) {
        if let Some(f) = &mut self.0 {
            // The starter may be gone (killed): the container runs on regardless.
            let _ = f.write_all(report.to_line().as_bytes());
        }
    }

    fn failed(&mut self, code: i32, message: String) {
        self.say(StartReport::Failed { code, message });
    }
    fn close(&mut self) {
        self.0 = None;
        coracle_runtime::log_sink::clear_mirror();
    }
}

impl Containers<'_> {
    /// The monitor's whole life; returns the container's last exit code (the
    /// monitor's own exit status, which nobody waits for).
    pub fn run_monitor(&mut self, id: &str, args: MonitorArgs) -> Result<i32, EngineError> {
        let mut sync = Sync(args.sync.map(File::from));
        let me = std::process::id() as i64;
        // Held until the container runs: `rm` waits rather than removing it mid-start.
        let dir_lock = match crate::containers::lock_dir(&self.containers_dir().join(id)) {
            Ok(l) => l,
            Err(_) => {
                sync.failed(125, format!("No such container: {id}"));
                return Ok(125);
            }
        };
        if !self.db.claim_container_monitor(id, me)? {
            let c = self.db.container(id)?;
            let msg = match c {
                None => format!("No such container: {id}"),
                Some(c) => format!("container {} is already running", c.name),
            };
            sync.failed(125, msg);
            return Ok(125);
        }
        match self.monitor_claimed(id, &mut sync, args.attach_wait, dir_lock) {
            Ok(code) => Ok(code),
            Err(e) => {
                // Whatever failed, the record must not point at a dead monitor.
                let msg = e.to_string();
                sync.failed(125, msg.clone());
                let _ = self.db.set_container_start_failed(id, 125, &msg);
                Err(e)
            }
        }
    }
}

impl Engine {
    fn monitor_claimed(
        &mut self,
        id: &str,
        sync: &mut Sync,
        attach_wait: bool,
        dir_lock: File,
    ) -> Result<i32, EngineError> {
        let mut monitor = Monitor::setup(self, id, sync, attach_wait, dir_lock)?;
        monitor.run(self)
    }

    /// The container did not start: torn down (or removed, with --rm) first, then
    /// reported, so the caller returns to a settled state.
    fn start_failed(
        &mut self,
        id: &str,
        cfg: &ContainerRuntimeConfig,
        code: i32,
        msg: &str,
        clients: &mut Vec<Client>,
        sync: &mut Sync,
    ) -> Result<i32, EngineError> {
        let finished = self.finish(id, cfg, None, code, false, clients);
        if !cfg.rm && finished.is_ok() {
            // docker's State.Error: why it did not start.
            let _ = self.db.set_container_start_failed(id, code as i64, msg);
        }
        sync.failed(code, msg.to_string());
        finished?;
        Ok(code)
    }

    /// Mounts the root filesystem (if needed), creates and starts the container.
    fn start_once(
        &mut self,
        id: &str,
        cfg: &ContainerRuntimeConfig,
        rt: &dyn coracle_runtime::runtime::Runtime,
    ) -> Result<(nix::unistd::Pid, coracle_runtime::monitor::ContainerIo), MonitorError> {
        if !coracle_rootfs::snapshot::is_mounted(&cfg.rootfs).unwrap_or(false) {
            tracing::debug!(target_dir = %cfg.rootfs.target.display(), "mounting the root filesystem");
            coracle_rootfs::snapshot::mount(&cfg.rootfs).map_err(|e| MonitorError::Io {
                what: "mount the root filesystem at",
                path: cfg.rootfs.target.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        }
        // A runtime record left by a monitor that died: the container is gone.
        let _ = rt.delete(id, true);
        let dir = self.containers_dir().join(id);
        tracing::debug!(container = short(id), runtime = rt.name(), "runtime create");
        let (init, io) = rtmon::create_detached(
            rt,
            id,
            &dir,
            cfg.tty,
            cfg.interactive,
            &self.run_dir.runtime_state(),
        )?;
        tracing::debug!(container = short(id), pid = init.as_raw(), "runtime start");
        if let Err(e) = rt.start(id) {
            let _ = rt.delete(id, true);
            return Err(rtmon::runtime_error_for(&dir, e));
        }
        Ok((init, io))
    }

    /// The container is done: unmount, then record the exit (or remove it with
    /// `--rm`), and give attached clients the exit code. Collects every failure.
    fn finish(
        &mut self,
        id: &str,
        cfg: &ContainerRuntimeConfig,
        log: Option<&mut LogWriter>,
        code: i32,
        oom: bool,
        clients: &mut Vec<Client>,
    ) -> Result<(), EngineError> {
        if let Some(log) = log {
            log.flush(std::time::SystemTime::now());
        }
        tracing::debug!(container = short(id), code, rm = cfg.rm, "tearing down");
        let failures = self.release_container(id, cfg);
        let result = if cfg.rm {
            self.remove_stopped(id, cfg, true)
        } else {
            let rec = self.db.container(id)?;
            if rec
                .as_ref()
                .is_some_and(|r| r.state == coracle_state::ContainerState::Created)
            {
                // It never ran (the create or start failed): docker keeps it created.
                self.db
                    .set_container_start_failed(
                        id,
                        code as i64,
                        "the container could not be started",
                    )
                    .map_err(EngineError::from)
            } else {
                self.db
                    .set_container_exited(id, code as i64, &now_rfc3339(), oom)
                    .map_err(EngineError::from)
            }
        };
        report_teardown_failures(id, failures);
        for c in clients.drain(..) {
            c.finish(code, Duration::from_secs(5));
        }
        result
    }
}

/// One monitor's hold on its container, from setup to teardown: the signals it
/// takes, the attach socket and clients, the log and the health schedule.
struct Monitor<'a> {
    // Fields drop in this order: the log and clients go before the attach socket.
    exit_file: PathBuf,
    health: Option<HealthSchedule>,
    log: Option<LogWriter>,
    clients: Vec<Client>,
    _socket: RemoveOnDrop,
    listener: UnixListener,
    signals: SignalFd,
    rt: Box<dyn coracle_runtime::runtime::Runtime>,
    cfg: ContainerRuntimeConfig,
    /// Held until the container runs (see `run_monitor`).
    dir_lock: Option<File>,
    id: &'a str,
    sync: &'a mut Sync,
    attach_wait: bool,
}

/// What follows a container's exit.
enum AfterExit {
    StartAgain,
    Done,
}

impl<'a> Monitor<'a> {
    /// Everything before the container's network: the monitor's stderr, signals and
    /// attach socket (reported ready), the first client of an attached start, the log
    /// and the health schedule.
    fn setup(
        engine: &Engine,
        id: &'a str,
        sync: &'a mut Sync,
        attach_wait: bool,
        dir_lock: File,
    ) -> Result<Monitor<'a>, EngineError> {
        let dir = engine.containers_dir().join(id);
        redirect_stderr(&dir.join(MONITOR_LOG));
        mirror_log_to_client();
        tracing::debug!(
            container = short(id),
            pid = std::process::id(),
            "monitor started"
        );
        let cfg = engine.container_config(id)?;
        let rt = engine.runtime_for(&cfg)?;
        rtmon::set_child_subreaper()?;
        let signals = block_supervisor_signals()?;
        let (listener, socket) = bind_attach_socket(&engine.run_dir.attach_socket(id))?;
        sync.say(StartReport::Ready);
        let mut clients = Vec::new();
        if attach_wait {
            if let Some(c) = accept_one(&listener, ATTACH_WAIT) {
                clients.push(c);
            }
        }
        let log = if cfg.log.enabled {
            let path = engine.log_path(id);
            Some(LogWriter::open(&path, &cfg.log).map_err(EngineError::io("open log", &path))?)
        } else {
            None
        };
        let health = health_schedule(engine, id, &cfg);
        Ok(Monitor {
            id,
            sync,
            cfg,
            rt,
            attach_wait,
            dir_lock: Some(dir_lock),
            signals,
            _socket: socket,
            listener,
            clients,
            log,
            health,
            exit_file: dir.join("exit"),
        })
    }

    /// Sets up the container's network and volumes, then starts and supervises it
    /// until its restart policy lets it end; returns its last exit code.
    fn run(&mut self, engine: &mut Engine) -> Result<i32, EngineError> {
        let (id, cfg) = (self.id, &self.cfg);
        tracing::debug!(container = short(id), mode = ?cfg.network.mode, "setting up the network");
        let mut sandbox = match engine.setup_network(id, cfg) {
            Ok(s) => {
                tracing::debug!(container = short(id), "network set up");
                s
            }
            Err(e) => {
                let code = match &e {
                    EngineError::StartFailed { code, .. } => *code,
                    _ => 125,
                };
                return self.start_failed(engine, code, &e.to_string());
            }
        };
        // Volumes made with mount options (`volume create -o`) stay mounted while this
        // monitor lives; its death frees them (see coracle_rootfs::volume::mount).
        let _volume_uses = match engine.acquire_volumes(id) {
            Ok(uses) => uses,
            Err(e) => return self.start_failed(engine, 125, &e.to_string()),
        };
        let mut backoff = restart::Backoff::new();
        loop {
            let _ = std::fs::remove_file(&self.exit_file);
            // Taken now, while there is space: the exit is recorded even if the disk
            // fills up while the container runs.
            let reserved = match rtmon::ExitFileReservation::new(&self.exit_file) {
                Ok(r) => Some(r),
                Err(e) => {
                    coracle_runtime::note!("coracle: {e}");
                    None
                }
            };
            let (init, io) = match engine.start_once(self.id, &self.cfg, self.rt.as_ref()) {
                Ok(s) => s,
                Err(e) => {
                    engine.delete_from_runtime(self.id, &self.cfg);
                    return self.start_failed(engine, e.exit_code(), &e.to_string());
                }
            };
            self.record_running(engine, init)?;
            let ran_from = Instant::now();
            let code = self.supervise(engine, sandbox.dns.as_mut(), init, io);
            let oom = self.record_exit(engine, reserved, code);
            match self.after_exit(engine, code, oom, ran_from.elapsed(), &mut backoff)? {
                AfterExit::StartAgain => continue,
                AfterExit::Done => return Ok(code),
            }
        }
    }

    /// The container did not start: the directory lock goes first (as the start is
    /// over), then it is torn down and the failure reported.
    fn start_failed(
        &mut self,
        engine: &mut Engine,
        code: i32,
        msg: &str,
    ) -> Result<i32, EngineError> {
        drop(self.dir_lock.take());
        engine.start_failed(self.id, &self.cfg, code, msg, &mut self.clients, self.sync)
    }

    /// The container runs: recorded, its health reset, its starter told and let go.
    fn record_running(&mut self, engine: &mut Engine, init: Pid) -> Result<(), EngineError> {
        tracing::debug!(
            container = short(self.id),
            pid = init.as_raw(),
            "container running"
        );
        engine.db.set_container_running(
            self.id,
            std::process::id() as i64,
            init.as_raw() as i64,
            &now_rfc3339(),
        )?;
        engine.reset_health(self.id)?;
        self.sync.say(StartReport::Started { pid: init.as_raw() });
        self.sync.close();
        self.dir_lock = None;
        Ok(())
    }

    /// Serves the running container (its output, clients, probes, signals and DNS)
    /// until it exits; returns its exit code (255 when supervising failed, after
    /// killing it).
    fn supervise(
        &mut self,
        engine: &mut Engine,
        dns_server: Option<&mut DnsServer>,
        init: Pid,
        io: ContainerIo,
    ) -> i32 {
        let mut dns = dns_server.map(|server| DnsService {
            server,
            names: DbNames {
                db: &engine.db,
                container_id: self.id,
                links: &self.cfg.network.link_aliases,
            },
        });
        let mut sup = Supervisor {
            init,
            io,
            log: self.log.take(),
            listener: &self.listener,
            clients: std::mem::take(&mut self.clients),
            stdin_once: self.attach_wait && self.cfg.interactive,
            health: self.health.as_ref().map(|h| HealthSchedule {
                command: h.command.clone(),
                ..*h
            }),
            signals: &self.signals,
            service: dns.as_mut().map(|d| d as &mut dyn Service),
        };
        engine.db.release_memory();
        rtmon::shed_memory();
        let result = sup.run();
        self.log = sup.log.take();
        self.clients = std::mem::take(&mut sup.clients);
        drop(sup);
        match result {
            Ok(code) => code,
            Err(e) => {
                coracle_runtime::note!("coracle: monitor {}: {e}", short(self.id));
                let _ = self.rt.kill(self.id, libc::SIGKILL);
                255
            }
        }
    }

    /// Records the exit (file and health) and deletes the container from its runtime;
    /// returns whether the OOM killer ended it.
    fn record_exit(
        &mut self,
        engine: &mut Engine,
        reserved: Option<rtmon::ExitFileReservation>,
        code: i32,
    ) -> bool {
        let recorded = match reserved {
            Some(r) => r.commit(code),
            None => rtmon::write_exit_file(&self.exit_file, code),
        };
        if let Err(e) = recorded {
            coracle_runtime::note!("coracle: {e}");
        }
        // docker: once checks stop, the container reads unhealthy (the supervisor
        // has killed and reaped any probe still running).
        if let Err(e) = engine.stop_health(self.id) {
            coracle_runtime::note!("coracle: {e}");
        }
        let oom = oom_killed(&self.cfg.cgroups_path());
        tracing::debug!(container = short(self.id), code, oom, "container exited");
        // Waits for the cgroups to empty; what still fails is retried later.
        engine.delete_from_runtime(self.id, &self.cfg);
        oom
    }

    /// After an exit, the restart policy decides: start again (after its backoff,
    /// unless stopped meanwhile) or tear down. A record removed meanwhile (`rm -f`)
    /// has been torn down by its remover.
    fn after_exit(
        &mut self,
        engine: &mut Engine,
        code: i32,
        oom: bool,
        ran_for: Duration,
        backoff: &mut restart::Backoff,
    ) -> Result<AfterExit, EngineError> {
        let Some(rec) = engine.db.container(self.id)? else {
            return Ok(AfterExit::Done);
        };
        let exit = restart::Exit {
            code,
            restarts: u32::try_from(rec.restart_count).unwrap_or(u32::MAX),
            stopped_by_user: rec.stopped_by_user,
            ran_for,
        };
        // Read again: `update --restart` may have changed it while it ran.
        let policy = engine
            .container_config(self.id)
            .map_or(self.cfg.restart, |c| c.restart);
        let Some(delay) = restart::next_start(&policy, &exit, backoff) else {
            self.teardown(engine, code, oom)?;
            return Ok(AfterExit::Done);
        };
        engine
            .db
            .set_container_restarting(self.id, code as i64, &now_rfc3339(), oom)?;
        for c in self.clients.drain(..) {
            c.finish(code, Duration::from_secs(1));
        }
        // A stop during the backoff (the monitor is signalled) ends it here.
        if wait_or_signal(&self.signals, delay)
            || engine
                .db
                .container(self.id)?
                .is_none_or(|r| r.stopped_by_user)
        {
            self.teardown(engine, code, oom)?;
            return Ok(AfterExit::Done);
        }
        Ok(AfterExit::StartAgain)
    }

    /// The container is done for good: see [`Engine::finish`].
    fn teardown(&mut self, engine: &mut Engine, code: i32, oom: bool) -> Result<(), EngineError> {
        engine.finish(
            self.id,
            &self.cfg,
            self.log.as_mut(),
            code,
            oom,
            &mut self.clients,
        )
    }
}

/// Blocks the signals the supervisor takes and returns a signalfd reading them.
fn block_supervisor_signals() -> Result<SignalFd, EngineError> {
    let mut mask = SigSet::empty();
    for s in SUPERVISOR_SIGNALS {
        mask.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .map_err(|e| EngineError::io("block signals", "monitor")(e.into()))?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| EngineError::io("signalfd", "monitor")(e.into()))
}

/// Binds the container's attach socket (removed again when the guard drops).
fn bind_attach_socket(sock_path: &Path) -> Result<(UnixListener, RemoveOnDrop), EngineError> {
    let sock_dir = sock_path.parent().expect("socket path has a parent");
    crate::perms::private_dir(sock_dir).map_err(EngineError::io("create", sock_dir))?;
    let _ = std::fs::remove_file(sock_path);
    let listener = UnixListener::bind(sock_path).map_err(EngineError::io("bind", sock_path))?;
    // Only the store's owner attaches (the directory is private too).
    crate::perms::fix_mode(sock_path, crate::perms::FILE_MODE)
        .map_err(EngineError::io("chmod", sock_path))?;
    Ok((listener, RemoveOnDrop(sock_path.to_path_buf())))
}

/// The container's health checks as the supervisor runs them: each probe is
/// `coracle` itself, as the healthcheck helper.
fn health_schedule(
    engine: &Engine,
    id: &str,
    cfg: &ContainerRuntimeConfig,
) -> Option<HealthSchedule> {
    cfg.health
        .as_ref()
        .filter(|h| h.enabled())
        .map(|h| HealthSchedule {
            command: std::iter::once("/proc/self/exe".into())
                .chain(
                    Helper::Healthcheck {
                        container: id.into(),
                    }
                    .command_line(&engine.paths.root),
                )
                .collect(),
            interval: h.interval(),
            start_interval: h.start_interval(),
            start_period: h.start_period(),
            kill_after: h.timeout() + Duration::from_secs(5),
        })
}

/// A client at debug level passed its stderr (see `spawn_monitor`): the log goes there
/// too until the start is reported. The variable goes, so that health probes this
/// monitor spawns do not take an unrelated fd for it.
fn mirror_log_to_client() {
    let env = coracle_runtime::log_sink::MIRROR_FD_ENV;
    if let Some(fd) = std::env::var(env).ok().and_then(|v| v.parse().ok()) {
        coracle_runtime::log_sink::set_mirror(fd);
    }
    // The monitor is single-threaded: nothing reads the environment concurrently.
    std::env::remove_var(env);
}

/// Sends the monitor's stderr (started as /dev/null) to its log file; messages
/// before this point go to the report pipe.
fn redirect_stderr(path: &Path) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(crate::perms::FILE_MODE)
        .open(path)
    {
        // SAFETY: dup2 onto fd 2, which this process owns.
        unsafe {
            libc::dup2(f.as_raw_fd(), 2);
        }
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn accept_one(listener: &UnixListener, timeout: Duration) -> Option<Client> {
    let revents = coracle_runtime::monitor::tty::poll_one(listener, PollFlags::IN, Some(timeout));
    if revents.is_empty() {
        return None;
    }
    let (stream, _) = listener.accept().ok()?;
    Client::new(stream).ok()
}

/// Sleeps `d`, or less if the monitor is asked to stop (SIGTERM/SIGINT/SIGHUP/
/// SIGQUIT); returns whether it was. SIGCHLD (a late probe) is ignored.
fn wait_or_signal(signals: &SignalFd, d: Duration) -> bool {
    let deadline = Instant::now() + d;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        coracle_runtime::monitor::tty::poll_one(signals, PollFlags::IN, Some(left));
        while let Ok(Some(info)) = signals.read_signal() {
            if info.ssi_signo as i32 != Signal::SIGCHLD as i32 {
                return true;
            }
            while let Ok(s) =
                nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
            {
                if s == nix::sys::wait::WaitStatus::StillAlive {
                    break;
                }
            }
        }
    }
}

/// Whether the kernel's OOM killer killed a process of the container (read before
/// the runtime removes its cgroup): v1's memory.oom_control or v2's memory.events.
fn oom_killed(cgroups_path: &str) -> bool {
    let rel = cgroups_path.trim_start_matches('/');
    let candidates = [
        (
            format!("/sys/fs/cgroup/memory/{rel}/memory.oom_control"),
            "oom_kill ",
        ),
        (
            format!("/sys/fs/cgroup/unified/{rel}/memory.events"),
            "oom_kill ",
        ),
        (format!("/sys/fs/cgroup/{rel}/memory.events"), "oom_kill "),
    ];
    candidates.iter().any(|(path, key)| {
        std::fs::read_to_string(path).is_ok_and(|text| {
            text.lines()
                .filter_map(|l| l.strip_prefix(key))
                .any(|n| n.trim().parse::<u64>().is_ok_and(|n| n > 0))
        })
    })
}
