//! Any OCI runtime binary (crun, runc, youki's CLI) through the standard runtime CLI:
//! `create --bundle B --pid-file P [--console-socket S] ID`, `start`, `kill`, `delete`,
//! `state`, `exec --process F --detach`, `pause`, `resume`, `update --resources F`. The binary forks the container init and exits, so the init is orphaned:
//! the caller must be a child subreaper (the monitor is) to `waitpid` for it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use oci_spec::runtime::{LinuxResources, Process};

use super::{Op, ProcessIo, Runtime, RuntimeError, RuntimeState, Status};

/// An OCI runtime binary; `root` (its `--root`) keeps coracle's containers apart from
/// the runtime's default state directory.
#[derive(Debug, Clone)]
pub struct OciCli {
    binary: PathBuf,
    root: Option<PathBuf>,
    name: String,
}

impl OciCli {
    /// Runs a `create`/`exec` command line with the container's stdio: inherited
    /// (the runtime's own stdio is what the process gets, so its error messages reach
    /// the process's stderr as well as the log), or a console socket.
    fn run_with_io(
        &self,
        mut cmd: Command,
        io: ProcessIo,
        id: &str,
    ) -> Result<std::process::ExitStatus, RuntimeError> {
        match io {
            ProcessIo::Inherit {
                stdin,
                stdout,
                stderr,
            } => {
                cmd.stdin(Stdio::from(stdin))
                    .stdout(Stdio::from(stdout))
                    .stderr(Stdio::from(stderr));
            }
            ProcessIo::ConsoleSocket(path) => {
                cmd.arg("--console-socket").arg(path);
                cmd.stdin(Stdio::null()).stdout(Stdio::null());
            }
        }
        cmd.arg(id);
        cmd.status().map_err(|source| RuntimeError::Io {
            what: "run OCI runtime",
            path: self.binary.clone(),
            source,
        })
    }

    pub fn new(binary: impl Into<PathBuf>, root: Option<PathBuf>) -> OciCli {
        let binary = binary.into();
        let name = binary
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| binary.display().to_string());
        OciCli { binary, root, name }
    }

    /// The container's cgroups path as its bundle's spec gives it (`--cgroup-parent`),
    /// else the one coracle gives every container.
    fn cgroups_path(&self, id: &str) -> String {
        self.state(id)
            .ok()
            .and_then(|s| oci_spec::runtime::Spec::load(s.bundle.join("config.json")).ok())
            .and_then(|spec| spec.linux().as_ref()?.cgroups_path().clone())
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.trim_matches('/').is_empty())
            .unwrap_or_else(|| coracle_model::defaults::cgroups_path(id))
    }

    /// `delete --force` again once the container's cgroups (coracle's path for them)
    /// are gone.
    fn delete_after_teardown(&self, id: &str) -> Result<(), RuntimeError> {
        let path = self.cgroups_path(id);
        crate::teardown::remove_cgroups(&path, crate::teardown::TIMEOUT).map_err(|e| {
            RuntimeError::Failed {
                runtime: self.name.clone(),
                op: Op::Delete,
                id: id.to_string(),
                message: e.to_string(),
            }
        })?;
        let mut cmd = self.command();
        cmd.args(["delete", "--force", id]);
        match self.run(Op::Delete, id, cmd) {
            Err(RuntimeError::NotFound { .. }) => Ok(()),
            r => r.map(drop),
        }
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// An absolute path as is (must be an executable file), or a bare name looked up
    /// on PATH.
    pub fn resolve(name: &str) -> Result<PathBuf, RuntimeError> {
        let not_found = |reason: String| RuntimeError::RuntimeNotFound {
            name: name.to_string(),
            reason,
        };
        let is_exe = |p: &Path| {
            fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        };
        let p = Path::new(name);
        if p.is_absolute() {
            return if is_exe(p) {
                Ok(p.to_path_buf())
            } else {
                Err(not_found("not an executable file".to_string()))
            };
        }
        if name.contains('/') {
            return Err(not_found(
                "give a name on PATH or an absolute path".to_string(),
            ));
        }
        let path =
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|c| is_exe(c))
            .ok_or_else(|| not_found("not found on PATH".to_string()))
    }

    fn command(&self) -> Command {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(&self.binary);
        // SAFETY: `reset` only calls sigaction, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                crate::ignored_signals::reset();
                Ok(())
            });
        }
        if let Some(root) = &self.root {
            cmd.arg("--root").arg(root);
        }
        cmd
    }

    fn run(&self, op: Op, id: &str, mut cmd: Command) -> Result<Output, RuntimeError> {
        cmd.stdin(Stdio::null());
        let out = cmd.output().map_err(|source| RuntimeError::Io {
            what: "run OCI runtime",
            path: self.binary.clone(),
            source,
        })?;
        if out.status.success() {
            return Ok(out);
        }
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let lower = msg.to_ascii_lowercase();
        if lower.contains("does not exist") || lower.contains("not exist") {
            return Err(RuntimeError::NotFound {
                id: id.to_string(),
                runtime: self.name.clone(),
            });
        }
        let msg = if msg.is_empty() {
            format!("{}", out.status)
        } else {
            msg
        };
        Err(RuntimeError::from_message(&self.name, op, id, msg))
    }
}

