//! Runs real containers (root, namespaces, cgroups) through the monitor with the built-in
//! runtime (youki's libcontainer) and crun. `harness = false`: the monitor must be a
//! single-threaded process, so this binary re-executes itself as the foreground
//! monitor (CORACLE_TEST_MONITOR=1, the config as arguments), the way the coracle
//! binary re-executes itself as its detached monitor.
//!
//! `cargo test -p coracle-runtime --test run -- --ignored` also measures latency.

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use coracle_runtime::monitor::{self, MonitorConfig};
use serde_json::json;

const CHILD_ENV: &str = "CORACLE_TEST_MONITOR";

type Case = fn(&Env, &str);

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if std::env::var_os(CHILD_ENV).is_some() {
        // As coracle's monitor: the built-in runtime forks from a sealed copy only.
        if let Err(e) = coracle_runtime::exeseal::ensure_sealed() {
            eprintln!("coracle: {e}");
            std::process::exit(125);
        }
        std::process::exit(foreground_main(&args[1..]));
    }
    let bench = args
        .iter()
        .any(|a| a == "--ignored" || a == "--include-ignored");
    let filter: Option<String> = args[1..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .find(|a| !a.starts_with('-'));
    if !nix::unistd::geteuid().is_root() {
        println!("run: skipped (needs root)");
        return;
    }
    let env = Env::new();
    let mut failed = Vec::new();
    let mut ran = 0;
    for rt in ["youki", "crun"] {
        if rt == "crun" && !env.crun_ready() {
            println!("crun not available: crun cases skipped");
            continue;
        }
        let cases: [(&str, Case); 9] = [
            ("echo_reaches_stdout", echo_reaches_stdout),
            (
                "stderr_separate_and_exit_code",
                stderr_separate_and_exit_code,
            ),
            ("signal_killed_is_128_plus_signal", signal_killed),
            ("missing_command_is_127", missing_command_is_127),
            ("not_executable_is_126", not_executable_is_126),
            ("stdin_only_with_interactive", stdin_only_with_interactive),
            ("signals_are_forwarded", signals_are_forwarded),
            ("cgroup_used_then_removed", cgroup_used_then_removed),
            ("terminal_through_pty", terminal_through_pty),
        ];
        for (name, case) in cases {
            let full = format!("{rt}::{name}");
            if filter.as_deref().is_some_and(|f| !full.contains(f)) {
                continue;
            }
            ran += 1;
            let r = std::panic::catch_unwind(|| case(&env, rt));
            match r {
                Ok(()) => println!("test {full} ... ok"),
                Err(_) => {
                    println!("test {full} ... FAILED");
                    failed.push(full);
                }
            }
        }
    }
    if bench {
        latency(&env);
    }
    env.cleanup();
    println!(
        "run: {} passed, {} failed",
        ran - failed.len(),
        failed.len()
    );
    if !failed.is_empty() {
        println!("failures: {failed:?}");
        std::process::exit(1);
    }
}

/// The foreground monitor's entry point: parses `args` (from [`monitor_args`]), runs
/// the container with this process's stdio and returns its exit code.
fn foreground_main(args: &[OsString]) -> i32 {
    let cfg = match parse_monitor_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("coracle: monitor: {e}");
            return 125;
        }
    };
    match monitor::run_foreground(&cfg) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("coracle: {e}");
            e.exit_code()
        }
    }
}

/// `cfg` as the foreground monitor's arguments.
fn monitor_args(cfg: &MonitorConfig) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        "--bundle".into(),
        cfg.bundle.clone().into(),
        "--id".into(),
        cfg.id.clone().into(),
        "--runtime".into(),
        cfg.runtime.clone().into(),
        "--state-root".into(),
        cfg.state_root.clone().into(),
        "--exit-file".into(),
        cfg.exit_file.clone().into(),
    ];
    if cfg.terminal {
        a.push("--terminal".into());
    }
    if cfg.interactive {
        a.push("--interactive".into());
    }
    a
}

