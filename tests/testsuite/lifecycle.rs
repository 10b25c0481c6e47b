//! The container lifecycle through the real binary: detached runs and their
//! monitors, start/stop/kill/restart/wait/attach, restart policies, and what happens
//! when a monitor is killed or the host "reboots".

use crate::common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn state(c: &Coracle, name: &str) -> String {
    let out = c.run([
        "ps",
        "-a",
        "--no-trunc",
        "--format",
        "{{.Names}} {{.State}}",
    ]);
    out.assert_success();
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or("gone")
        .to_string()
}

/// Waits until the container's log says `ready` (its shell has set its traps).
fn wait_ready(c: &Coracle, name: &str) {
    wait_until("the container to be ready", Duration::from_secs(10), || {
        c.run(["logs", name]).stdout.contains("ready")
    });
}

/// The container's id, from `ps`.
fn id_of(c: &Coracle, name: &str) -> String {
    let out = c.run([
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("name=^{name}$"),
    ]);
    out.stdout.trim().to_string()
}

/// The pid of the monitor of container `id` (None if none runs).
fn monitor_pid(id: &str) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let e = e.ok()?;
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        (args.contains(&&b"__monitor"[..]) && args.contains(&id.as_bytes())).then_some(pid)
    })
}

fn mounts_of(id: &str) -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(id))
        .count()
}

/// cgroup directories of the container in any hierarchy.
fn cgroups_of(id: &str) -> Vec<String> {
    let mut found = Vec::new();
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let p = h.path().join("coracle").join(id);
        if p.exists() {
            found.push(p.display().to_string());
        }
    }
    found
}

/// Drives `coracle ARGS` inside `script` (a real pty) as a user would: presses Enter
/// until the shell's prompt shows (the session is attached and relaying), then for each
/// step types `keys` and waits until the terminal shows `shows` after them (`None`: until
/// the session ends on its own; the pty stays open till then). Returns the terminal
/// output and the exit code.
fn in_pty(c: &Coracle, args: &str, steps: &[(&[u8], Option<&str>)]) -> (String, i32) {
    let cmd = format!(
        "{} {} --root {} {args}",
        netns(c).nsenter_prefix(),
        c.bin().display(),
        c.root().display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut term = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&term).contains("# ") {
        assert!(Instant::now() < deadline, "no prompt: {:?}", lossy(&term));
        stdin.write_all(b"\r").unwrap();
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(250)) {
            term.extend(chunk);
        }
    }
    for (keys, shows) in steps {
        let from = term.len();
        stdin.write_all(keys).unwrap();
        pty_wait(&rx, &mut term, from, *shows);
    }
    drop(stdin);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    (lossy(&term), status.code().unwrap_or(-1))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Collects terminal output into `term` until what came after `from` shows `shows`
/// (`None`: until the output ends), 30 s at most.
fn pty_wait(rx: &mpsc::Receiver<Vec<u8>>, term: &mut Vec<u8>, from: usize, shows: Option<&str>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(s) = shows {
            if String::from_utf8_lossy(&term[from..]).contains(s) {
                return;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => term.extend(chunk),
            Err(mpsc::RecvTimeoutError::Disconnected) if shows.is_none() => return,
            Err(e) => panic!("waiting for {shows:?}: {e}: {:?}", lossy(term)),
        }
    }
}

