//! Runtime teardowns that failed are not forgotten. The runtimes' delete waits for a
//! killed container's cgroups to empty and retries (see coracle_runtime::teardown),
//! but a process that will not die in time (stuck in the kernel) or a runtime binary
//! that fails still leave cgroups or runtime state behind. The container is then
//! remembered in `STORE/teardown/ID` (holding its runtime's name) and later commands
//! retry: `rm` of that container, `ps` and every listing of all containers. A marker
//! outlives the container's record, since `rm` must not wait for the kernel.

use crate::containers::monitor_alive;
use crate::names::short;
use crate::stored::{ContainerRuntimeConfig, NetMode};
use crate::{Engine, TeardownError};
use std::io::Write;
use std::path::PathBuf;

/// Directory of the store holding one marker per pending teardown.
const PENDING: &str = "teardown";

/// The runtime name a container's config selects (as `runtime::select` takes it).
fn runtime_name(cfg: &ContainerRuntimeConfig) -> &str {
    cfg.runtime
        .as_deref()
        .unwrap_or(coracle_runtime::runtime::BUILTIN)
}

/// A message on stderr that never panics (the monitor's stderr is a file on a disk
/// that may be full).
fn warn(msg: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Reports the failed steps of a teardown: the container has ended regardless, and
/// what failed is left for the user to see.
pub(crate) fn report_teardown_failures(id: &str, failures: Vec<TeardownError>) {
    for f in failures {
        coracle_runtime::note!("coracle: cleaning up container {}: {f}", short(id));
    }
}

impl Engine {
    fn pending_dir(&self) -> PathBuf {
        self.paths.root.join(PENDING)
    }

    /// Deletes container `id` from its runtime (its state and cgroups). On failure the
    /// teardown is remembered for a later command, and the error reported on stderr.
    /// Returns whether it is done.
    pub(crate) fn delete_from_runtime(&self, id: &str, cfg: &ContainerRuntimeConfig) -> bool {
        let name = runtime_name(cfg);
        let result = self.runtime(name).and_then(|rt| rt.delete(id, true));
        let marker = self.pending_dir().join(id);
        match result {
            Ok(()) => {
                let _ = std::fs::remove_file(&marker);
                true
            }
            Err(e) => {
                warn(format_args!("coracle: delete container {}: {e}", short(id)));
                let dir = self.pending_dir();
                let saved = crate::perms::private_dir(&dir)
                    .and_then(|_| crate::perms::write_private(&marker, name.as_bytes()));
                match saved {
                    Ok(()) => warn(format_args!(
                        "coracle: container {}: its teardown is retried by later commands",
                        short(id)
                    )),
                    Err(e) => warn(format_args!(
                        "coracle: remember the teardown of {} in {}: {e}",
                        short(id),
                        marker.display()
                    )),
                }
                false
            }
        }
    }

    /// Releases what container `id` held while it ran: its network (bridge endpoints,
    /// or its own loopback namespace), its root filesystem mount and its volumes. The
    /// one teardown of a container that ended: by its monitor, or by `reconcile` when
    /// the monitor died. Goes on past failures and returns them.
    pub(crate) fn release_container(
        &mut self,
        id: &str,
        cfg: &ContainerRuntimeConfig,
    ) -> Vec<TeardownError> {
        let mut failures = Vec::new();
        match cfg.network.mode {
            NetMode::Bridge => failures.extend(self.release_container_network(id)),
            NetMode::Loopback => {
                if let Err(e) = coracle_net::netns::remove(&self.run_dir.netns(id)) {
                    failures.push(TeardownError::from(e));
                }
            }
            _ => {}
        }
        if let Err(e) = coracle_rootfs::snapshot::unmount(&cfg.rootfs) {
            failures.push(e.into());
        }
        self.release_volumes(id);
        failures
    }

    /// Retries the remembered teardown of container `id`, if there is one and the
    /// container is not running again (its monitor then owns the runtime state).
    fn retry_teardown(&mut self, id: &str) {
        // Held by a monitor while it starts the container: leave it to that monitor
        // (it deletes any runtime leftovers before it creates the container).
        let dir = self.containers_dir().join(id);
        let _lock = match std::fs::File::open(&dir) {
            Ok(f) => {
                match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                    Ok(()) => Some(f),
                    Err(_) => return,
                }
            }
            Err(_) => None,
        };
        if let Ok(Some(rec)) = self.db.container(id) {
            if rec.monitor_pid.is_some_and(|p| monitor_alive(p, id)) {
                return;
            }
        }
        self.redo_teardown(id);
    }

    /// Retries the remembered teardown of container `id`, if any, now: the caller
    /// knows nothing runs it (it holds its directory's lock, or is its monitor).
    pub(crate) fn redo_teardown(&self, id: &str) {
        let marker = self.pending_dir().join(id);
        let Ok(name) = std::fs::read_to_string(&marker) else {
            return;
        };
        let done = self
            .runtime(name.trim())
            .is_ok_and(|rt| rt.delete(id, true).is_ok());
        if done {
            let _ = std::fs::remove_file(&marker);
        }
    }

    /// Retries every remembered teardown (one directory read when there is none).
    pub(crate) fn retry_teardowns(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.pending_dir()) else {
            return;
        };
        let ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect();
        for id in ids {
            self.retry_teardown(&id);
        }
    }
}

#[cfg(test)]
mod tests;
