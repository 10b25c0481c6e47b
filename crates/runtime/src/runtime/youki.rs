//! The built-in runtime: youki's libcontainer, in-process.
//!
//! How libcontainer's processes relate (0.7.0): `build()` clones an intermediate
//! process, which clones the container init with CLONE_PARENT, so the init is a child
//! of the process that called `create` (the monitor) and that process reaps it with
//! `waitpid`. `build()` returns once the init has set everything up and waits on the
//! notify socket; `start()` releases it. A command that is not found or not executable
//! fails `create` (libcontainer validates the executable inside the container before it
//! reports ready); an exec that still fails later makes the init exit 127/126 (see
//! [`CoracleExecutor`]).
//!
//! `exec` uses libcontainer's tenant builder: the exec'd process joins the container's
//! namespaces and cgroup and is, like the init, a child of the caller. That builder
//! leaves out the container's seccomp filter, which [`TenantExecutor`] adds back.

use std::ffi::CString;
use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use libcontainer::capabilities::drop_privileges;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::signal::Signal;
use libcontainer::syscall::syscall::{create_syscall, SyscallType};
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, LinuxResources, LinuxSeccomp, Process, Spec,
};

use super::{error_chain, Op, ProcessIo, Runtime, RuntimeError, RuntimeState, Status};
use crate::{cgroup_devices, exeseal, teardown};
use coracle_model::defaults;

/// youki's libcontainer with its state under `root` (one directory per container).
#[derive(Debug, Clone)]
pub struct Youki {
    root: PathBuf,
}

impl Youki {
    pub fn new(root: impl Into<PathBuf>) -> Youki {
        Youki { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn load(&self, id: &str, op: Op) -> Result<Container, RuntimeError> {
        let dir = self.root.join(id);
        if !dir.join("state.json").exists() {
            return Err(RuntimeError::NotFound {
                id: id.to_string(),
                runtime: self.name().to_string(),
            });
        }
        Container::load(dir).map_err(|e| self.err(op, id, &e))
    }

    fn err(&self, op: Op, id: &str, e: &dyn std::error::Error) -> RuntimeError {
        RuntimeError::from_message(self.name(), op, id, error_chain(e))
    }

    /// Locks the container's state directory (see [`teardown::lock_dir`]): exclusive
    /// for operations that write `state.json` or remove it. NotFound once deleted.
    fn lock(&self, id: &str, exclusive: bool) -> Result<fs::File, RuntimeError> {
        let dir = self.root.join(id);
        teardown::lock_dir(&dir, exclusive).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                RuntimeError::NotFound {
                    id: id.to_string(),
                    runtime: self.name().to_string(),
                }
            } else {
                RuntimeError::Io {
                    what: "lock runtime state",
                    path: dir,
                    source,
                }
            }
        })
    }

    /// The container's cgroups path as libcontainer recorded it at create, else the
    /// one coracle gives every container.
    fn cgroups_path(&self, id: &str) -> String {
        libcontainer::config::YoukiConfig::load(self.root.join(id))
            .ok()
            .map(|c| c.cgroup_path.to_string_lossy().into_owned())
            .filter(|p| !p.trim_matches('/').is_empty())
            .unwrap_or_else(|| defaults::cgroups_path(id))
    }

    /// libcontainer's delete without its two weak spots: it gives up on a cgroup
    /// after ~100 ms of EBUSY, and with `force` it SIGKILLs the pid in `state.json`,
    /// which after the monitor has reaped the init may be another process. Here every
    /// process found in the container's cgroups is killed until they are empty, then
    /// the state directory goes. Coracle's specs carry no hooks and no Intel RDT, the
    /// other things libcontainer's delete handles. Called with the lock held.
    fn teardown(&self, id: &str, op: Op) -> Result<(), RuntimeError> {
        let fail = |e: teardown::TeardownError| RuntimeError::Failed {
            runtime: self.name().to_string(),
            op,
            id: id.to_string(),
            message: e.to_string(),
        };
        teardown::remove_cgroups(&self.cgroups_path(id), teardown::TIMEOUT).map_err(fail)?;
        teardown::remove_state_dir(&self.root.join(id), teardown::TIMEOUT).map_err(fail)
    }

    /// libcontainer's builder for `id` under our state root, with the process's stdio.
    fn builder<E: Executor + 'static>(
        &self,
        id: &str,
        op: Op,
        io: ProcessIo,
        executor: E,
    ) -> Result<ContainerBuilder, RuntimeError> {
        // libcontainer's forked processes log; keep that out of the container's stdio.
        crate::log_sink::pin_stderr();
        let builder = ContainerBuilder::new(id.to_string(), SyscallType::Linux)
            .with_root_path(&self.root)
            .map_err(|e| self.err(op, id, &e))?
            .with_executor(executor);
        Ok(match io {
            ProcessIo::Inherit {
                stdin,
                stdout,
                stderr,
            } => builder
                .with_stdin(stdin)
                .with_stdout(stdout)
                .with_stderr(stderr),
            ProcessIo::ConsoleSocket(path) => builder.with_console_socket(Some(path)),
        })
    }

    /// What libcontainer leaves out of the spec's cgroup settings: the device rules on
    /// a pure cgroup v2 host (it is built without libcgroups' `cgroupsv2_devices`, see
    /// [`cgroup_devices`]) and two v1 settings (see [`crate::cgroup_v1_extras`]).
    fn apply_cgroup_extras(&self, bundle: &Path) -> Result<(), Box<dyn std::error::Error>> {
        let spec = Spec::load(bundle.join("config.json"))?;
        if cgroup_devices::host_is_unified() {
            return Ok(cgroup_devices::apply(&spec)?);
        }
        Ok(crate::cgroup_v1_extras::apply(&spec)?)
    }

    /// libcontainer forks the container's processes from this one: until they exec the
    /// user's program their /proc/self/exe is ours. Refuse to do it from the host's
    /// binary (see [`crate::exeseal`]) and stay non-dumpable from here on.
    fn seal_check(&self, op: Op, id: &str) -> Result<(), RuntimeError> {
        exeseal::require_sealed()
            .and_then(|()| exeseal::set_non_dumpable())
            .map_err(|e| RuntimeError::Failed {
                runtime: self.name().to_string(),
                op,
                id: id.to_string(),
                message: e.to_string(),
            })
    }

    fn build_tenant(
        &self,
        id: &str,
        process_file: &Path,
        io: ProcessIo,
        executor: TenantExecutor,
    ) -> Result<u32, RuntimeError> {
        let builder = self.builder(id, Op::Exec, io, executor)?;
        // Not as_sibling: the intermediate process is our child and the exec'd process
        // its CLONE_PARENT sibling, so our child too.
        let pid = builder
            .as_tenant()
            .with_process(Some(process_file))
            .with_detach(true)
            .build()
            .map_err(|e| self.err(Op::Exec, id, &e))?;
        Ok(pid.as_raw() as u32)
    }
}

