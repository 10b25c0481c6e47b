//! `exec`, `pause` and `unpause` of a running container.
//!
//! `prepare_exec` only builds the process (the container's process from its
//! config.json with the request applied, `-u` resolved in the container's own
//! /etc/passwd and /etc/group as the container sees them); running it is the caller's
//! job, from a single-threaded process (an [`ExecSession`](crate::ExecSession), or the
//! health check's probe).

use crate::containers::users::resolve_user;
use crate::{Containers, Engine, EngineError};
use coracle_model::{IdRef, UserSpec};
use coracle_runtime::runtime::{Runtime, RuntimeError, Status};
use coracle_runtime::spec::{exec_process, ExecInput, ExecUser};
use coracle_state::{ContainerRecord, ContainerState};
use oci_spec::runtime::{Process, Spec};
use std::io::Read;
use std::path::PathBuf;

/// What `exec` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    /// The command and its arguments.
    pub cmd: Vec<String>,
    /// `-e`/`--env-file`, as `K=V` (values already looked up), in command-line order.
    pub env: Vec<String>,
    /// `-u`; None: the container's user.
    pub user: Option<UserSpec>,
    /// `-w` (absolute); None: the container's working directory.
    pub workdir: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub privileged: bool,
    pub detach: bool,
}

/// A process ready to run in a running container.
pub(crate) struct PreparedExec {
    /// The container's full id.
    pub container_id: String,
    /// The runtime the container runs under.
    pub runtime: Box<dyn Runtime>,
    pub process: Process,
}

impl PreparedExec {
    /// Where the console socket of `exec -t` is made (root-only, on tmpfs).
    pub fn console_dir() -> PathBuf {
        crate::RunDir::default().runtime_state()
    }
}

/// Files larger than this are not a passwd or group file we will parse.
const MAX_ETC_FILE: u64 = 16 << 20;

/// Reads `path` inside the root of process `pid` as the process sees it (its mounts
/// included), resolving every component inside that root and refusing anything but a
/// regular file: a container controls its files and must not make us read the host's,
/// or block on a FIFO. None when absent or unreadable.
fn read_in_container(pid: u32, path: &str) -> Option<String> {
    read_in_root(std::path::Path::new(&format!("/proc/{pid}/root")), path)
}

