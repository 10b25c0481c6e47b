//! `coracle exec` killed early (kill -9 in its first milliseconds, before, during and
//! after the container's exec lock is taken) leaves no helper behind and no lock held:
//! the next exec into the same container completes.

use crate::common::*;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Waits for `child` until `deadline`; on timeout kills it (by its pid) and returns None.
fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pids of live processes whose command line names `id` (exec helpers carry it as
/// `--id ID`; the container's monitor too, so callers compare against a snapshot).
fn processes_naming(id: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let named = cmdline.split(|b| *b == 0).any(|a| a == id.as_bytes());
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.starts_with('Z')))
            .unwrap_or(true);
        if named && !zombie {
            out.push(pid);
        }
    }
    out.sort();
    out
}

/// Each pid's parent, state, kernel wait channel and command line, for a failure's
/// message.
fn describe(pids: &[i32]) -> String {
    let read =
        |p: i32, f: &str| std::fs::read_to_string(format!("/proc/{p}/{f}")).unwrap_or_default();
    pids.iter()
        .map(|&p| {
            let status = read(p, "status");
            let field = |k: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(k))
                    .unwrap_or("")
                    .trim()
                    .to_string()
            };
            format!(
                "\n  {p} ppid {} {} wchan {} [{}]\n{}",
                field("PPid:"),
                field("State:"),
                read(p, "wchan"),
                read(p, "cmdline").replace('\0', " "),
                read(p, "stack"),
            )
        })
        .collect()
}