#[test]
fn run_detached_prints_the_id_and_the_monitor_keeps_it_running() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let out = c.run([
        "run",
        "-d",
        "--name",
        "web",
        "box",
        "sh",
        "-c",
        "echo up; sleep 100",
    ]);
    out.assert_success();
    let id = out.stdout.trim();
    assert_eq!(id.len(), 64, "{out:?}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(state(&c, "web"), "running");
    let monitor = monitor_pid(id).expect("a monitor runs for the container");
    // The monitor is no child of the CLI that started it: its own session.
    let stat = std::fs::read_to_string(format!("/proc/{monitor}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        fields[3],
        monitor.to_string(),
        "monitor is a session leader: {stat}"
    );
    wait_until("the log line", Duration::from_secs(5), || {
        c.run(["logs", "web"]).stdout == "up\n"
    });
    c.run(["stop", "-t", "1", "web"]).assert_success();
    assert_eq!(state(&c, "web"), "exited");
    assert!(
        monitor_pid(id).is_none(),
        "no coracle process once it stopped"
    );
    assert_eq!(mounts_of(id), 0, "rootfs unmounted at exit");
    assert!(
        cgroups_of(id).is_empty(),
        "cgroups removed: {:?}",
        cgroups_of(id)
    );
}

#[test]
fn stop_sends_the_stop_signal_then_kills_after_the_timeout() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    // A shell that exits 0 on SIGTERM, and a sleep (pid 1 ignores SIGTERM).
    c.run([
        "run",
        "-d",
        "--name",
        "polite",
        "box",
        "sh",
        "-c",
        "trap 'exit 0' TERM; echo ready; while true; do sleep 0.1; done",
    ])
    .assert_success();
    wait_ready(&c, "polite");
    c.run(["run", "-d", "--name", "stubborn", "box", "sleep", "100"])
        .assert_success();
    c.run(["stop", "polite"]).assert_success();
    // 0, not 137: the stop signal ended it, not the kill after the timeout.
    assert_eq!(c.run(["wait", "polite"]).stdout, "0\n");
    let t = Instant::now();
    let out = c.run(["stop", "-t", "1", "stubborn"]);
    out.assert_success();
    assert_eq!(out.stdout, "stubborn\n");
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(c.run(["wait", "stubborn"]).stdout, "137\n");
    // --stop-signal: the image's default replaced.
    c.run([
        "run",
        "-d",
        "--name",
        "usr1",
        "--stop-signal",
        "USR1",
        "box",
        "sh",
        "-c",
        "trap 'exit 42' USR1; echo ready; while true; do sleep 0.1; done",
    ])
    .assert_success();
    wait_ready(&c, "usr1");
    c.run(["stop", "usr1"]).assert_success();
    assert_eq!(c.run(["wait", "usr1"]).stdout, "42\n");
    // Stopping a stopped container is fine, an unknown one is not.
    c.run(["stop", "usr1"]).assert_success();
    let out = c.run(["stop", "nosuch"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("No such container: nosuch"),
        "{}",
        out.stderr
    );
}

#[test]
fn kill_start_restart_and_wait() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run([
        "run",
        "-d",
        "--name",
        "kk",
        "box",
        "sh",
        "-c",
        "trap 'echo got-hup' HUP; echo ready; while true; do sleep 0.1; done",
    ])
    .assert_success();
    // The shell must have set its trap before the signal comes.
    wait_ready(&c, "kk");
    c.run(["kill", "-s", "HUP", "kk"]).assert_success();
    wait_until("the trap", Duration::from_secs(5), || {
        c.run(["logs", "kk"]).stdout.contains("got-hup")
    });
    assert_eq!(state(&c, "kk"), "running");
    c.run(["kill", "kk"]).assert_success();
    assert_eq!(c.run(["wait", "kk"]).stdout, "137\n");
    let out = c.run(["kill", "kk"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("is not running"), "{}", out.stderr);
    // start again: the same container, its log goes on.
    c.run(["start", "kk"]).assert_success();
    assert_eq!(state(&c, "kk"), "running");
    c.run(["restart", "-t", "0", "kk"]).assert_success();
    assert_eq!(state(&c, "kk"), "running");
    c.run(["rm", "-f", "kk"]).assert_success();
    assert_eq!(state(&c, "kk"), "gone");

    // create + start -a: output and exit code of the container.
    let out = c.run([
        "create",
        "--name",
        "cr",
        "box",
        "sh",
        "-c",
        "echo created-then-started; exit 4",
    ]);
    out.assert_success();
    assert_eq!(state(&c, "cr"), "created");
    let out = c.run(["start", "-a", "cr"]);
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(out.stdout, "created-then-started\n");
    assert_eq!(state(&c, "cr"), "exited");
    assert_eq!(c.run(["wait", "cr"]).stdout, "4\n");
}

#[test]
fn a_failed_start_keeps_the_container_created_with_dockers_code() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let out = c.run(["run", "-d", "--name", "bad", "box", "/nosuch"]);
    assert_eq!(out.code, 127, "{out:?}");
    assert!(
        out.stderr.contains("executable file not found"),
        "{}",
        out.stderr
    );
    assert_eq!(state(&c, "bad"), "created");
    let out = c.run(["start", "bad"]);
    assert_eq!(out.code, 1, "{out:?}");
    c.run(["rm", "bad"]).assert_success();
    // --rm: nothing is left behind after the failure.
    let out = c.run(["run", "--rm", "box", "/nosuch"]);
    assert_eq!(out.code, 127);
    assert!(entries(&c.root().join("containers")).is_empty());
}