/// Serialises our execs into one container while libcontainer's tenant sockets exist,
/// so that the leftovers can be told apart from a concurrent exec's. A POSIX record
/// lock, not `flock`: the kernel releases it when its process dies, and the processes
/// libcontainer forks from ours do not share it (an `flock` lives on the open file,
/// which they inherit: a helper left waiting by a killed exec held it for good).
struct ExecLock {
    _file: fs::File,
}

impl ExecLock {
    fn acquire(dir: &Path) -> Result<ExecLock, RuntimeError> {
        let path = dir.join("exec.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| RuntimeError::Io {
                what: "open",
                path: path.clone(),
                source,
            })?;
        // SAFETY: a zeroed flock is a valid value; every field we need is set below.
        let mut whole: libc::flock = unsafe { std::mem::zeroed() };
        whole.l_type = libc::F_WRLCK as libc::c_short;
        whole.l_whence = libc::SEEK_SET as libc::c_short;
        loop {
            // SAFETY: F_SETLKW reads the flock struct we own, on an fd we own. It waits
            // with signals deliverable: Ctrl-C or SIGTERM ends a waiting exec.
            if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLKW, &whole) } == 0 {
                return Ok(ExecLock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(RuntimeError::Io {
                    what: "lock",
                    path,
                    source: err,
                });
            }
        }
    }
}

/// A pidfd of this process, for the processes libcontainer forks to tell whether we
/// are still there (see [`die_with_parent`]); None where the kernel has no pidfds.
fn own_pidfd() -> Option<std::os::fd::OwnedFd> {
    use rustix::process::{getpid, pidfd_open, PidfdFlags};
    // A pidfd is close-on-exec without asking.
    pidfd_open(getpid(), PidfdFlags::empty()).ok()
}

