//! Containers: create and run, the lifecycle, exec and attach, logs, stats, top, copy,
//! listing, inspect and update (the modules below). Here: finding, reconciling and
//! removing containers. Every read reconciles the record with reality first: a
//! container whose monitor is gone (killed, or the host rebooted) is torn down here
//! and marked exited with the code its monitor left, if any.

pub(crate) mod attach_session;
pub(crate) mod blkio;
pub(crate) mod container_inspect;
pub(crate) mod container_prune;
pub(crate) mod cp;
pub(crate) mod devices;
pub(crate) mod exec;
pub(crate) mod exec_session;
pub(crate) mod health;
pub(crate) mod lifecycle;
pub(crate) mod logs;
pub(crate) mod lsm;
pub(crate) mod monitor;
pub(crate) mod ps;
pub(crate) mod rename;
pub(crate) mod restart;
pub(crate) mod run;
pub(crate) mod stats;
pub(crate) mod teardown;
pub(crate) mod top;
pub(crate) mod update;
pub(crate) mod users;
pub(crate) mod volumes_from;

use crate::clock::now_rfc3339;
use crate::stored::ContainerRuntimeConfig;
use crate::{Containers, Engine, EngineError};
use coracle_state::{ContainerRecord, ContainerState};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long `rm -f` waits for a killed container's monitor to finish its teardown.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Whether `pid` is the monitor of container `id`: alive, and (pids are reused,
/// e.g. after a reboot) running as that id's monitor.
pub(crate) fn monitor_alive(pid: i64, id: &str) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    crate::Helper::is_monitor_cmdline(&cmdline, id)
}

/// An exclusive lock on a container's directory, held while it is being created and
/// while it is removed.
pub(crate) fn lock_dir(dir: &Path) -> Result<std::fs::File, EngineError> {
    let f = std::fs::File::open(dir).map_err(EngineError::io("open", dir))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| EngineError::io("lock", dir)(e.into()))?;
    Ok(f)
}