impl OciCli {
    /// A private directory for one exec's process.json, log and pid file: beside the
    /// runtime's state directory (not in it: `list` would take it for a container),
    /// mode 0700 as the process carries the environment.
    fn exec_dir(&self) -> Result<PathBuf, RuntimeError> {
        use std::os::unix::fs::DirBuilderExt;
        use std::sync::atomic::{AtomicU32, Ordering};
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let base = self
            .root
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir);
        fs::create_dir_all(&base).map_err(|source| RuntimeError::Io {
            what: "create runtime state directory",
            path: base.clone(),
            source,
        })?;
        let dir = base.join(format!(
            ".{}-exec-{}-{}",
            self.name,
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|source| RuntimeError::Io {
                what: "create exec directory",
                path: dir.clone(),
                source,
            })?;
        Ok(dir)
    }

    /// `exec --process P --detach --pid-file F`: the runtime forks the process and
    /// exits, so it is orphaned to the caller (a child subreaper).
    fn exec_in(
        &self,
        dir: &Path,
        id: &str,
        process: &Process,
        io: ProcessIo,
    ) -> Result<u32, RuntimeError> {
        let process_file = dir.join("process.json");
        let log = dir.join("log.json");
        let pid_file = dir.join("exec.pid");
        let json = serde_json::to_vec(process).expect("processes serialise");
        fs::write(&process_file, json).map_err(|source| RuntimeError::Io {
            what: "write exec process",
            path: process_file.clone(),
            source,
        })?;
        let mut cmd = self.command();
        cmd.arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "exec", "--process"])
            .arg(&process_file)
            .arg("--detach")
            .arg("--pid-file")
            .arg(&pid_file);
        let status = self.run_with_io(cmd, io, id)?;
        if !status.success() {
            let msg = last_log_error(&log).unwrap_or_else(|| format!("{status}"));
            if msg.to_ascii_lowercase().contains("does not exist") {
                return Err(RuntimeError::NotFound {
                    id: id.to_string(),
                    runtime: self.name.clone(),
                });
            }
            return Err(RuntimeError::from_message(&self.name, Op::Exec, id, msg));
        }
        read_pid_file(&self.name, Op::Exec, id, &pid_file)
    }
}

fn read_pid_file(runtime: &str, op: Op, id: &str, pid_file: &Path) -> Result<u32, RuntimeError> {
    let text = fs::read_to_string(pid_file).map_err(|source| RuntimeError::Io {
        what: "read pid file",
        path: pid_file.to_path_buf(),
        source,
    })?;
    text.trim()
        .parse::<u32>()
        .map_err(|_| RuntimeError::Failed {
            runtime: runtime.to_string(),
            op,
            id: id.to_string(),
            message: format!("bad pid file {}: {text:?}", pid_file.display()),
        })
}

/// The last `"msg"` of an error in a runtime's JSON log (`--log-format json`).
fn last_log_error(log: &Path) -> Option<String> {
    let text = fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["level"] == "error" || v["level"] == "fatal")
        .and_then(|v| v["msg"].as_str().map(str::to_string))
}

impl Runtime for OciCli {
    fn name(&self) -> &str {
        &self.name
    }