/// In the exec'd process, before it waits for libcontainer's start message: SIGKILL
/// when the exec that forked it dies (a killed `coracle exec` left it waiting forever,
/// in the container, holding what it inherited). `parent` (a pidfd of that exec)
/// closes the race with a parent that died before the death signal was set.
fn die_with_parent(parent: Option<i32>) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    if let Some(fd) = parent {
        // SAFETY: the pidfd the exec opened for us stays open in this process.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let mut p = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        if poll(&mut p, Some(&now)) == Ok(1) && p[0].revents().contains(PollFlags::IN) {
            // SAFETY: _exit ends only this forked process, running no atexit handlers
            // or destructors of state it shares with its parent.
            unsafe { libc::_exit(1) };
        }
    }
}

/// Test hook: with `CORACLE_TEST_STOP_AT` naming `point` (comma-separated names) the
/// process stops itself (SIGSTOP) there, so that a test can kill an exec at exactly
/// that point. Points: `exec-locked` (the exec holds the container's exec lock),
/// `exec-tenant` (in the exec'd process, before it waits to be started), `exec-started`
/// (the process runs; libcontainer has not returned yet).
fn stop_at(point: &str) {
    let wanted =
        std::env::var("CORACLE_TEST_STOP_AT").is_ok_and(|v| v.split(',').any(|p| p == point));
    if wanted {
        // SAFETY: raise only signals this process.
        unsafe { libc::raise(libc::SIGSTOP) };
    }
}

/// Before the command runs: it outlives the exec that started it (`exec -d`, a killed
/// client), as docker's does.
fn outlive_parent() {
    let _ = rustix::process::set_parent_process_death_signal(None);
}