/// Parses what [`monitor_args`] built.
fn parse_monitor_args(args: &[OsString]) -> Result<MonitorConfig, String> {
    let mut it = args.iter();
    let (mut bundle, mut id, mut exit_file) = (None, None, None);
    let (mut runtime, mut state_root) = (None, None);
    let (mut terminal, mut interactive) = (false, false);
    while let Some(arg) = it.next() {
        let flag = arg.to_string_lossy().into_owned();
        let mut value = || it.next().cloned().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--bundle" => bundle = Some(PathBuf::from(value()?)),
            "--id" => id = Some(value()?.to_string_lossy().into_owned()),
            "--runtime" => runtime = Some(value()?.to_string_lossy().into_owned()),
            "--state-root" => state_root = Some(PathBuf::from(value()?)),
            "--exit-file" => exit_file = Some(PathBuf::from(value()?)),
            "--terminal" => terminal = true,
            "--interactive" => interactive = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let required = |f: &str| format!("{f} is required");
    Ok(MonitorConfig {
        bundle: bundle.ok_or_else(|| required("--bundle"))?,
        id: id.ok_or_else(|| required("--id"))?,
        runtime: runtime.ok_or_else(|| required("--runtime"))?,
        state_root: state_root.ok_or_else(|| required("--state-root"))?,
        terminal,
        interactive,
        exit_file: exit_file.ok_or_else(|| required("--exit-file"))?,
    })
}

struct Env {
    dir: PathBuf,
    rootfs: PathBuf,
    state_root: PathBuf,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    exit_file: Option<i32>,
}

impl Env {
    fn new() -> Env {
        let dir = std::env::temp_dir().join(format!("coracle-rt-test-{}", std::process::id()));
        let rootfs = dir.join("rootfs");
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc"] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for a in [
            "sh", "echo", "cat", "id", "hostname", "sleep", "true", "false", "tty", "stty", "kill",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        fs::write(rootfs.join("bin/noexec"), "not a program\n").unwrap();
        Env {
            state_root: dir.join("state"),
            dir,
            rootfs,
        }
    }

    fn cleanup(&self) {
        let _ = fs::remove_dir_all(&self.dir);
    }

    /// crun refuses hybrid cgroups without a hugetlb v1 hierarchy: a host fix, here only.
    fn crun_ready(&self) -> bool {
        if Command::new("crun").arg("--version").output().is_err() {
            return false;
        }
        let h = Path::new("/sys/fs/cgroup/hugetlb");
        let mounted = fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some("/sys/fs/cgroup/hugetlb"));
        if Path::new("/sys/fs/cgroup/unified").exists() && !mounted {
            let _ = fs::create_dir_all(h);
            let _ = Command::new("mount")
                .args(["-t", "cgroup", "-o", "hugetlb", "cgroup"])
                .arg(h)
                .status();
        }
        true
    }

    /// Writes a bundle for `args` and returns (id, bundle dir).
    fn bundle(&self, args: &[&str], terminal: bool) -> (String, PathBuf) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = format!(
            "t{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let bundle = self.dir.join(&id);
        fs::create_dir_all(&bundle).unwrap();
        let caps = coracle_model::defaults::DEFAULT_CAPABILITIES;
        let config = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": terminal,
                "user": {"uid": 0, "gid": 0},
                "args": args,
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                "cwd": "/",
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": false
            },
            "root": {"path": self.rootfs, "readonly": true},
            "hostname": "coracle-test",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]}
            ],
            "linux": {
                "cgroupsPath": format!("/coracle-test/{id}"),
                "resources": {"memory": {"limit": 268435456}, "pids": {"limit": 256}},
                "namespaces": [
                    {"type": "pid"}, {"type": "mount"}, {"type": "uts"},
                    {"type": "ipc"}, {"type": "network"}
                ],
                "maskedPaths": ["/proc/kcore", "/proc/keys"],
                "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
            }
        });
        fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
        (id, bundle)
    }

    fn config(
        &self,
        rt: &str,
        id: &str,
        bundle: &Path,
        terminal: bool,
        interactive: bool,
    ) -> MonitorConfig {
        MonitorConfig {
            bundle: bundle.to_path_buf(),
            id: id.to_string(),
            runtime: rt.to_string(),
            state_root: self.state_root.clone(),
            terminal,
            interactive,
            exit_file: bundle.join("exit"),
        }
    }

    fn monitor(&self, cfg: &MonitorConfig) -> Command {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env(CHILD_ENV, "1").args(monitor_args(cfg));
        cmd
    }

    /// Runs `args` through the monitor with piped stdio.
    fn run(&self, rt: &str, args: &[&str], stdin: Option<&str>) -> (Run, String) {
        let (id, bundle) = self.bundle(args, false);
        let cfg = self.config(rt, &id, &bundle, false, stdin.is_some());
        let mut child = self
            .monitor(&cfg)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input
            .write_all(stdin.unwrap_or("from-test\n").as_bytes())
            .unwrap();
        drop(input);
        let out = child.wait_with_output().unwrap();
        (self.finish(&cfg, out), id)
    }

    fn finish(&self, cfg: &MonitorConfig, out: Output) -> Run {
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            exit_file: monitor::read_exit_file(&cfg.exit_file),
        };
        assert_no_cgroup(&cfg.id);
        assert!(
            !self
                .state_root
                .join(runtime_dir(&cfg.runtime))
                .join(&cfg.id)
                .exists(),
            "runtime state left for {}",
            cfg.id
        );
        run
    }
}

