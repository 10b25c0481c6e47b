//! Listing and removing containers. Every read reconciles the record with reality
//! first: a container recorded as running whose monitor is gone (killed, or the host
//! rebooted) is marked exited with the code its monitor left, if any.

use crate::monitor::RUNTIME_STATE_ROOT;
use crate::run::ContainerRuntimeConfig;
use crate::{Engine, EngineError};
use coracle_state::ContainerRecord;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long `rm -f` waits for a killed container's monitor to finish its teardown.
const STOP_WAIT: Duration = Duration::from_secs(10);

fn process_alive(pid: i64) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    rustix::process::Pid::from_raw(pid)
        .is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
}

impl Engine {
    /// The container's `container.json`: what its monitor needs to run it.
    pub fn container_config(&self, id: &str) -> Result<ContainerRuntimeConfig, EngineError> {
        let path = self.containers_dir().join(id).join("container.json");
        let bytes = std::fs::read(&path).map_err(EngineError::io("read", &path))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| EngineError::InvalidArgument(format!("{}: {e}", path.display())))
    }

    /// The OCI runtime a container was created with (its state under
    /// [`RUNTIME_STATE_ROOT`]).
    pub fn runtime_for(
        cfg: &ContainerRuntimeConfig,
    ) -> Result<Box<dyn coracle_runtime::runtime::Runtime>, EngineError> {
        coracle_runtime::runtime::select(
            cfg.runtime
                .as_deref()
                .unwrap_or(coracle_runtime::runtime::BUILTIN),
            Path::new(RUNTIME_STATE_ROOT),
        )
        .map_err(|e| EngineError::InvalidArgument(e.to_string()))
    }

    fn reconcile(&mut self, c: &ContainerRecord) -> Result<ContainerRecord, EngineError> {
        if c.state != "running" || c.monitor_pid.is_some_and(process_alive) {
            return Ok(c.clone());
        }
        let dir = self.containers_dir().join(&c.id);
        let code = coracle_runtime::monitor::read_exit_file(&dir.join("exit")).unwrap_or(255);
        // The monitor died before its teardown: do it here.
        if let Ok(bytes) = std::fs::read(dir.join("container.json")) {
            if let Ok(cfg) = serde_json::from_slice::<ContainerRuntimeConfig>(&bytes) {
                let _ = coracle_rootfs::snapshot::unmount(&cfg.rootfs);
                if let Ok(rt) = coracle_runtime::runtime::select(
                    cfg.runtime
                        .as_deref()
                        .unwrap_or(coracle_runtime::runtime::BUILTIN),
                    Path::new(RUNTIME_STATE_ROOT),
                ) {
                    let _ = rt.delete(&c.id, true);
                }
            }
        }
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        self.db.set_container_exited(&c.id, code as i64, &now, false)?;
        Ok(self.db.container(&c.id)?.unwrap_or_else(|| c.clone()))
    }

    /// Every container, newest first, reconciled.
    pub fn containers(&mut self) -> Result<Vec<ContainerRecord>, EngineError> {
        let all = self.db.containers()?;
        all.iter().map(|c| self.reconcile(c)).collect()
    }

    pub fn find_container(&mut self, key: &str) -> Result<ContainerRecord, EngineError> {
        let found = self.db.find_container(key)?;
        match found.as_slice() {
            [c] => self.reconcile(c),
            [] => Err(EngineError::NoSuchContainer(key.to_string())),
            _ => Err(EngineError::InvalidArgument(format!(
                "multiple containers match {key:?}: give more of the id"
            ))),
        }
    }

    /// `rm [-f]`: a running container needs `force`, which kills it and waits for its
    /// monitor to tear it down first.
    pub fn remove_container(&mut self, key: &str, force: bool) -> Result<(), EngineError> {
        let c = self.find_container(key)?;
        if c.state == "running" {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"/{}\": container is running: stop the container before removing or force remove",
                    c.name
                )));
            }
            self.kill_running(&c)?;
        }
        let dir = self.containers_dir().join(&c.id);
        if let Ok(bytes) = std::fs::read(dir.join("container.json")) {
            if let Ok(cfg) = serde_json::from_slice::<ContainerRuntimeConfig>(&bytes) {
                coracle_rootfs::snapshot::unmount(&cfg.rootfs)?;
            }
        }
        coracle_rootfs::remove_tree(&dir).map_err(EngineError::io("remove", &dir))?;
        self.db.delete_container(&c.id)?;
        Ok(())
    }

    fn kill_running(&mut self, c: &ContainerRecord) -> Result<(), EngineError> {
        let dir = self.containers_dir().join(&c.id);
        let cfg_path = dir.join("container.json");
        let bytes = std::fs::read(&cfg_path).map_err(EngineError::io("read", &cfg_path))?;
        let cfg: ContainerRuntimeConfig = serde_json::from_slice(&bytes)
            .map_err(|e| EngineError::InvalidArgument(format!("{}: {e}", cfg_path.display())))?;
        let rt = coracle_runtime::runtime::select(
            cfg.runtime
                .as_deref()
                .unwrap_or(coracle_runtime::runtime::BUILTIN),
            Path::new(RUNTIME_STATE_ROOT),
        )
        .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        let _ = rt.kill(&c.id, 9);
        let deadline = Instant::now() + STOP_WAIT;
        while Instant::now() < deadline {
            match self.db.container(&c.id)? {
                None => return Ok(()),
                Some(now) if now.state != "running" => return Ok(()),
                Some(now) if !now.monitor_pid.is_some_and(process_alive) => {
                    self.reconcile(&now)?;
                    return Ok(());
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        Err(EngineError::Conflict(format!(
            "container {} did not stop within {}s",
            c.name,
            STOP_WAIT.as_secs()
        )))
    }
}