impl Engine {
    /// The container's `container.json`: what its monitor needs to run it.
    pub(crate) fn container_config(&self, id: &str) -> Result<ContainerRuntimeConfig, EngineError> {
        let path = self.containers_dir().join(id).join("container.json");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            // A concurrent `rm` removed the container after the caller found it (rm
            // removes the directory, then the record): say so as docker does, rather
            // than naming a file the user never made.
            // The file is written before the record exists, so a record without it is
            // one whose removal is under way.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(EngineError::NoSuchContainer(id.to_string()));
            }
            Err(e) => return Err(EngineError::io("read", &path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(EngineError::corrupt(path.display()))
    }

    /// The OCI runtime a container was created with.
    pub(crate) fn runtime_for(
        &self,
        cfg: &ContainerRuntimeConfig,
    ) -> Result<Box<dyn coracle_runtime::runtime::Runtime>, EngineError> {
        self.runtime(
            cfg.runtime
                .as_deref()
                .unwrap_or(coracle_runtime::runtime::BUILTIN),
        )
        .map_err(EngineError::from)
    }

    /// Brings a record in line with reality: a monitor that is gone without recording
    /// the end is cleaned up after (its container killed, runtime state, mount and
    /// socket removed) and the container marked exited, or removed if `--rm`.
    pub(crate) fn reconcile(
        &mut self,
        c: &ContainerRecord,
    ) -> Result<ContainerRecord, EngineError> {
        let Some(pid) = c.monitor_pid else {
            return Ok(c.clone());
        };
        if monitor_alive(pid, &c.id) {
            return Ok(c.clone());
        }
        // Re-read: the monitor may have finished between the caller's read and now.
        let Some(c) = self.db.container(&c.id)? else {
            return Ok(c.clone());
        };
        if c.monitor_pid != Some(pid) {
            return Ok(c);
        }
        let dir = self.containers_dir().join(&c.id);
        let cfg = self.container_config(&c.id).ok();
        if let Some(cfg) = &cfg {
            // The monitor deleted it from its runtime when it exited; a dead monitor
            // may not have.
            self.delete_from_runtime(&c.id, cfg);
            let failures = self.release_container(&c.id, cfg);
            teardown::report_teardown_failures(&c.id, failures);
        }
        let _ = std::fs::remove_file(self.run_dir.attach_socket(&c.id));
        if c.is_active() {
            let code = coracle_runtime::monitor::read_exit_file(&dir.join("exit")).unwrap_or(255);
            if let Some(cfg) = cfg.as_ref().filter(|cfg| cfg.rm) {
                self.remove_stopped(&c.id, cfg, true)?;
                return Err(EngineError::NoSuchContainer(c.id.clone()));
            }
            self.db
                .set_container_exited(&c.id, code as i64, &now_rfc3339(), false)?;
        } else {
            self.db.clear_container_monitor(&c.id)?;
        }
        Ok(self.db.container(&c.id)?.unwrap_or(c))
    }

    /// Every container, newest first, reconciled (only records with a monitor are
    /// checked, so this stays one query for stopped containers).
    pub(crate) fn container_records(&mut self) -> Result<Vec<ContainerRecord>, EngineError> {
        // Also those of containers removed since: nothing else would remember them.
        self.retry_teardowns();
        let all = self.db.containers()?;
        let mut out = Vec::with_capacity(all.len());
        for c in &all {
            match self.reconcile(c) {
                Ok(c) => out.push(c),
                Err(EngineError::NoSuchContainer(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    pub(crate) fn find_container(&mut self, key: &str) -> Result<ContainerRecord, EngineError> {
        let found = self.db.find_container(key)?;
        match found.as_slice() {
            [c] => self.reconcile(c).map_err(|e| match e {
                EngineError::NoSuchContainer(_) => EngineError::NoSuchContainer(key.to_string()),
                e => e,
            }),
            [] => Err(EngineError::NoSuchContainer(key.to_string())),
            _ => Err(EngineError::InvalidArgument(format!(
                "multiple containers match {key:?}: give more of the id"
            ))),
        }
    }
}

impl Containers<'_> {
    /// The full id of the container `key` (an id, a unique id prefix or a name) names.
    pub fn container_id(&mut self, key: &str) -> Result<String, EngineError> {
        Ok(self.find_container(key)?.id)
    }

    /// The container's run configuration (what `attach` needs: its tty and stdin).
    pub fn config(&self, id: &str) -> Result<ContainerRuntimeConfig, EngineError> {
        self.container_config(id)
    }

    /// `rm [-f] [-v]`: a running container needs `force`, which kills it and waits for
    /// its monitor to tear it down first. `volumes`: also its anonymous volumes.
    pub fn remove_container(
        &mut self,
        key: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), EngineError> {
        let c = self.find_container(key)?;
        if c.monitor_pid.is_some() {
            if c.state == ContainerState::Paused && !force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"/{}\": container is paused and must be unpaused first",
                    c.name
                )));
            }
            if !force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    c.name
                )));
            }
            self.db.set_container_stopped_by_user(&c.id, true)?;
            self.kill_and_wait(&c)?;
            // `--rm` containers are removed by their monitor.
            if self.db.container(&c.id)?.is_none() {
                return Ok(());
            }
        }
        let dir = self.containers_dir().join(&c.id);
        let _lock = match lock_dir(&dir) {
            Ok(l) => Some(l),
            Err(EngineError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                None
            }
            Err(e) => return Err(e),
        };
        // Under the lock: someone else may have removed or started it meanwhile.
        match self.db.container(&c.id)? {
            None => return Err(EngineError::NoSuchContainer(key.to_string())),
            Some(now) if now.monitor_pid.is_some() => {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    c.name
                )))
            }
            Some(_) => {}
        }
        match self.container_config(&c.id) {
            Ok(cfg) => self.remove_stopped(&c.id, &cfg, volumes),
            // A directory without its config (a crash during create): the record and
            // whatever is there go.
            Err(_) => {
                coracle_rootfs::remove_tree(&dir).map_err(EngineError::io("remove", &dir))?;
                self.db.delete_container(&c.id)?;
                Ok(())
            }
        }
    }
}

