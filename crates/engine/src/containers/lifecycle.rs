//! Starting, stopping, signalling, restarting, waiting for and attaching to
//! containers. `start` spawns the container's monitor (a detached re-execution of
//! this binary) and waits for its report; everything else acts through the runtime
//! and the record, and waits for the monitor to record the end.

use crate::containers::Stopped;
use crate::helper::{Helper, StartReport};
use crate::names::short;
use crate::{Containers, Engine, EngineError};
use coracle_state::{ContainerRecord, ContainerState};
use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The fd number the monitor finds its report pipe on.
const SYNC_FD: i32 = 3;
/// The client's stderr in a monitor spawned at debug level.
const LOG_FD: i32 = 4;
/// How long `stop` waits after SIGKILL for the monitor to record the end.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// What `system boot` did: names started, and the failures by name.
pub struct BootReport {
    pub started: Vec<String>,
    pub failed: Vec<(String, EngineError)>,
}

/// What `start` did.
pub enum Started {
    /// The monitor started the container; with `attach`, connected to it before.
    Started { attach: Option<UnixStream> },
    /// It was running already (docker's start is then a no-op), attached if asked.
    AlreadyRunning { attach: Option<UnixStream> },
}

impl Containers<'_> {
    /// `start`: spawn the monitor; with `attach`, connect to it before it starts the
    /// container (so no output is missed) and return the connection.
    pub fn start_container(&mut self, key: &str, attach: bool) -> Result<Started, EngineError> {
        let c = self.find_container(key)?;
        if c.monitor_pid.is_some() {
            if c.state == ContainerState::Paused {
                return Err(EngineError::Conflict(
                    "cannot start a paused container, try unpause instead".into(),
                ));
            }
            let attach = if attach {
                Some(self.attach_container(key)?)
            } else {
                None
            };
            return Ok(Started::AlreadyRunning { attach });
        }
        self.db.set_container_stopped_by_user(&c.id, false)?;
        let attach = self.spawn_monitor(&c, attach)?;
        Ok(Started::Started { attach })
    }
}