fn runtime_dir(rt: &str) -> &str {
    rt
}

fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    [
        "unified", "memory", "pids", "cpu", "cpuset", "devices", "freezer", "blkio",
    ]
    .iter()
    .map(|h| {
        Path::new("/sys/fs/cgroup")
            .join(h)
            .join("coracle-test")
            .join(id)
    })
    .collect()
}

fn assert_no_cgroup(id: &str) {
    for d in cgroup_dirs(id) {
        assert!(!d.exists(), "cgroup left behind: {}", d.display());
    }
}

fn echo_reaches_stdout(env: &Env, rt: &str) {
    let (r, _) = env.run(rt, &["echo", "hi"], None);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "hi\n", ""),
        "{rt}"
    );
    assert_eq!(r.exit_file, Some(0));
}

fn stderr_separate_and_exit_code(env: &Env, rt: &str) {
    let (r, _) = env.run(rt, &["sh", "-c", "echo out; echo err >&2; exit 3"], None);
    assert_eq!(r.stdout, "out\n");
    assert_eq!(r.stderr, "err\n");
    assert_eq!(r.code, 3);
    assert_eq!(r.exit_file, Some(3));
}

fn signal_killed(env: &Env, rt: &str) {
    // The kernel ignores SIGKILL sent to a pid namespace's init from inside, so the
    // test kills the init from the host: it is the monitor's child (subreaper).
    let (id, bundle) = env.bundle(&["sh", "-c", "echo ready; exec sleep 100"], false);
    let cfg = env.config(rt, &id, &bundle, false, false);
    let mut child = env
        .monitor(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut b = [0u8; 6];
    stdout.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ready\n");
    let mon = child.id();
    let children = fs::read_to_string(format!("/proc/{mon}/task/{mon}/children")).unwrap();
    let init: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let r = env.finish(&cfg, out);
    assert_eq!(r.code, 137, "stderr: {}", r.stderr);
    assert_eq!(r.exit_file, Some(137));
}

fn missing_command_is_127(env: &Env, rt: &str) {
    let (r, _) = env.run(rt, &["nosuch"], None);
    assert_eq!(r.code, 127, "stderr: {}", r.stderr);
    assert!(
        r.stderr.contains(
            "coracle: failed to create task for container: exec: \"nosuch\": executable file not found in $PATH"
        ),
        "stderr: {}",
        r.stderr
    );
    assert_eq!(r.exit_file, Some(127));
}

fn not_executable_is_126(env: &Env, rt: &str) {
    let (r, _) = env.run(rt, &["/bin/noexec"], None);
    assert_eq!(r.code, 126, "stderr: {}", r.stderr);
    assert!(
        r.stderr.contains("permission denied"),
        "stderr: {}",
        r.stderr
    );
}

fn stdin_only_with_interactive(env: &Env, rt: &str) {
    let (r, _) = env.run(rt, &["cat"], Some("abc\n"));
    assert_eq!((r.code, r.stdout.as_str()), (0, "abc\n"));
    // Without -i the container reads /dev/null, not our stdin.
    let (r, _) = env.run(rt, &["sh", "-c", "cat; echo end"], None);
    assert_eq!((r.code, r.stdout.as_str()), (0, "end\n"));
}

fn signals_are_forwarded(env: &Env, rt: &str) {
    let script = "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done";
    let (id, bundle) = env.bundle(&["sh", "-c", script], false);
    let cfg = env.config(rt, &id, &bundle, false, false);
    let mut child = env
        .monitor(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut b = [0u8; 64];
    while !String::from_utf8_lossy(&seen).contains("ready\n") {
        let n = stdout.read(&mut b).unwrap();
        assert!(n > 0, "monitor ended early");
        seen.extend_from_slice(&b[..n]);
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    stdout.read_to_end(&mut seen).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&seen), "ready\ngot-term\n");
    assert_eq!(out.status.code(), Some(42));
    assert_no_cgroup(&id);
}

fn cgroup_used_then_removed(env: &Env, rt: &str) {
    let (r, id) = env.run(rt, &["cat", "/proc/self/cgroup"], None);
    assert_eq!(r.code, 0);
    let want = format!("/coracle-test/{id}");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.contains(":memory:") && l.ends_with(&want)),
        "not in the memory cgroup {want}: {}",
        r.stdout
    );
    // `finish` already checked that no cgroup directory is left.
}

