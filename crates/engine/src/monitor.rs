//! The monitor's side of a foreground `run` (the `__monitor` hidden subcommand):
//! run the prepared container with its runtime, then tear down what `run` set up
//! and record how it ended (or remove it, with `--rm`).

use crate::run::ContainerRuntimeConfig;
use crate::{Engine, EngineError};
use coracle_runtime::monitor::{run_foreground, MonitorConfig};
use std::path::PathBuf;

/// Runtime state (youki's and external runtimes' container dirs) lives on tmpfs, as
/// docker's and podman's do: it must not survive a reboot.
pub const RUNTIME_STATE_ROOT: &str = "/run/coracle/runtime";

impl Engine {
    /// Returns the exit code for the process: the container's, or docker's 125/126/127
    /// when it could not be started.
    pub fn monitor_foreground(&mut self, id: &str) -> Result<i32, EngineError> {
        let dir = self.containers_dir().join(id);
        let cfg_path = dir.join("container.json");
        let bytes = std::fs::read(&cfg_path).map_err(EngineError::io("read", &cfg_path))?;
        let cfg: ContainerRuntimeConfig = serde_json::from_slice(&bytes)
            .map_err(|e| EngineError::InvalidArgument(format!("{}: {e}", cfg_path.display())))?;
        let monitor = MonitorConfig {
            bundle: dir.clone(),
            id: id.to_string(),
            runtime: cfg
                .runtime
                .clone()
                .unwrap_or_else(|| coracle_runtime::runtime::BUILTIN.to_string()),
            state_root: PathBuf::from(RUNTIME_STATE_ROOT),
            terminal: cfg.tty,
            interactive: cfg.interactive,
            exit_file: dir.join("exit"),
        };
        let now = || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        self.db
            .set_container_running(id, std::process::id() as i64, 0, &now())?;
        let code = match run_foreground(&monitor) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("coracle: {e}");
                e.exit_code()
            }
        };
        // Teardown collects every error and keeps going: a failed unmount must not
        // keep the record from saying the container exited.
        let mut failures = Vec::new();
        if let Err(e) = coracle_rootfs::snapshot::unmount(&cfg.rootfs) {
            failures.push(e.to_string());
        }
        if cfg.rm {
            if let Err(e) = coracle_rootfs::remove_tree(&dir) {
                failures.push(format!("remove {}: {e}", dir.display()));
            }
            self.db.delete_container(id)?;
        } else {
            self.db.set_container_exited(id, code as i64, &now(), false)?;
        }
        for f in failures {
            eprintln!(
                "coracle: cleaning up container {}: {f}",
                &id[..12.min(id.len())]
            );
        }
        Ok(code)
    }
}