/// [`read_in_container`] for any directory taken as the root.
fn read_in_root(root: &std::path::Path, path: &str) -> Option<String> {
    use rustix::fs::{fstat, open, openat2, FileType, Mode, OFlags, ResolveFlags};
    let root = open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let fd = openat2(
        &root,
        path.trim_start_matches('/'),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .ok()?;
    if FileType::from_raw_mode(fstat(&fd).ok()?.st_mode) != FileType::RegularFile {
        return None;
    }
    let mut text = String::new();
    std::fs::File::from(fd)
        .take(MAX_ETC_FILE)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Whether `path` is a directory inside the root of process `pid`; the errno if not.
fn dir_in_container(pid: u32, path: &str) -> Result<(), rustix::io::Errno> {
    use rustix::fs::{open, openat2, Mode, OFlags, ResolveFlags};
    let root = open(
        format!("/proc/{pid}/root"),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    openat2(
        &root,
        rel,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
    .map(drop)
}

/// Every capability this process holds (its bounding set), by name: what a privileged
/// exec gets (docker gives all; one we lack cannot be granted).
fn held_capabilities() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(40);
    coracle_model::defaults::ALL_CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(bit, _)| *bit <= last && bounding & (1u64 << bit) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

fn not_running(c: &ContainerRecord) -> EngineError {
    EngineError::Conflict(format!("container {} is not running", c.id))
}

impl Engine {
    /// The process `req` runs in the running container `key` (name, id or id prefix),
    /// and the runtime to run it with. docker's refusals: a paused, restarting or
    /// stopped container.
    pub(crate) fn prepare_exec(
        &mut self,
        key: &str,
        req: &ExecRequest,
    ) -> Result<PreparedExec, EngineError> {
        let c = self.find_container(key)?;
        let paused = || {
            EngineError::Conflict(format!(
                "Container {key} is paused, unpause the container before exec"
            ))
        };
        if !c.state.can_exec() {
            return Err(match c.state {
                ContainerState::Paused => paused(),
                ContainerState::Restarting => restarting(&c),
                _ => not_running(&c),
            });
        }
        let cfg = self.container_config(&c.id)?;
        let runtime = self.runtime_for(&cfg)?;
        // The runtime knows the init's pid (and whether it still runs) first-hand.
        let pid = match runtime.state(&c.id) {
            Ok(s) if s.status == Status::Running => s.pid.ok_or_else(|| not_running(&c))?,
            Ok(s) if s.status == Status::Paused => return Err(paused()),
            Ok(_) | Err(RuntimeError::NotFound { .. }) => return Err(not_running(&c)),
            Err(e) => return Err(e.into()),
        };
        let config_path = self.containers_dir().join(&c.id).join("config.json");
        let spec = Spec::load(&config_path).map_err(EngineError::corrupt(config_path.display()))?;
        let container = spec
            .process()
            .clone()
            .ok_or_else(|| EngineError::corrupt(config_path.display())("no process"))?;

        // Checked here so that every runtime fails the same way, with docker's words
        // (youki's own error loses the errno).
        if let Some(cwd) = req.workdir.as_deref().filter(|w| w.starts_with('/')) {
            if let Err(errno) = dir_in_container(pid, cwd) {
                let why = match errno {
                    rustix::io::Errno::NOENT => "no such file or directory".to_string(),
                    rustix::io::Errno::NOTDIR => "not a directory".to_string(),
                    e => e.to_string(),
                };
                return Err(EngineError::InvalidArgument(format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd ({cwd:?}) set in config.json failed: {why}: unknown"
                )));
            }
        }
        let passwd = read_in_container(pid, "/etc/passwd");
        let group = read_in_container(pid, "/etc/group");
        let group_add = cfg
            .group_add
            .iter()
            .map(|g| coracle_model::parse_group_add(g))
            .collect::<Result<Vec<_>, _>>()?;
        let user = req
            .user
            .as_ref()
            .map(|u| resolve_user(Some(u), &group_add, passwd.as_deref(), group.as_deref()))
            .transpose()?
            .map(|r| ExecUser {
                user: r.user,
                home: r.home,
            });
        // The HOME `run` gave the container's own user when nobody set one.
        let own = UserSpec {
            user: IdRef::Id(container.user().uid()),
            group: Some(IdRef::Id(container.user().gid())),
        };
        let container_home = resolve_user(Some(&own), &[], passwd.as_deref(), group.as_deref())
            .ok()
            .and_then(|r| r.home)
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "/".to_string());

        let process = exec_process(
            &container,
            &ExecInput {
                args: req.cmd.clone(),
                env: req.env.clone(),
                cwd: req.workdir.clone(),
                user,
                container_home,
                tty: req.tty && !req.detach,
                privileged: req.privileged,
                privileged_capabilities: if req.privileged {
                    held_capabilities()
                } else {
                    Vec::new()
                },
            },
        )?;
        Ok(PreparedExec {
            container_id: c.id,
            runtime,
            process,
        })
    }
}

impl Containers<'_> {
    /// Whether container `key` runs under the built-in runtime: the processes that
    /// enter it then fork from coracle itself and must run from a sealed copy of it.
    pub fn runs_builtin_runtime(&mut self, key: &str) -> Result<bool, EngineError> {
        let c = self.find_container(key)?;
        let runtime = self.runtime_for(&self.container_config(&c.id)?)?;
        Ok(runtime.name() == coracle_runtime::runtime::BUILTIN)
    }

    /// `pause`: freezes every process of a running container.
    pub fn pause_container(&mut self, key: &str) -> Result<(), EngineError> {
        let c = self.find_container(key)?;
        if !c.state.can_pause() {
            return Err(match c.state {
                ContainerState::Paused => {
                    EngineError::Conflict(format!("Container {} is already paused", c.id))
                }
                ContainerState::Restarting => restarting(&c),
                _ => not_running_capital(&c),
            });
        }
        let rt = self.runtime_for(&self.container_config(&c.id)?)?;
        match rt.state(&c.id) {
            Ok(s) if s.status == Status::Running => {}
            _ => return Err(not_running_capital(&c)),
        }
        rt.pause(&c.id).map_err(|source| EngineError::RuntimeOp {
            context: format!("Cannot pause container {}", c.id),
            source,
        })?;
        if !self.db.set_container_paused(&c.id, true)? {
            // The record moved on meanwhile (the container exited): leave it thawed.
            let _ = rt.resume(&c.id);
            return Err(not_running_capital(&c));
        }
        Ok(())
    }

    /// `unpause`: thaws a paused container.
    pub fn unpause_container(&mut self, key: &str) -> Result<(), EngineError> {
        let c = self.find_container(key)?;
        if !c.state.can_unpause() {
            return Err(EngineError::Conflict(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        let rt = self.runtime_for(&self.container_config(&c.id)?)?;
        rt.resume(&c.id).map_err(|source| EngineError::RuntimeOp {
            context: format!("Cannot unpause container {}", c.id),
            source,
        })?;
        self.db.set_container_paused(&c.id, false)?;
        Ok(())
    }
}

fn not_running_capital(c: &ContainerRecord) -> EngineError {
    EngineError::Conflict(format!("Container {} is not running", c.id))
}

fn restarting(c: &ContainerRecord) -> EngineError {
    EngineError::Conflict(format!(
        "Container {} is restarting, wait until the container is running",
        c.id
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_regular_files_inside_the_root() {
        // Our own root stands in for a container's: /proc/self/root.
        let me = std::process::id();
        let passwd = read_in_container(me, "/etc/passwd").unwrap();
        assert!(passwd.contains("root:"), "{passwd}");
        assert!(read_in_container(me, "/nonexistent/file").is_none());
        assert!(read_in_container(me, "/etc").is_none(), "a directory");
        assert!(read_in_container(me, "/dev/null").is_none(), "a device");
    }

    #[test]
    fn symlinks_and_special_files_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("group"), "g:x:5:\n").unwrap();
        // Absolute and `..` targets resolve inside the root, never to the host's.
        std::os::unix::fs::symlink("/../../../../etc/hostname", root.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("../../../group", root.join("etc/group")).unwrap();
        assert!(read_in_root(root, "/etc/passwd").is_none());
        assert_eq!(
            read_in_root(root, "/etc/group").as_deref(),
            Some("g:x:5:\n")
        );
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert!(read_in_root(root, "/fifo").is_none(), "a FIFO is not read");
    }

    #[test]
    fn directories_inside_the_root() {
        let me = std::process::id();
        assert!(dir_in_container(me, "/").is_ok());
        assert!(dir_in_container(me, "/tmp").is_ok());
        assert_eq!(
            dir_in_container(me, "/nonexistent/dir"),
            Err(rustix::io::Errno::NOENT)
        );
        assert_eq!(
            dir_in_container(me, "/etc/passwd"),
            Err(rustix::io::Errno::NOTDIR)
        );
    }

    #[test]
    fn held_capabilities_are_known_names() {
        let caps = held_capabilities();
        assert!(caps
            .iter()
            .all(|c| coracle_model::defaults::ALL_CAPABILITIES.contains(&c.as_str())));
        if rustix::process::geteuid().is_root() {
            assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()), "{caps:?}");
        }
    }
}