/// libcontainer's per-exec notify socket and console-socket symlink (0.7.0 names), and
/// the process files of our execs.
fn remove_tenant_sockets(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("tenant-notify-")
            || name.starts_with("tenant-tty-")
            || (name.starts_with("exec-") && name.ends_with(".json"))
        {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// `caps` plus what [`TenantExecutor`] needs until it has installed the filter.
fn with_setup_caps(caps: &LinuxCapabilities) -> LinuxCapabilities {
    let mut out = caps.clone();
    let add = |set: &Option<Capabilities>| {
        set.as_ref().map(|s| {
            let mut s = s.clone();
            s.insert(Capability::SysAdmin);
            s.insert(Capability::Setpcap);
            s
        })
    };
    out.set_bounding(add(caps.bounding()).or_else(|| add(&Some(Capabilities::new()))));
    out.set_effective(add(caps.effective()));
    out.set_permitted(add(caps.permitted()));
    out
}

impl Runtime for Youki {
    fn name(&self) -> &str {
        super::BUILTIN
    }

    fn create(&self, id: &str, bundle: &Path, io: ProcessIo) -> Result<u32, RuntimeError> {
        fs::create_dir_all(&self.root).map_err(|source| RuntimeError::Io {
            what: "create runtime state directory",
            path: self.root.clone(),
            source,
        })?;
        self.seal_check(Op::Create, id)?;
        tracing::debug!(id, bundle = %bundle.display(), "libcontainer create");
        let builder = self.builder(id, Op::Create, io, CoracleExecutor)?;
        let mut container = builder
            .as_init(bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(|e| self.err(Op::Create, id, &e))?;
        // The init waits for start: no code of the image has run yet.
        if let Err(e) = self.apply_cgroup_extras(bundle) {
            let _ = container.delete(true);
            return Err(self.err(Op::Create, id, &*e));
        }
        container
            .pid()
            .map(|p| p.as_raw() as u32)
            .ok_or_else(|| RuntimeError::Failed {
                runtime: self.name().to_string(),
                op: Op::Create,
                id: id.to_string(),
                message: "libcontainer reported no init pid".to_string(),
            })
    }

    fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let _lock = self.lock(id, true)?;
        let mut c = self.load(id, Op::Start)?;
        tracing::debug!(id, "libcontainer start");
        c.start().map_err(|e| self.err(Op::Start, id, &e))
    }

    fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        // libcontainer's kill rewrites state.json: never while a delete reads it.
        let _lock = self.lock(id, true)?;
        let mut c = self.load(id, Op::Kill)?;
        // The monitor reaps the init before it deletes the container: in between, the
        // pid in state.json may already be another process's. (Without cgroups of its
        // own, e.g. rootless without delegation, there is nothing to check against.)
        if let Some(pid) = c.pid() {
            let path = self.cgroups_path(id);
            let gone = teardown::cgroup_dirs(&path).is_ok_and(|d| !d.is_empty())
                && fs::read_to_string(format!("/proc/{pid}/cgroup"))
                    .is_ok_and(|text| !teardown::in_cgroup(&text, &path));
            if gone {
                return Err(RuntimeError::NotFound {
                    id: id.to_string(),
                    runtime: self.name().to_string(),
                });
            }
        }
        let sig = Signal::try_from(signal).map_err(|e| self.err(Op::Kill, id, &e))?;
        c.kill(sig, false).map_err(|e| self.err(Op::Kill, id, &e))
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        tracing::debug!(id, force, "delete");
        let _lock = match self.lock(id, true) {
            Ok(l) => Some(l),
            // Gone already, or never created: cgroups a failed teardown or create
            // left are still removed.
            Err(RuntimeError::NotFound { .. }) if force => None,
            Err(e) => return Err(e),
        };
        if !force {
            let c = self.load(id, Op::Delete)?;
            if !matches!(
                c.status(),
                ContainerStatus::Stopped | ContainerStatus::Created
            ) {
                return Err(RuntimeError::Failed {
                    runtime: self.name().to_string(),
                    op: Op::Delete,
                    id: id.to_string(),
                    message: format!("cannot delete a {:?} container: stop it first", c.status()),
                });
            }
        }
        self.teardown(id, Op::Delete)
    }

    fn exec(&self, id: &str, process: &Process, io: ProcessIo) -> Result<u32, RuntimeError> {
        let container = {
            let _read = self.lock(id, false)?;
            self.load(id, Op::Exec)?
        };
        self.seal_check(Op::Exec, id)?;
        let dir = self.root.join(id);
        let spec_path = container.bundle().join("config.json");
        let spec = Spec::load(&spec_path).map_err(|e| self.err(Op::Exec, id, &e))?;
        let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
        let parent = own_pidfd();
        let executor = TenantExecutor {
            parent: parent.as_ref().map(|fd| fd.as_raw_fd()),
            capabilities: process.capabilities().clone(),
            seccomp: seccomp.clone(),
            console_size: process
                .console_size()
                .filter(|_| process.terminal() == Some(true))
                .map(|b| (b.height() as u16, b.width() as u16)),
        };
        // libcontainer 0.7.0 rebuilds the exec'd process's `linux` section without the
        // container's seccomp filter; our executor installs it just before execve,
        // which needs CAP_SYS_ADMIN (without no_new_privileges) and then CAP_SETPCAP to
        // drop the bounding set: libcontainer keeps both until then.
        let mut tenant = process.clone();
        if seccomp.is_some() {
            tenant.set_capabilities(process.capabilities().as_ref().map(with_setup_caps));
        }

        let _lock = ExecLock::acquire(&dir)?;
        // Under the lock no other exec of ours is half-way: every tenant socket and
        // process file in the directory is a leftover (libcontainer never removes its
        // sockets; a killed exec leaves both).
        remove_tenant_sockets(&dir);
        let process_file = dir.join(format!("exec-{}.json", std::process::id()));
        let json = serde_json::to_vec(&tenant).expect("processes serialise");
        fs::write(&process_file, json).map_err(|source| RuntimeError::Io {
            what: "write exec process",
            path: process_file.clone(),
            source,
        })?;
        stop_at("exec-locked");
        let result = self.build_tenant(id, &process_file, io, executor);
        stop_at("exec-started");
        let _ = fs::remove_file(&process_file);
        remove_tenant_sockets(&dir);
        result
    }

    fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        let _lock = self.lock(id, true)?;
        let mut c = self.load(id, Op::Pause)?;
        c.pause().map_err(|e| self.err(Op::Pause, id, &e))
    }

    fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        let _lock = self.lock(id, true)?;
        let mut c = self.load(id, Op::Resume)?;
        c.resume().map_err(|e| self.err(Op::Resume, id, &e))
    }

    /// As youki's own `update` command: libcgroups' manager for the container's
    /// cgroups path applies the resources (v1, v2 and hybrid alike).
    fn update(&self, id: &str, resources: &LinuxResources) -> Result<(), RuntimeError> {
        use libcgroups::common::{CgroupConfig, CgroupManager, ControllerOpt};
        let _lock = self.lock(id, true)?;
        let c = self.load(id, Op::Update)?;
        if !matches!(
            c.status(),
            ContainerStatus::Created | ContainerStatus::Running | ContainerStatus::Paused
        ) {
            // Its cgroups are going away with it: there is nothing to change.
            return Err(RuntimeError::NotFound {
                id: id.to_string(),
                runtime: self.name().to_string(),
            });
        }
        let manager = libcgroups::common::create_cgroup_manager(CgroupConfig {
            cgroup_path: PathBuf::from(self.cgroups_path(id)),
            systemd_cgroup: false,
            container_name: id.to_string(),
        })
        .map_err(|e| self.err(Op::Update, id, &e))?;
        manager
            .apply(&ControllerOpt {
                resources,
                disable_oom_killer: resources
                    .memory()
                    .as_ref()
                    .and_then(|m| m.disable_oom_killer())
                    .unwrap_or(false),
                oom_score_adj: None,
                freezer_state: None,
            })
            .map_err(|e| self.err(Op::Update, id, &e))
    }

    fn state(&self, id: &str) -> Result<RuntimeState, RuntimeError> {
        let c = {
            let _read = self.lock(id, false)?;
            self.load(id, Op::State)?
        };
        let status = match c.status() {
            ContainerStatus::Creating => Status::Creating,
            ContainerStatus::Created => Status::Created,
            ContainerStatus::Running => Status::Running,
            ContainerStatus::Stopped => Status::Stopped,
            ContainerStatus::Paused => Status::Paused,
        };
        Ok(RuntimeState {
            id: id.to_string(),
            status,
            pid: match status {
                Status::Stopped => None,
                _ => c.pid().map(|p| p.as_raw() as u32),
            },
            bundle: c.bundle().clone(),
        })
    }
}