impl Engine {
    /// Removes a container that does not run: its mount (if left), directory, record,
    /// and with `volumes` its anonymous volumes.
    pub(crate) fn remove_stopped(
        &mut self,
        id: &str,
        cfg: &ContainerRuntimeConfig,
        volumes: bool,
    ) -> Result<(), EngineError> {
        // Its monitor's runtime teardown failed: once more before the record goes.
        self.redo_teardown(id);
        coracle_rootfs::snapshot::unmount(&cfg.rootfs)?;
        let dir = self.containers_dir().join(id);
        coracle_rootfs::remove_tree(&dir).map_err(EngineError::io("remove", &dir))?;
        self.db.delete_container(id)?;
        if volumes {
            let store = self.volume_store()?;
            for v in &cfg.anonymous_volumes {
                // Another container may use it too (--volumes-from, or a named
                // reference to the hash): keep it then.
                if self.volume_users(v)?.is_empty() {
                    if let Err(e) = store.remove(v) {
                        coracle_runtime::note!("coracle: remove volume {v}: {e}");
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends SIGKILL and waits until the monitor has recorded the end.
    pub(crate) fn kill_and_wait(&mut self, c: &ContainerRecord) -> Result<(), EngineError> {
        let cfg = self.container_config(&c.id)?;
        let rt = self.runtime_for(&cfg)?;
        let deadline = Instant::now() + STOP_WAIT;
        loop {
            // Act on the state as it is now: a container its monitor is still starting
            // is left alone (the runtime's state is being written; another process
            // touching it breaks the create) and killed once it runs.
            match self.db.container(&c.id)? {
                None => return Ok(()),
                Some(now) => match now.state {
                    ContainerState::Running => {
                        let _ = rt.kill(&c.id, libc::SIGKILL);
                    }
                    ContainerState::Paused => {
                        let _ = rt.kill(&c.id, libc::SIGKILL);
                        let _ = rt.resume(&c.id);
                    }
                    // Between runs there is nothing to kill: the monitor stops waiting.
                    ContainerState::Restarting => {
                        if let Some(pid) = now.monitor_pid {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid as i32),
                                nix::sys::signal::Signal::SIGTERM,
                            );
                        }
                    }
                    ContainerState::Created | ContainerState::Exited => {}
                },
            }
            match self.wait_stopped(&c.id, Duration::from_millis(500))? {
                Stopped::Record(_) | Stopped::Removed => return Ok(()),
                Stopped::TimedOut if Instant::now() >= deadline => {
                    return Err(EngineError::Conflict(format!(
                        "container {} did not stop within {}s",
                        c.name,
                        STOP_WAIT.as_secs()
                    )))
                }
                Stopped::TimedOut => {}
            }
        }
    }

    /// Waits while container `id` is being started (its monitor claimed it but has not
    /// recorded it running), so that nothing signals it through the runtime mid-create.
    pub(crate) fn settled(&mut self, id: &str) -> Result<ContainerRecord, EngineError> {
        let deadline = Instant::now() + STOP_WAIT;
        loop {
            let c = self.find_container(id)?;
            let starting = c.monitor_pid.is_some() && !c.is_active();
            if !starting || Instant::now() >= deadline {
                return Ok(c);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (up to `timeout`) until container `id` has no monitor: it stopped and
    /// its end is recorded, or it is gone.
    pub(crate) fn wait_stopped(
        &mut self,
        id: &str,
        timeout: Duration,
    ) -> Result<Stopped, EngineError> {
        // None: no deadline (a timeout too large to add).
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let rec = match self.db.container(id)? {
                None => return Ok(Stopped::Removed),
                Some(r) => r,
            };
            let rec = match self.reconcile(&rec) {
                Ok(r) => r,
                Err(EngineError::NoSuchContainer(_)) => return Ok(Stopped::Removed),
                Err(e) => return Err(e),
            };
            if rec.monitor_pid.is_none() {
                return Ok(Stopped::Record(Box::new(rec)));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(Stopped::TimedOut);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub(crate) enum Stopped {
    Record(Box<ContainerRecord>),
    Removed,
    TimedOut,
}