#[test]
fn restart_policies_restart_count_and_stop_wins() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run([
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "box",
        "sh",
        "-c",
        "echo run; exit 3",
    ])
    .assert_success();
    wait_until("the retries to run out", Duration::from_secs(10), || {
        state(&c, "flaky") == "exited"
    });
    assert_eq!(c.run(["logs", "flaky"]).stdout, "run\nrun\nrun\n");
    assert_eq!(
        c.run([
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.ExitCode}}",
            "flaky"
        ])
        .stdout,
        "2 3\n"
    );
    // on-failure does not restart a success.
    c.run([
        "run",
        "-d",
        "--name",
        "fine",
        "--restart",
        "on-failure",
        "box",
        "true",
    ])
    .assert_success();
    assert_eq!(c.run(["wait", "fine"]).stdout, "0\n");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(state(&c, "fine"), "exited");

    // always: comes back after exiting, but not after a stop.
    c.run([
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "box",
        "sh",
        "-c",
        "sleep 0.3; exit 1",
    ])
    .assert_success();
    wait_until("a restart", Duration::from_secs(10), || {
        c.run(["inspect", "-f", "{{.RestartCount}}", "always"])
            .stdout
            .trim()
            != "0"
    });
    c.run(["stop", "-t", "1", "always"]).assert_success();
    assert_eq!(state(&c, "always"), "exited");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(state(&c, "always"), "exited", "stop wins over the policy");
    let id = id_of(&c, "always");
    assert!(monitor_pid(&id).is_none());

    let out = c.run(["run", "--rm", "--restart", "always", "box", "true"]);
    assert_eq!(out.code, 125);
    assert!(
        out.stderr
            .contains("Conflicting options: --restart and --rm"),
        "{}",
        out.stderr
    );
}

#[test]
fn system_boot_brings_back_policy_containers_after_a_reboot() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run([
        "run",
        "-d",
        "--name",
        "aa",
        "--restart",
        "always",
        "box",
        "sleep",
        "100",
    ])
    .assert_success();
    c.run([
        "run",
        "-d",
        "--name",
        "uu",
        "--restart",
        "unless-stopped",
        "box",
        "sleep",
        "100",
    ])
    .assert_success();
    c.run([
        "run",
        "-d",
        "--name",
        "uu2",
        "--restart",
        "unless-stopped",
        "box",
        "sleep",
        "100",
    ])
    .assert_success();
    c.run(["run", "-d", "--name", "nn", "box", "sleep", "100"])
        .assert_success();
    c.run(["stop", "-t", "0", "uu2"]).assert_success();
    // A "reboot": every monitor and container process gone, /run emptied.
    for name in ["aa", "uu", "nn"] {
        let id = id_of(&c, name);
        let pid = monitor_pid(&id).unwrap();
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid).unwrap(),
            rustix::process::Signal::KILL,
        )
        .unwrap();
    }
    for name in ["aa", "uu", "nn"] {
        assert_eq!(state(&c, name), "exited", "{name} after its monitor died");
        let id = id_of(&c, name);
        assert_eq!(mounts_of(&id), 0);
        assert!(cgroups_of(&id).is_empty());
    }
    let out = c.run(["system", "boot"]);
    out.assert_success();
    let mut started: Vec<&str> = out.stdout.lines().collect();
    started.sort();
    assert_eq!(started, ["aa", "uu"]);
    assert_eq!(state(&c, "aa"), "running");
    assert_eq!(state(&c, "uu"), "running");
    assert_eq!(state(&c, "uu2"), "exited");
    assert_eq!(state(&c, "nn"), "exited");
}

