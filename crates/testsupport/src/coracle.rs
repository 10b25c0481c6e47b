//! Running the `coracle` binary with an isolated store and home.

use crate::netns::NetNs;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The binary under test: env `CORACLE_BIN` (tests of the root package can pass
/// `env!("CARGO_BIN_EXE_coracle")` to [`Coracle::new`] instead).
pub fn coracle_bin() -> PathBuf {
    std::env::var_os("CORACLE_BIN")
        .map(PathBuf::from)
        .expect("set CORACLE_BIN to the coracle binary, or use Coracle::new(env!(\"CARGO_BIN_EXE_coracle\"))")
}

/// Result of one run, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    /// Exit code; -1 when killed by a signal.
    pub code: i32,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// Panics with stdout and stderr unless the exit code is 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Output {
        assert!(
            self.success(),
            "coracle failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless the exit code is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Output {
        assert_eq!(
            self.code, code,
            "unexpected exit code:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A `coracle` with its own store (`--root`), HOME, DOCKER_CONFIG and XDG dirs in a temp dir.
/// Drop detaches any mount left under the temp dir before removing it.
pub struct Coracle {
    bin: PathBuf,
    tmp: tempfile::TempDir,
    env: Vec<(String, String)>,
    // Declared last: dropped after Drop::drop has removed the containers inside it.
    // Shared by stores that run in one namespace (`share_network_of`).
    netns: Option<std::sync::Arc<NetNs>>,
}

impl Coracle {
    pub fn new(bin: impl Into<PathBuf>) -> Coracle {
        let tmp = tempfile::Builder::new()
            .prefix("coracle-test-")
            .tempdir()
            .expect("temp dir for coracle");
        for d in [
            "root",
            "home",
            "home/.docker",
            "config",
            "xdg-config",
            "xdg-data",
            "xdg-runtime",
        ] {
            fs::create_dir_all(tmp.path().join(d)).expect("create test dirs");
        }
        Coracle {
            bin: bin.into(),
            tmp,
            env: Vec::new(),
            netns: None,
        }
    }

    /// [`Coracle::new`] with [`coracle_bin`].
    pub fn from_env() -> Coracle {
        Coracle::new(coracle_bin())
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The store root passed as `--root`.
    pub fn root(&self) -> PathBuf {
        self.tmp.path().join("root")
    }

    pub fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    /// `DOCKER_CONFIG` (holds `config.json` with credentials).
    pub fn docker_config_dir(&self) -> PathBuf {
        self.home().join(".docker")
    }

    /// A dir for engine config files (like /etc/coracle).
    pub fn config_dir(&self) -> PathBuf {
        self.tmp.path().join("config")
    }

    /// The temp dir everything lives in.
    pub fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// Sets an env var for every later run.
    pub fn env(&mut self, key: &str, value: impl AsRef<OsStr>) -> &mut Coracle {
        let v = value.as_ref().to_string_lossy().into_owned();
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), v));
        self
    }

    /// Writes `config_dir()/coracle.toml` and points `CORACLE_CONFIG` at it.
    pub fn write_config(&mut self, toml: &str) -> PathBuf {
        let p = self.config_dir().join("coracle.toml");
        fs::write(&p, toml).expect("write coracle.toml");
        self.env("CORACLE_CONFIG", &p);
        p
    }

    /// Writes `DOCKER_CONFIG/config.json` with basic credentials for `registry` (`host:port`).
    pub fn write_docker_auth(&self, registry: &str, user: &str, pass: &str) -> PathBuf {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let p = self.docker_config_dir().join("config.json");
        let v = serde_json::json!({"auths": {registry: {"auth": auth}}});
        fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).expect("write docker config.json");
        p
    }

    /// From now on every command runs inside a network namespace of its own (created
    /// here, deleted when this value drops), so the bridges, veths and firewall tables
    /// of bridged containers never touch the host. Idempotent.
    pub fn isolate_network(&mut self) -> &NetNs {
        self.netns
            .get_or_insert_with(|| std::sync::Arc::new(NetNs::new()))
    }

    /// From now on every command runs in `other`'s network namespace (made there by
    /// [`Coracle::isolate_network`]): two stores sharing one namespace. The namespace
    /// lives until both are dropped.
    pub fn share_network_of(&mut self, other: &Coracle) -> &NetNs {
        let ns = other
            .netns
            .clone()
            .expect("the other store has a network namespace (isolate_network)");
        self.netns.insert(ns)
    }

    /// The namespace of [`Coracle::isolate_network`], if any.
    pub fn netns(&self) -> Option<&NetNs> {
        self.netns.as_deref()
    }

    /// The command with `--root`, the isolated env and the extra env applied (inside the
    /// test's network namespace after [`Coracle::isolate_network`]).
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root());
        c.args(args);
        c.env("HOME", self.home())
            .env("DOCKER_CONFIG", self.docker_config_dir())
            .env("XDG_CONFIG_HOME", self.tmp.path().join("xdg-config"))
            .env("XDG_DATA_HOME", self.tmp.path().join("xdg-data"))
            .env("CORACLE_ROOT", self.root())
            .env_remove("CORACLE_CONFIG");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.stdin(Stdio::null());
        if let Some(ns) = &self.netns {
            ns.enter(&mut c);
        }
        c
    }

    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.bin.display()));
        to_output(out)
    }

    /// Runs with `stdin` piped in.
    pub fn run_stdin<I, S>(&self, args: I, stdin: &[u8]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.command(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.bin.display()));
        let mut input = child.stdin.take().unwrap();
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let out = child.wait_with_output().expect("wait for coracle");
        let _ = writer.join();
        to_output(out)
    }
}

fn to_output(out: std::process::Output) -> Output {
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Mount points at or below `dir` (from /proc/self/mountinfo), deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v.dedup();
    v
}

fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(n) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("x"), 8)
            {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Drop for Coracle {
    fn drop(&mut self) {
        // Containers a test left running: end them (and only them) by id, so no
        // monitor or container process outlives the test.
        let ids: Vec<String> = fs::read_dir(self.root().join("containers"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.len() == 64)
                    .collect()
            })
            .unwrap_or_default();
        if !ids.is_empty() {
            let _ = self
                .command(["rm", "-f", "-v"])
                .args(&ids)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // Never let remove_dir_all walk into a bind mount of a host dir.
        for m in mounts_under(self.tmp.path()) {
            let _ = rustix::mount::unmount(&m, rustix::mount::UnmountFlags::DETACH);
        }
        if !mounts_under(self.tmp.path()).is_empty() {
            // Still mounted: leave the dir rather than delete through a mount.
            let _ = std::mem::replace(&mut self.tmp, tempfile::tempdir().expect("tempdir")).keep();
        }
    }
}