/// The exec'd process's last steps, in the container after libcontainer set it up:
/// the terminal's size (libcontainer ignores `process.consoleSize`), the container's
/// seccomp filter, then the capabilities the process was asked with (the filter allows
/// capset and prctl, as libcontainer's own init drops capabilities under it too), then
/// the command. Failures reach `build()` through libcontainer's exec notify pipe.
#[derive(Clone)]
struct TenantExecutor {
    /// A pidfd of the exec running libcontainer (see [`die_with_parent`]).
    parent: Option<i32>,
    seccomp: Option<LinuxSeccomp>,
    capabilities: Option<LinuxCapabilities>,
    /// (rows, cols) for the pty on our stdin.
    console_size: Option<(u16, u16)>,
}

impl Executor for TenantExecutor {
    /// Runs in the exec'd process (libcontainer's init), before it reports ready and
    /// waits to be started.
    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        die_with_parent(self.parent);
        stop_at("exec-tenant");
        DefaultExecutor {}.validate(spec)
    }

    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        outlive_parent();
        if let Some((rows, cols)) = self.console_size {
            let ws = rustix::termios::Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // Our stdin is the pty slave.
            let _ = rustix::termios::tcsetwinsize(rustix::stdio::stdin(), ws);
        }
        if let Some(seccomp) = &self.seccomp {
            match libcontainer::seccomp::initialize_seccomp(seccomp) {
                // A notify action needs a listener the container's init has; without
                // one the kernel answers those calls with ENOSYS.
                Ok(Some(fd)) => {
                    let _ = nix::unistd::close(fd);
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(ExecutorError::Other(format!(
                        "install the container's seccomp filter: {}",
                        error_chain(&e)
                    )))
                }
            }
            if let Some(caps) = &self.capabilities {
                let syscall = create_syscall();
                drop_privileges(caps, syscall.as_ref()).map_err(|e| {
                    ExecutorError::Other(format!("set capabilities: {}", error_chain(&e)))
                })?;
            }
        }
        let (argv, args0) = argv_of(spec)?;
        let err = exec_with_empty_mask(&argv);
        Err(ExecutorError::Other(format!(
            "exec {args0:?}: {}",
            err.desc()
        )))
    }
}