impl Engine {
    fn spawn_monitor(
        &mut self,
        c: &ContainerRecord,
        attach: bool,
    ) -> Result<Option<UnixStream>, EngineError> {
        let dir = self.containers_dir().join(&c.id);
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| EngineError::io("create pipe for", &dir)(e.into()))?;
        // Opened by the monitor itself once it holds the container: creating it here
        // could race a concurrent `rm` emptying the directory.
        let log_path = dir.join(crate::containers::monitor::MONITOR_LOG);
        // The built-in runtime forks the container's init from the monitor: it runs
        // from a sealed copy of this binary (CVE-2019-5736), spawned straight from it.
        let sealed = if self.containers().runs_builtin_runtime(&c.id)? {
            Some(
                coracle_runtime::exeseal::seal_self().map_err(|e| EngineError::StartFailed {
                    code: 125,
                    message: e.to_string(),
                })?,
            )
        } else {
            None
        };
        let program = sealed
            .as_ref()
            .map(|s| s.path())
            .unwrap_or_else(|| "/proc/self/exe".into());
        let mut cmd = Command::new(program);
        cmd.arg0(
            std::env::args_os()
                .next()
                .unwrap_or_else(|| "coracle".into()),
        );
        let helper = Helper::Monitor {
            id: c.id.clone(),
            sync_fd: Some(SYNC_FD),
            attach_wait: attach,
        };
        cmd.args(helper.command_line(&self.paths.root));
        // At debug level the monitor also logs to our stderr while it starts the
        // container (its monitor.log is gone after a failed `run --rm`).
        // Duplicated now: the child's fd 2 is already /dev/null when pre_exec runs.
        let mirror = tracing::enabled!(tracing::Level::DEBUG)
            .then(|| std::io::stderr().as_fd().try_clone_to_owned().ok())
            .flatten();
        let mirror_fd = mirror.as_ref().map(|fd| fd.as_raw_fd());
        if mirror.is_some() {
            cmd.env(coracle_runtime::log_sink::MIRROR_FD_ENV, LOG_FD.to_string());
        } else {
            cmd.env_remove(coracle_runtime::log_sink::MIRROR_FD_ENV);
        }
        let write_fd = write.as_raw_fd();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/");
        // SAFETY: setsid and dup2 are async-signal-safe. The monitor gets its own
        // session (no terminal signals reach it), and the report pipe as fd 3
        // (dup2 clears close-on-exec).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::dup2(write_fd, SYNC_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(fd) = mirror_fd {
                    if libc::dup2(fd, LOG_FD) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(EngineError::io("start the monitor for", &dir))?;
        drop(write);
        drop(mirror);
        drop(sealed);
        // Nobody waits for the monitor but whoever ends up its parent; dropping
        // `Child` neither waits nor kills.
        drop(child);
        tracing::debug!(container = short(&c.id), "monitor spawned");
        self.read_start_report(c, read, attach, &log_path)
    }

    fn read_start_report(
        &mut self,
        c: &ContainerRecord,
        read: OwnedFd,
        attach: bool,
        log_path: &std::path::Path,
    ) -> Result<Option<UnixStream>, EngineError> {
        let mut lines = BufReader::new(std::fs::File::from(read));
        let mut stream = None;
        let mut line = String::new();
        loop {
            line.clear();
            let n = lines
                .read_line(&mut line)
                .map_err(EngineError::io("read the monitor's report for", log_path))?;
            if n == 0 {
                let detail = std::fs::read_to_string(log_path).unwrap_or_default();
                // A monitor that cannot write (its log, the exit file's reserve, the
                // database) on a full store dies with nowhere to say why: say it here.
                if store_nearly_full(&self.paths.root) {
                    return Err(EngineError::NoSpace {
                        what: format!("start container {}", short(&c.id)),
                        store: self.paths.root.clone(),
                        detail: format!(
                            "its monitor exited before starting it{}",
                            last_line(&detail)
                        ),
                    });
                }
                return Err(EngineError::StartFailed {
                    code: 125,
                    message: format!(
                        "the monitor of container {} exited before starting it{}",
                        short(&c.id),
                        last_line(&detail)
                    ),
                });
            }
            match StartReport::from_line(&line) {
                Ok(StartReport::Ready) => {
                    if attach {
                        let path = self.run_dir.attach_socket(&c.id);
                        stream = Some(
                            UnixStream::connect(&path)
                                .map_err(EngineError::io("attach to", &path))?,
                        );
                    }
                }
                Ok(StartReport::Started { .. }) => return Ok(stream),
                Ok(StartReport::Failed { code, message }) => {
                    return Err(EngineError::StartFailed { code, message })
                }
                // Only the monitor writes here; a line it did not mean is skipped.
                Err(e) => tracing::debug!(container = short(&c.id), "start report {line:?}: {e}"),
            }
        }
    }
}