#[test]
fn a_monitor_killed_with_sigkill_leaves_an_exited_container_that_rm_cleans() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run(["run", "-d", "--name", "victim", "box", "sleep", "1000"])
        .assert_success();
    let id = id_of(&c, "victim");
    let init: i32 = c
        .run(["inspect", "-f", "{{.State.Pid}}", "victim"])
        .stdout
        .trim()
        .parse()
        .unwrap();
    assert!(init > 0);
    let pid = monitor_pid(&id).unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    wait_until("the monitor to die", Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z"))
    });
    assert_eq!(state(&c, "victim"), "exited");
    wait_until(
        "the container's init to be gone",
        Duration::from_secs(5),
        || {
            std::fs::read_to_string(format!("/proc/{init}/cmdline"))
                .map_or(true, |s| !s.starts_with("sleep"))
        },
    );
    assert_eq!(mounts_of(&id), 0);
    assert!(cgroups_of(&id).is_empty(), "{:?}", cgroups_of(&id));
    c.run(["rm", "victim"]).assert_success();
    assert!(!c.root().join("containers").join(&id).exists());
}

#[test]
fn interactive_stdin_without_a_tty() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let out = c.run_stdin(
        [
            "run",
            "-i",
            "--rm",
            "box",
            "sh",
            "-c",
            "cat; echo err >&2; exit 2",
        ],
        b"line1\nline2\n",
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stdout, "line1\nline2\n");
    assert_eq!(out.stderr, "err\n");
}

#[test]
fn detach_and_attach_round_trip_through_a_pty() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let (text, code) = in_pty(
        &c,
        "run -it --name tt box sh",
        &[
            (b"echo first-$((1+1))\r", Some("first-2")),
            (b"\x10\x11", None),
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("first-2"), "{text}");
    assert_eq!(state(&c, "tt"), "running", "detaching leaves it running");
    let (text, code) = in_pty(
        &c,
        "attach tt",
        &[
            (b"echo second-$((2+2))\r", Some("second-4")),
            (b"\x10\x11", None),
        ],
    );
    assert_eq!(
        code, 1,
        "docker's attach exits 1 on the escape sequence: {text}"
    );
    assert!(text.contains("second-4"), "{text}");
    assert!(text.contains("read escape sequence"), "{text}");
    // Custom keys, then leave by exiting the shell: attach returns its code.
    let (text, code) = in_pty(
        &c,
        "attach --detach-keys ctrl-a tt",
        &[
            (b"\x10\x11echo third\r", Some("third")),
            (b"exit 9\r", None),
        ],
    );
    assert_eq!(code, 9, "{text}");
    assert!(text.contains("third"), "{text}");
    assert_eq!(state(&c, "tt"), "exited");
    let out = c.run(["attach", "tt"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("You cannot attach to a stopped container"),
        "{}",
        out.stderr
    );
}

#[test]
fn eight_concurrent_loops_lose_nothing_and_leak_nothing() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let secs: u64 = std::env::var("CORACLE_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let c = std::sync::Arc::new(c);
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut rounds = 0;
                while Instant::now() < deadline {
                    let name = format!("w{w}-{rounds}");
                    let out = c.run(["run", "-d", "--name", &name, "box", "sleep", "100"]);
                    assert!(out.success(), "{name}: {out:?}");
                    // Everyone fights over one shared name too: exactly one wins.
                    let shared = c.run(["run", "-d", "--name", "shared", "box", "sleep", "100"]);
                    // It loses to another loop's run (name taken) or rm (gone
                    // between create and start); nothing else may go wrong.
                    if !shared.success() {
                        assert!(
                            shared.stderr.contains("is already in use")
                                || shared.stderr.contains("No such container"),
                            "{name}: {shared:?}"
                        );
                    }
                    let out = c.run(["stop", "-t", "0", &name]);
                    assert!(out.success(), "{name}: {out:?}");
                    let out = c.run(["rm", "-f", &name]);
                    assert!(out.success(), "{name}: {out:?}");
                    let _ = c.run(["rm", "-f", "shared"]);
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let rounds: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(rounds >= 8, "{rounds} rounds");
    let _ = c.run(["rm", "-f", "shared"]);
    let out = c.run(["ps", "-aq"]);
    out.assert_success();
    assert_eq!(out.stdout, "", "no container lost or left");
    assert!(entries(&c.root().join("containers")).is_empty());
    assert!(
        mounts_under(&c.root()).is_empty(),
        "{:?}",
        mounts_under(&c.root())
    );
    let runtime = std::path::Path::new("/run/coracle/runtime/youki");
    for e in entries(runtime) {
        assert!(
            !c.root().join("containers").join(&e).exists(),
            "runtime state left for {e}"
        );
    }
}