fn argv_of(spec: &Spec) -> Result<(Vec<CString>, String), ExecutorError> {
    let args = spec
        .process()
        .as_ref()
        .and_then(|p| p.args().as_ref())
        .filter(|a| !a.is_empty())
        .ok_or(ExecutorError::InvalidArg)?;
    let argv: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| ExecutorError::InvalidArg))
        .collect::<Result<_, _>>()?;
    Ok((argv, args[0].clone()))
}

/// execvp with an empty signal mask (callers block the signals they forward, and a
/// blocked mask survives execve) and SIGPIPE back to its default action (Rust programs
/// ignore it, and an ignored signal survives execve too), like every other signal the
/// caller's shell may have ignored; returns only on failure.
fn exec_with_empty_mask(argv: &[CString]) -> nix::errno::Errno {
    crate::ignored_signals::reset();
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    match nix::unistd::execvp(&argv[0], argv) {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

/// libcontainer's default validation (command found and executable, else `create`
/// fails), then an exec that starts the payload with an empty signal mask (the monitor
/// blocks the signals it forwards, and a blocked mask survives execve) and turns a late
/// exec failure into docker's exit codes: 127 not found, 126 not executable.
#[derive(Clone)]
struct CoracleExecutor;

impl Executor for CoracleExecutor {
    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }

    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let (argv, args0) = argv_of(spec)?;
        let err = exec_with_empty_mask(&argv);
        let code = if err == nix::errno::Errno::ENOENT {
            127
        } else {
            126
        };
        eprintln!("exec {args0:?}: {}", err.desc());
        // SAFETY: _exit only ends this (forked, pre-exec) process.
        unsafe { libc::_exit(code) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(caps: &[Capability]) -> Capabilities {
        caps.iter().copied().collect()
    }

    #[test]
    fn setup_caps_add_what_installing_the_filter_needs() {
        let mut root = LinuxCapabilities::default();
        root.set_bounding(Some(set(&[Capability::Chown])))
            .set_effective(Some(set(&[Capability::Chown])))
            .set_permitted(Some(set(&[Capability::Chown])))
            .set_inheritable(None)
            .set_ambient(None);
        let s = with_setup_caps(&root);
        let want = set(&[Capability::Chown, Capability::SysAdmin, Capability::Setpcap]);
        assert_eq!(s.bounding().as_ref(), Some(&want));
        assert_eq!(s.effective().as_ref(), Some(&want));
        assert_eq!(s.permitted().as_ref(), Some(&want));
        assert_eq!((s.inheritable(), s.ambient()), (&None, &None));

        // Another user: effective/permitted stay unset (libcontainer leaves them).
        let mut user = root.clone();
        user.set_effective(None)
            .set_permitted(None)
            .set_bounding(None);
        let s = with_setup_caps(&user);
        assert_eq!(
            s.bounding().as_ref(),
            Some(&set(&[Capability::SysAdmin, Capability::Setpcap]))
        );
        assert_eq!((s.effective(), s.permitted()), (&None, &None));
    }

    #[test]
    fn tenant_sockets_are_removed_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("coracle-tenant-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for f in [
            "tenant-notify-1a.sock",
            "tenant-tty-2b.sock",
            "exec-4242.json",
            "state.json",
            "exec.lock",
        ] {
            fs::write(dir.join(f), "").unwrap();
        }
        remove_tenant_sockets(&dir);
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["exec.lock", "state.json"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// `exec` and `state` load `state.json` without our exclusive lock while `kill`
    /// (another process) rewrites it: the patched libcontainer replaces the file by a
    /// rename, so a reader never sees it truncated ("failed to parse container state
    /// file ... EOF", issue 11).
    #[test]
    fn state_json_is_never_seen_half_written() {
        use libcontainer::container::{ContainerStatus, State};
        let dir = tempfile::tempdir().unwrap();
        let state = State::new("race", ContainerStatus::Running, Some(1), "/b".into());
        state.save(dir.path()).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    state.save(dir.path()).unwrap();
                }
            });
            let loaded = (0..20_000).try_for_each(|_| State::load(dir.path()).map(drop));
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            loaded.unwrap();
        });
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "only state.json is left: {left:?}");
    }
}