    fn create(&self, id: &str, bundle: &Path, io: ProcessIo) -> Result<u32, RuntimeError> {
        if let Some(root) = &self.root {
            fs::create_dir_all(root).map_err(|source| RuntimeError::Io {
                what: "create runtime state directory",
                path: root.clone(),
                source,
            })?;
        }
        // Like containerd: the runtime's log and the init pid live in the bundle.
        let log = bundle.join("log.json");
        let pid_file = bundle.join("init.pid");
        let _ = fs::remove_file(&log);
        let _ = fs::remove_file(&pid_file);
        let mut cmd = self.command();
        cmd.arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "create"]);
        cmd.arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file);
        let status = self.run_with_io(cmd, io, id)?;
        if !status.success() {
            let msg = last_log_error(&log).unwrap_or_else(|| format!("{status}"));
            return Err(RuntimeError::from_message(&self.name, Op::Create, id, msg));
        }
        read_pid_file(&self.name, Op::Create, id, &pid_file)
    }

    fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let mut cmd = self.command();
        cmd.args(["start", id]);
        self.run(Op::Start, id, cmd).map(drop)
    }

    fn kill(&self, id: &str, signal: i32) -> Result<(), RuntimeError> {
        let mut cmd = self.command();
        cmd.args(["kill", id, &signal.to_string()]);
        self.run(Op::Kill, id, cmd).map(drop)
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let mut cmd = self.command();
        cmd.arg("delete");
        if force {
            cmd.arg("--force");
        }
        cmd.arg(id);
        match self.run(Op::Delete, id, cmd) {
            Err(RuntimeError::NotFound { .. }) if force => Ok(()),
            // The runtime gave up on a cgroup its processes had not left yet (crun and
            // runc retry only briefly): empty and remove them as our own teardown
            // does, then let the runtime remove its state.
            Err(RuntimeError::Failed { .. }) if force => self.delete_after_teardown(id),
            r => r.map(drop),
        }
    }

    fn exec(&self, id: &str, process: &Process, io: ProcessIo) -> Result<u32, RuntimeError> {
        let dir = self.exec_dir()?;
        let result = self.exec_in(&dir, id, process, io);
        let _ = fs::remove_dir_all(&dir);
        result
    }

    fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        let mut cmd = self.command();
        cmd.args(["pause", id]);
        self.run(Op::Pause, id, cmd).map(drop)
    }

    fn resume(&self, id: &str) -> Result<(), RuntimeError> {
        let mut cmd = self.command();
        cmd.args(["resume", id]);
        self.run(Op::Resume, id, cmd).map(drop)
    }

    /// `update --resources FILE ID`, the file in a private directory of its own.
    fn update(&self, id: &str, resources: &LinuxResources) -> Result<(), RuntimeError> {
        let dir = self.exec_dir()?;
        let file = dir.join("resources.json");
        let json = serde_json::to_vec(resources).expect("resources serialise");
        let result = fs::write(&file, json)
            .map_err(|source| RuntimeError::Io {
                what: "write resources",
                path: file.clone(),
                source,
            })
            .and_then(|()| {
                let mut cmd = self.command();
                cmd.args(["update", "--resources"]).arg(&file).arg(id);
                self.run(Op::Update, id, cmd).map(drop)
            });
        let _ = fs::remove_dir_all(&dir);
        result
    }

    fn state(&self, id: &str) -> Result<RuntimeState, RuntimeError> {
        let mut cmd = self.command();
        cmd.args(["state", id]);
        let out = self.run(Op::State, id, cmd)?;
        let bad = |m: String| RuntimeError::Failed {
            runtime: self.name.clone(),
            op: Op::State,
            id: id.to_string(),
            message: m,
        };
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| bad(format!("bad state JSON: {e}")))?;
        let status = v["status"]
            .as_str()
            .and_then(Status::parse)
            .ok_or_else(|| bad(format!("bad status in state: {}", v["status"])))?;
        let pid = v["pid"].as_u64().filter(|p| *p > 0).map(|p| p as u32);
        Ok(RuntimeState {
            id: id.to_string(),
            status,
            pid: if status == Status::Stopped { None } else { pid },
            bundle: PathBuf::from(v["bundle"].as_str().unwrap_or_default()),
        })
    }
}