/// A process's state letter and parent pid (from /proc/PID/stat).
fn state_and_parent(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether `main` or one of its children has stopped itself (the test hook's SIGSTOP).
fn stopped_at_hook(main: i32) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter_map(|p| Some((p, state_and_parent(p)?)))
        .any(|(p, (state, ppid))| state == 'T' && (p == main || ppid == main))
}

/// A small deterministic generator (xorshift) for the kill points: a fixed seed makes
/// every run inject the same faults.
struct Points(u64);

impl Points {
    fn next_ms(&mut self, max: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % (max + 1)
    }
}

fn exec_killed_early_leaves_nothing(runtime: &[&str]) {
    let (_reg, c) = with_busybox();
    let mut args = vec!["run", "-d", "--name", "cx"];
    args.extend_from_slice(runtime);
    args.extend_from_slice(&["box", "sleep", "1000"]);
    c.run(&args).assert_success();
    let id = c.run(["inspect", "-f", "{{.Id}}", "cx"]);
    id.assert_success();
    let id = id.stdout.trim().to_string();
    let before = processes_naming(&id);

    let mut points = Points(0x5eed_c0ac_1e00_0b03);
    for trial in 0..40 {
        // Every 0..30 ms once, then the rest at points the seed picks.
        let ms = if trial <= 30 {
            trial
        } else {
            points.next_ms(30)
        };
        let mut victim = c
            .command(["exec", "cx", "sh", "-c", "echo x"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        let _ = victim.kill();
        let _ = victim.wait();

        let mut next = c
            .command(["exec", "cx", "sh", "-c", "echo x"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_deadline(&mut next, Duration::from_secs(60));
        let out = next.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match status {
            None => panic!(
                "trial {trial}: an exec after one killed at {ms} ms hung (killed after 60 s); \
                 processes naming the container: {}",
                describe(&processes_naming(&id))
            ),
            Some(s) => assert!(
                s.success() && stdout == "x\n",
                "trial {trial} (killed at {ms} ms): the next exec failed: {s:?} {stdout:?} {stderr}"
            ),
        }
    }
    // Helpers die with the exec that started them (they may take a moment to notice).
    let mut left;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        left = processes_naming(&id)
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect::<Vec<_>>();
        if left.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let cmdlines: Vec<String> = left
        .iter()
        .map(|p| {
            String::from_utf8_lossy(
                &std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default(),
            )
            .replace('\0', " ")
        })
        .collect();
    assert!(
        left.is_empty(),
        "processes left behind: {left:?} {cmdlines:?}"
    );
    // Nothing of the killed execs stays in the runtime's state directory.
    let state = std::path::Path::new("/run/coracle/runtime/youki").join(&id);
    if state.is_dir() {
        let junk: Vec<String> = entries(&state)
            .into_iter()
            .filter(|e| e.starts_with("exec-") || e.starts_with("tenant-"))
            .collect();
        assert!(junk.is_empty(), "left in {}: {junk:?}", state.display());
    }
    c.run(["rm", "-f", "cx"]).assert_success();
}

/// Whether `pid` waits for a POSIX lock (/proc/locks lists waiters after `->`).
fn waits_for_lock(pid: u32) -> bool {
    std::fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("->"))
        .any(|l| l.split_whitespace().nth(5) == Some(&pid.to_string()))
}

/// Takes the container's exec lock as an exec of ours would (a POSIX write lock).
fn hold_exec_lock(id: &str) -> std::fs::File {
    use std::os::fd::AsRawFd;
    let path = std::path::Path::new("/run/coracle/runtime/youki")
        .join(id)
        .join("exec.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap();
    // SAFETY: zeroed flock is valid; F_SETLK reads it.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    let rc = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) };
    assert_eq!(
        rc,
        0,
        "lock {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    f
}

#[test]
fn a_waiting_exec_ends_on_sigterm_and_sigint() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run(["run", "-d", "--name", "cw", "box", "sleep", "1000"])
        .assert_success();
    let id = c.run(["inspect", "-f", "{{.Id}}", "cw"]);
    id.assert_success();
    let id = id.stdout.trim().to_string();
    let before = processes_naming(&id);
    let lock = hold_exec_lock(&id);
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut waiting = c
            .command(["exec", "cw", "sh", "-c", "echo x"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = waiting.id();
        wait_until(
            "the exec to wait for the lock",
            Duration::from_secs(30),
            || waits_for_lock(pid),
        );
        // SAFETY: a signal to the child we spawned (not yet reaped).
        unsafe { libc::kill(pid as i32, signal) };
        let status = wait_deadline(&mut waiting, Duration::from_secs(30));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.and_then(|s| s.signal()),
            Some(signal),
            "an exec waiting for the exec lock did not end on signal {signal}"
        );
    }
    drop(lock);
    let out = c.run(["exec", "cw", "sh", "-c", "echo x"]);
    out.assert_success();
    assert_eq!(out.stdout, "x\n");
    let left: Vec<i32> = processes_naming(&id)
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert!(
        left.is_empty(),
        "processes left behind: {}",
        describe(&left)
    );
    c.run(["rm", "-f", "cw"]).assert_success();
}

/// Runs `exec` in `cx` to completion, failing (not hanging) if it does not end.
#[track_caller]
fn next_exec_completes(c: &Coracle, id: &str, what: &str) {
    let mut next = c
        .command(["exec", "cx", "sh", "-c", "echo x"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_deadline(&mut next, Duration::from_secs(60));
    let out = next.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match status {
        None => panic!(
            "{what}: the next exec hung (killed after 60 s); processes naming the container: {}",
            describe(&processes_naming(id))
        ),
        Some(s) => assert!(
            s.success() && stdout == "x\n",
            "{what}: the next exec failed: {s:?} {stdout:?} {stderr}"
        ),
    }
}

/// kill -9 of `coracle exec` at each named point of the exec (the test hook stops the
/// exec, or the process it forks into the container, there).
#[test]
fn exec_killed_at_each_point_leaves_no_lock_and_no_helper() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run(["run", "-d", "--name", "cx", "box", "sleep", "1000"])
        .assert_success();
    let id = c.run(["inspect", "-f", "{{.Id}}", "cx"]);
    id.assert_success();
    let id = id.stdout.trim().to_string();
    let before = processes_naming(&id);
    for point in ["exec-locked", "exec-tenant", "exec-started"] {
        for round in 0..3 {
            let mut victim = c.command(["exec", "cx", "sh", "-c", "echo x"]);
            victim
                .env("CORACLE_TEST_STOP_AT", point)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut victim = victim.spawn().unwrap();
            let main = victim.id() as i32;
            wait_until(
                &format!("exec to stop at {point}"),
                Duration::from_secs(30),
                || stopped_at_hook(main),
            );
            victim.kill().unwrap();
            victim.wait().unwrap();
            next_exec_completes(&c, &id, &format!("{point} #{round}"));
        }
        let mut left = Vec::new();
        wait_until(
            "helpers of killed execs to end",
            Duration::from_secs(20),
            || {
                left = processes_naming(&id)
                    .into_iter()
                    .filter(|p| !before.contains(p))
                    .collect();
                left.is_empty()
            },
        );
    }
    c.run(["rm", "-f", "cx"]).assert_success();
}

#[test]
fn exec_killed_early_leaves_no_lock_and_no_helper() {
    if skip_unless_root() {
        return;
    }
    exec_killed_early_leaves_nothing(&[]);
}