impl Containers<'_> {
    /// `attach`: a connection to a running container's monitor.
    pub fn attach_container(&mut self, key: &str) -> Result<UnixStream, EngineError> {
        let c = self.find_container(key)?;
        match c.state {
            ContainerState::Paused => {
                return Err(EngineError::Conflict(
                    "You cannot attach to a paused container, unpause it first".into(),
                ))
            }
            ContainerState::Running | ContainerState::Restarting => {}
            _ => {
                return Err(EngineError::Conflict(
                    "You cannot attach to a stopped container, start it first".into(),
                ))
            }
        }
        let path = self.run_dir.attach_socket(&c.id);
        UnixStream::connect(&path).map_err(EngineError::io("attach to", &path))
    }

    /// `stop [-t N] [-s SIG]`: the stop signal, then SIGKILL after the timeout
    /// (`None`: the container's own; negative: wait forever). Stopping a stopped
    /// container succeeds, as docker's.
    pub fn stop_container(
        &mut self,
        key: &str,
        timeout: Option<i64>,
        signal: Option<i32>,
    ) -> Result<(), EngineError> {
        let c = self.find_container(key)?;
        if c.monitor_pid.is_none() {
            return Ok(());
        }
        self.db.set_container_stopped_by_user(&c.id, true)?;
        let c = self.settled(&c.id)?;
        if c.monitor_pid.is_none() {
            return Ok(());
        }
        let cfg = self.container_config(&c.id)?;
        if c.state == ContainerState::Restarting {
            return self.kill_and_wait(&c);
        }
        let rt = self.runtime_for(&cfg)?;
        let sig = signal.unwrap_or(cfg.stop_signal);
        let _ = rt.kill(&c.id, sig);
        if c.state == ContainerState::Paused {
            // Frozen processes cannot act on the signal until thawed.
            let _ = rt.resume(&c.id);
        }
        let t = timeout.unwrap_or(cfg.stop_timeout);
        let wait = if t < 0 {
            Duration::MAX
        } else {
            Duration::from_secs(t as u64)
        };
        if let Stopped::TimedOut = self.wait_stopped(&c.id, wait)? {
            let _ = rt.kill(&c.id, libc::SIGKILL);
            if let Stopped::TimedOut = self.wait_stopped(&c.id, KILL_WAIT)? {
                return Err(EngineError::Conflict(format!(
                    "container {} did not stop after SIGKILL",
                    c.name
                )));
            }
        }
        Ok(())
    }

    /// `kill [-s SIG]`. SIGKILL and the container's stop signal count as a stop by
    /// the user (its restart policy will not bring it back); other signals do not.
    pub fn kill_container(&mut self, key: &str, signal: i32) -> Result<(), EngineError> {
        let c = self.find_container(key)?;
        if !c.state.can_kill() {
            return Err(EngineError::Conflict(format!(
                "cannot kill container: {key}: container {} is not running",
                c.id
            )));
        }
        let cfg = self.container_config(&c.id)?;
        if signal == libc::SIGKILL || signal == cfg.stop_signal {
            self.db.set_container_stopped_by_user(&c.id, true)?;
        }
        let rt = self.runtime_for(&cfg)?;
        rt.kill(&c.id, signal).map_err(|e| match e {
            // It ended (and its monitor deleted it) since the record was read.
            coracle_runtime::runtime::RuntimeError::NotFound { .. } => {
                EngineError::Conflict(format!(
                    "cannot kill container: {key}: container {} is not running",
                    c.id
                ))
            }
            source => EngineError::RuntimeOp {
                context: format!("cannot kill container: {key}"),
                source,
            },
        })
    }

    /// `restart [-t N]`: stop (if running), then start.
    pub fn restart_container(
        &mut self,
        key: &str,
        timeout: Option<i64>,
    ) -> Result<(), EngineError> {
        self.stop_container(key, timeout, None)?;
        self.start_container(key, false)?;
        Ok(())
    }

    /// `wait`: blocks until the container is not running; returns its exit code.
    pub fn wait_container(&mut self, key: &str) -> Result<i64, EngineError> {
        let c = self.find_container(key)?;
        if c.monitor_pid.is_none() {
            return Ok(c.exit_code.unwrap_or(0));
        }
        loop {
            match self.wait_stopped(&c.id, Duration::from_secs(3600))? {
                Stopped::Record(r) => return Ok(r.exit_code.unwrap_or(0)),
                // `--rm`: gone with its code; the exit file went with it.
                Stopped::Removed => return Ok(0),
                Stopped::TimedOut => {}
            }
        }
    }

    /// `system boot`: after a host reboot, start the containers whose restart policy
    /// says so (`always`, and `unless-stopped` unless stopped by the user), as dockerd
    /// does when it starts. Returns the names started, and failures by name.
    pub fn boot(&mut self) -> Result<BootReport, EngineError> {
        let (mut started, mut failed) = (Vec::new(), Vec::new());
        for c in self.container_records()? {
            if c.monitor_pid.is_some() {
                continue;
            }
            let Ok(cfg) = self.container_config(&c.id) else {
                continue;
            };
            if !cfg.restart.restart_at_boot(c.stopped_by_user) {
                continue;
            }
            match self.start_container(&c.id, false) {
                Ok(_) => started.push(c.name.clone()),
                Err(e) => failed.push((c.name.clone(), e)),
            }
        }
        Ok(BootReport { started, failed })
    }
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default()
}

impl Containers<'_> {
    /// Passes a signal to a running container as it is (sig-proxy): no stop
    /// bookkeeping.
    pub fn signal_container(&mut self, key: &str, signal: i32) -> Result<(), EngineError> {
        let c = self.find_container(key)?;
        let cfg = self.container_config(&c.id)?;
        let rt = self.runtime_for(&cfg)?;
        rt.kill(&c.id, signal)
            .map_err(|source| EngineError::RuntimeOp {
                context: format!("cannot kill container: {key}"),
                source,
            })
    }
}

/// Whether the file system holding `root` has less room than a monitor needs to start
/// (the state database's low-water mark).
fn store_nearly_full(root: &std::path::Path) -> bool {
    rustix::fs::statvfs(root)
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize) < 2 << 20)
        .unwrap_or(false)
}
