//! Issue 10 items 1 and 4: what a container can reach through `coracle exec` and the
//! processes that enter it.
//!
//! 1. The host binary (CVE-2019-5736): an exec target replaced by a `#!/proc/self/exe`
//!    script must not hand the container coracle's own file, and the monitor and
//!    health-check processes run from a sealed copy. These tests drive a copy of the
//!    built binary, so a failure cannot damage the build artifact.
//! 2. The caller's stdio: an exec without `-t` gets pipes (and /dev/null for stdin
//!    without `-i`, as docker), never the caller's files or terminal.

use crate::common::*;
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The built binary copied into a temp dir of its own, with what it looked like.
struct BinaryCopy {
    _dir: tempfile::TempDir,
    path: PathBuf,
    bytes: Vec<u8>,
}

impl BinaryCopy {
    fn new() -> BinaryCopy {
        let dir = tempfile::Builder::new()
            .prefix("coracle-bin-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("coracle");
        fs::copy(env!("CARGO_BIN_EXE_coracle"), &path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        let bytes = fs::read(&path).unwrap();
        BinaryCopy {
            _dir: dir,
            path,
            bytes,
        }
    }

    #[track_caller]
    fn assert_untouched(&self) {
        let m = fs::metadata(&self.path).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o755, "the host binary's mode changed");
        assert_eq!(
            (m.uid(), m.gid()),
            (0, 0),
            "the host binary's owner changed"
        );
        assert!(
            fs::read(&self.path).unwrap() == self.bytes,
            "the host binary's contents changed"
        );
    }
}

/// busybox tagged `box` in a store driven by `bin`, commands in a network namespace.
fn store_with_busybox(bin: &Path) -> (Registry, Coracle) {
    let (reg, _image) = registry_with_busybox();
    let mut c = Coracle::new(bin);
    let name = format!("{}/test/busybox", reg.host());
    c.run(["pull", "-q", &name]).assert_success();
    c.run(["tag", &name, "box"]).assert_success();
    c.isolate_network();
    (reg, c)
}

/// Every second, each process whose executable is not the container's own busybox is
/// attacked the way the issue describes: chmod 4755, chown, open for writing through
/// /proc/PID/exe. One line per attempt, "<what> <exe> ok|fail", in /shared/attack.log.
const ATTACK: &str = r#"
printf '#!/proc/self/exe login\n' > /bin/victim && chmod 755 /bin/victim
me=$(readlink /proc/$$/exe)
touch /shared/ready
while :; do
  for d in /proc/[0-9]*; do
    e=$(readlink $d/exe 2>/dev/null) || continue
    [ -z "$e" ] || [ "$e" = "$me" ] && continue
    if chmod 4755 $d/exe 2>/dev/null; then r=ok; else r=fail; fi
    echo "chmod $e $r" >> /shared/attack.log
    if chown 4321:4321 $d/exe 2>/dev/null; then r=ok; else r=fail; fi
    echo "chown $e $r" >> /shared/attack.log
    if (printf x >> $d/exe) 2>/dev/null; then r=ok; else r=fail; fi
    echo "write $e $r" >> /shared/attack.log
  done
done
"#;

/// The dynamic loader and libraries `bin` needs (`ldd`): a hostile image would carry
/// them so that coracle can run inside it.
fn loader_and_libs(bin: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(bin).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let path = l.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

#[track_caller]
/// Pids of host processes whose command line has every one of `words`.
fn pids_with(words: &[&str]) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if words.iter().all(|w| args.contains(&w.as_bytes())) {
            out.push(pid);
        }
    }
    out
}

/// Whether process `pid` runs from a sealed copy: a file on a read-only overlayfs, or a
/// memfd with the write seals; in any case not `host` itself.
fn runs_sealed(pid: i32, host: &Path) -> Result<(), String> {
    let link = fs::read_link(format!("/proc/{pid}/exe")).map_err(|e| e.to_string())?;
    if link == host {
        return Err(format!("runs the host binary {}", link.display()));
    }
    let f = fs::File::open(format!("/proc/{pid}/exe")).map_err(|e| e.to_string())?;
    if let Ok(seals) = rustix::fs::fcntl_get_seals(f.as_fd()) {
        use rustix::fs::SealFlags;
        let want = SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE;
        return if seals.contains(want) {
            Ok(())
        } else {
            Err(format!(
                "memfd {} without the seals: {seals:?}",
                link.display()
            ))
        };
    }
    let st = rustix::fs::fstatfs(&f).map_err(|e| e.to_string())?;
    let (overlay, read_only) = (st.f_type as i64 == 0x794c_7630, st.f_flags & 1 == 1);
    if overlay && read_only {
        Ok(())
    } else {
        Err(format!(
            "{} is neither a sealed memfd nor on a read-only overlay (f_type {:#x})",
            link.display(),
            st.f_type
        ))
    }
}

fn kill(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    let _ = rustix::process::kill_process(pid, sig);
}