fn terminal_through_pty(env: &Env, rt: &str) {
    let pty = nix::pty::openpty(
        Some(&nix::pty::Winsize {
            ws_row: 33,
            ws_col: 77,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }),
        None,
    )
    .unwrap();
    let before = nix::sys::termios::tcgetattr(pty.slave.as_fd()).unwrap();
    let (id, bundle) = env.bundle(&["sh", "-c", "tty; stty size; read x; echo got-$x"], true);
    let cfg = env.config(rt, &id, &bundle, true, true);
    let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
    let mut cmd = env.monitor(&cfg);
    cmd.stdin(slave(&pty.slave))
        .stdout(slave(&pty.slave))
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut master = fs::File::from(pty.master);
    // Read until the container asks for input, then type a line.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut typed = false;
    loop {
        assert!(
            Instant::now() < deadline,
            "timeout; seen {:?}",
            String::from_utf8_lossy(&seen)
        );
        let mut p = [nix::poll::PollFd::new(
            master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut p, nix::poll::PollTimeout::from(200u16));
        if p[0].revents().is_some_and(|r| !r.is_empty()) {
            let mut b = [0u8; 256];
            match master.read(&mut b) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&b[..n]),
            }
        }
        let s = String::from_utf8_lossy(&seen).into_owned();
        if !typed && s.contains("33 77") {
            master.write_all(b"yes\r").unwrap();
            typed = true;
        }
        if s.contains("got-yes") {
            break;
        }
        if let Some(st) = child.try_wait().unwrap() {
            let _ = st;
            break;
        }
    }
    let out = child.wait_with_output().unwrap();
    let s = String::from_utf8_lossy(&seen);
    assert!(
        s.contains("/dev/pts/0\r\n"),
        "output: {s:?}, stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(s.contains("33 77"), "window size not propagated: {s:?}");
    assert!(s.contains("got-yes"), "stdin not forwarded: {s:?}");
    assert_eq!(out.status.code(), Some(0));
    let after = nix::sys::termios::tcgetattr(pty.slave.as_fd()).unwrap();
    assert_eq!(
        before.local_flags, after.local_flags,
        "terminal not restored"
    );
    assert_eq!(
        before.input_flags, after.input_flags,
        "terminal not restored"
    );
    assert_no_cgroup(&id);
    let _ = pty.slave.as_raw_fd();
}

/// create+start+wait+delete of `true` through the monitor, per runtime; plus bare
/// `crun run` for reference. Median of N.
fn latency(env: &Env) {
    const N: usize = 20;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    for rt in ["youki", "crun"] {
        let mut times = Vec::new();
        for _ in 0..N {
            let (id, bundle) = env.bundle(&["true"], false);
            let cfg = env.config(rt, &id, &bundle, false, false);
            let t = Instant::now();
            let st = env.monitor(&cfg).stdin(Stdio::null()).status().unwrap();
            times.push(t.elapsed());
            assert!(st.success());
        }
        println!(
            "latency: monitor + {rt}: median {:?} over {N}",
            median(times)
        );
    }
    let mut times = Vec::new();
    for _ in 0..N {
        let (id, bundle) = env.bundle(&["true"], false);
        let t = Instant::now();
        let st = Command::new("crun")
            .arg("--root")
            .arg(env.state_root.join("crun-bare"))
            .arg("run")
            .arg("--bundle")
            .arg(&bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .status()
            .unwrap();
        times.push(t.elapsed());
        assert!(st.success());
    }
    println!(
        "latency: bare crun run: median {:?} over {N}",
        median(times)
    );
}