fn wait_exit(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            kill(child, rustix::process::Signal::KILL);
            child.wait().unwrap();
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The replaced-binary attack: `coracle exec` runs `/bin/victim`, a `#!/proc/self/exe`
/// script, so coracle itself runs in the container (kept there reading its stdin)
/// while a loop in the container attacks every foreign /proc/PID/exe.
#[test]
fn replaced_exec_target_cannot_reach_the_host_binary() {
    if skip_unless_root() {
        return;
    }
    let bin = BinaryCopy::new();
    let (_reg, c) = store_with_busybox(&bin.path);
    let share = tempfile::tempdir().unwrap();
    let mut args = vec![
        "run".to_string(),
        "-d".into(),
        "--name".into(),
        "hostile".into(),
    ];
    args.push("-v".into());
    args.push(format!("{}:/shared", share.path().display()));
    for lib in loader_and_libs(&bin.path) {
        args.push("-v".into());
        args.push(format!(
            "{}:{}:ro",
            fs::canonicalize(&lib).unwrap().display(),
            lib.display()
        ));
    }
    args.extend(["box", "sh", "-c", ATTACK].map(String::from));
    c.run(&args).assert_success();
    let log = share.path().join("attack.log");
    wait_for("the attack loop", || share.path().join("ready").exists());

    let mut exec = c
        .command([
            "exec",
            "-i",
            "hostile",
            "/bin/victim",
            "-u",
            "x",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(fs::File::create(share.path().join("exec.err")).unwrap())
        .spawn()
        .unwrap();
    // The exe the attack reached: whatever coracle inside the container runs from.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !fs::read_to_string(&log).is_ok_and(|l| {
        l.lines()
            .any(|l| l.starts_with("write ") && l.contains("coracle"))
    }) {
        assert!(
            Instant::now() < deadline && exec.try_wait().unwrap().is_none(),
            "the attack never reached coracle in the container; exec: {}; attack log: {}",
            fs::read_to_string(share.path().join("exec.err")).unwrap_or_default(),
            fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    kill(&exec, rustix::process::Signal::TERM);
    drop(exec.stdin.take());
    wait_exit(&mut exec);

    let id = c
        .run(["inspect", "-f", "{{.Id}}", "hostile"])
        .stdout
        .trim()
        .to_string();
    let monitor_sealed = pids_with(&["__monitor", &id])
        .first()
        .map(|p| runs_sealed(*p, &bin.path));
    c.run(["rm", "-f", "hostile"]).assert_success();

    let text = fs::read_to_string(&log).unwrap();
    bin.assert_untouched();
    let succeeded: Vec<&str> = text.lines().filter(|l| l.ends_with(" ok")).collect();
    assert!(succeeded.is_empty(), "attacks that worked: {succeeded:?}");
    assert_eq!(monitor_sealed, Some(Ok(())), "the container's monitor");
}

/// The monitor and a health-check probe process of a built-in-runtime container run
/// from a sealed copy, not from the host binary.
#[test]
fn monitor_and_health_probe_run_sealed() {
    if skip_unless_root() {
        return;
    }
    let bin = BinaryCopy::new();
    let (_reg, c) = store_with_busybox(&bin.path);
    let share = tempfile::tempdir().unwrap();
    let vol = format!("{}:/shared", share.path().display());
    c.run([
        "run",
        "-d",
        "--name",
        "checked",
        "-v",
        &vol,
        "--health-cmd",
        "touch /shared/probing; sleep 1000",
        "--health-interval",
        "1s",
        "--health-timeout",
        "100s",
        "box",
        "sleep",
        "1000",
    ])
    .assert_success();
    let id = c
        .run(["inspect", "-f", "{{.Id}}", "checked"])
        .stdout
        .trim()
        .to_string();
    wait_for("a probe", || share.path().join("probing").exists());
    let monitor = pids_with(&["__monitor", &id]);
    let probe = pids_with(&["__healthcheck", &id]);
    let results = (
        monitor.first().map(|p| runs_sealed(*p, &bin.path)),
        probe.first().map(|p| runs_sealed(*p, &bin.path)),
    );
    c.run(["rm", "-f", "checked"]).assert_success();
    assert_eq!(results.0, Some(Ok(())), "the monitor");
    assert_eq!(results.1, Some(Ok(())), "the health probe process");
    bin.assert_untouched();
}

/// `fd N LINK` lines for fds 0-2 of an exec'd shell.
const FDS: &str = r#"for f in 0 1 2; do echo "fd $f $(readlink /proc/$$/fd/$f)"; done"#;

/// A line of terminal output without what the terminal echoed before it (our end of
/// input reaches the pty as its EOF character, echoed as `^D` or a control byte).
fn unecho(line: &str) -> &str {
    line.trim_start_matches(|c: char| c.is_control() || c == '^' || c == 'D' || c == '@')
}

fn fd_links(text: &str) -> Vec<(u32, String)> {
    text.lines()
        .filter_map(|l| unecho(l).strip_prefix("fd "))
        .filter_map(|l| {
            let (n, link) = l.split_once(' ')?;
            Some((n.parse().ok()?, link.to_string()))
        })
        .collect()
}

/// Runs `exec ARGS` with stdin, stdout and stderr on host files; what it printed.
fn exec_on_files(c: &Coracle, dir: &Path, args: &[&str]) -> (i32, String) {
    let (inp, out, err) = (dir.join("in"), dir.join("out"), dir.join("err"));
    fs::write(&inp, "typed at the host\n").unwrap();
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    let status = c
        .command(&all)
        .stdin(fs::File::open(&inp).unwrap())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    let text = fs::read_to_string(&out).unwrap() + &fs::read_to_string(&err).unwrap();
    (status.code().unwrap_or(-1), text)
}

fn stdio_is_relayed(c: &Coracle, runtime: &[&str]) {
    let mut opts = vec!["run", "-d", "--name", "fds"];
    opts.extend_from_slice(runtime);
    opts.extend_from_slice(&["box", "sleep", "1000"]);
    c.run(&opts).assert_success();
    let dir = tempfile::tempdir().unwrap();
    let host_files = [
        dir.path().join("in"),
        dir.path().join("out"),
        dir.path().join("err"),
    ];
    let to_stderr = format!("{FDS} >&2");

    for (flags, script) in [
        (vec![], FDS),
        (vec!["-i"], FDS),
        (vec![], to_stderr.as_str()),
        (vec!["-i"], to_stderr.as_str()),
    ] {
        let mut args = flags.clone();
        args.extend_from_slice(&["fds", "sh", "-c", script]);
        let (code, text) = exec_on_files(c, dir.path(), &args);
        assert_eq!(code, 0, "{flags:?}: {text}");
        let links = fd_links(&text);
        assert_eq!(links.len(), 3, "{flags:?}: {text}");
        for (fd, link) in &links {
            for host in &host_files {
                assert!(
                    !link.contains(&*host.file_name().unwrap().to_string_lossy())
                        || link.starts_with("pipe:"),
                    "{flags:?}: fd {fd} is the host file {link}"
                );
            }
            let want_null = *fd == 0 && flags.is_empty();
            if want_null {
                assert_eq!(link, "/dev/null", "{flags:?}: stdin without -i");
            } else {
                assert!(link.starts_with("pipe:["), "{flags:?}: fd {fd} is {link}");
            }
        }
    }

    // With -t: the container's own pty (its devpts instance), nothing of the host's.
    let cmd = format!(
        "{} {} --root {} exec -it fds sh -c '{FDS}; echo pts $(stat -c %d /dev/pts); for f in 0 1 2; do echo dev $f $(stat -L -c %d /proc/$$/fd/$f); done'",
        netns(c).nsenter_prefix(),
        c.bin().display(),
        c.root().display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{text}");
    let links = fd_links(&text);
    assert_eq!(links.len(), 3, "{text}");
    for (fd, link) in &links {
        assert!(link.starts_with("/dev/pts/"), "-t: fd {fd} is {link}");
    }
    let pts = text
        .lines()
        .find_map(|l| unecho(l).strip_prefix("pts "))
        .unwrap_or_else(|| panic!("{text}"))
        .to_string();
    let devs: Vec<&str> = text
        .lines()
        .filter_map(|l| unecho(l).strip_prefix("dev "))
        .collect();
    assert_eq!(devs.len(), 3, "{text}");
    for d in devs {
        assert!(
            d.ends_with(&format!(" {pts}")),
            "-t: not the container's pty: {d}; {text}"
        );
    }

    // Nothing of coracle's own environment reaches the process.
    let out = c.run(["exec", "fds", "env"]);
    assert!(!out.stdout.contains("CORACLE"), "{}", out.stdout);

    // stdin reaches the process and its end is the process's end of input.
    let out = c.run_stdin(["exec", "-i", "fds", "cat"], b"hi\n");
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "hi\n"),
        "{}",
        out.stderr
    );
    let out = c.run_stdin(
        ["exec", "-i", "fds", "sh", "-c", "wc -c; exit 3"],
        &[b'x'; 300_000],
    );
    assert_eq!(
        (out.code, out.stdout.trim()),
        (3, "300000"),
        "{}",
        out.stderr
    );

    // Large output on both streams arrives whole and in order, through a pipe and into
    // a file.
    let want: String = (1..=150_000).map(|i| format!("{i}\n")).collect();
    let out = c.run(["exec", "fds", "sh", "-c", "seq 1 150000; seq 1 150000 >&2"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout == want, "stdout: {} bytes", out.stdout.len());
    assert!(out.stderr == want, "stderr: {} bytes", out.stderr.len());
    let (code, text) = exec_on_files(c, dir.path(), &["fds", "seq", "1", "150000"]);
    assert_eq!(code, 0);
    assert!(text == want, "to a file: {} bytes", text.len());

    c.run(["rm", "-f", "fds"]).assert_success();
}

#[test]
fn exec_stdio_is_relayed_through_pipes_youki() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    stdio_is_relayed(&c, &[]);
}

#[test]
fn exec_stdio_is_relayed_through_pipes_crun() {
    if skip_unless_root() {
        return;
    }
    if Command::new("crun").arg("--version").output().is_err() {
        eprintln!("skipped: crun is not installed");
        return;
    }
    crun_hybrid_cgroup_fix();
    let (_reg, c) = with_busybox();
    stdio_is_relayed(&c, &["--runtime", "crun"]);
}
