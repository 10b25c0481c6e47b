//! `coracle exec`, `pause` and `unpause` against real running containers, under the
//! built-in runtime and crun.

use crate::common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A container running `sleep 1000` (or `cmd`) for the length of a test: started by a
/// `coracle run` child process, removed (and that child reaped) when dropped.
struct Running<'a> {
    c: &'a Coracle,
    name: String,
    child: Child,
}

impl<'a> Running<'a> {
    fn start(c: &'a Coracle, name: &str, opts: &[&str], cmd: &[&str]) -> Running<'a> {
        let mut args = vec!["run", "--name", name];
        args.extend_from_slice(opts);
        args.push("box");
        if cmd.is_empty() {
            args.extend_from_slice(&["sleep", "1000"]);
        } else {
            args.extend_from_slice(cmd);
        }
        let child = c
            .command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let running = Running {
            c,
            name: name.to_string(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = c.run(["exec", name, "true"]);
            if out.code == 0 {
                return running;
            }
            assert!(
                Instant::now() < deadline,
                "container {name} never ran: {}",
                out.stderr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["exec"];
        let (flags, cmd): (Vec<&str>, Vec<&str>) = split_flags(args);
        all.extend(flags);
        all.push(&self.name);
        all.extend(cmd);
        self.c.run(all)
    }

    fn id(&self) -> String {
        container_id(self.c, &self.name)
    }
}

fn container_id(c: &Coracle, name: &str) -> String {
    let out = c.run(["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"]);
    out.stdout
        .lines()
        .find_map(|l| l.strip_suffix(&format!(" {name}")))
        .unwrap_or_else(|| panic!("{name} not in ps: {}", out.stdout))
        .to_string()
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.c.run(["unpause", &self.name]);
        let _ = self.c.run(["rm", "-f", &self.name]);
        // Our own child, by pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `["-e", "A=1", "--", "cmd", ...]`: the exec flags before `--`, the command after.
fn split_flags<'s>(args: &[&'s str]) -> (Vec<&'s str>, Vec<&'s str>) {
    match args.iter().position(|a| *a == "--") {
        Some(i) => (args[..i].to_vec(), args[i + 1..].to_vec()),
        None => (Vec::new(), args.to_vec()),
    }
}

fn status_field(text: &str, field: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        .trim()
        .to_string()
}

pub(crate) fn crun_available() -> bool {
    if Command::new("crun").arg("--version").output().is_err() {
        eprintln!("skipped: crun is not installed");
        return false;
    }
    crun_hybrid_cgroup_fix();
    true
}

fn output_and_exit_codes(c: &Coracle, runtime: &[&str]) {
    let r = Running::start(c, "codes", runtime, &[]);
    let out = r.exec(&["echo", "hello"]);
    out.assert_success();
    assert_eq!(out.stdout, "hello\n");
    let out = r.exec(&["sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.code, 3);
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("out\n", "err\n")
    );
    let out = r.exec(&["nosuchcommand"]);
    assert_eq!(out.code, 127, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuchcommand\": executable file not found in $PATH"
        ),
        "{}",
        out.stderr
    );
    let out = r.exec(&["/etc/passwd"]);
    assert_eq!(out.code, 126, "{}", out.stderr);
    assert!(out.stderr.contains("permission denied"), "{}", out.stderr);
    // Killed by a signal: 128 + signal, as docker.
    let out = r.exec(&["sh", "-c", "kill -KILL $$"]);
    assert_eq!(out.code, 137, "{}", out.stderr);
}

fn joins_the_container(c: &Coracle, runtime: &[&str]) {
    let r = Running::start(c, "joins", runtime, &[]);
    // The container's pid namespace: its init is pid 1, and ps sees it.
    let out = r.exec(&["ps", "-o", "pid,args"]);
    out.assert_success();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim().starts_with("1 ") && l.contains("sleep 1000")),
        "{}",
        out.stdout
    );
    // Its cgroup, mount namespace and hostname.
    let out = r.exec(&[
        "sh",
        "-c",
        "cat /proc/self/cgroup; echo --; cat /proc/1/cgroup; echo --; hostname; cat /etc/hostname",
    ]);
    out.assert_success();
    let parts: Vec<&str> = out.stdout.split("--\n").collect();
    assert_eq!(parts[0], parts[1], "{}", out.stdout);
    let names: Vec<&str> = parts[2].lines().collect();
    assert_eq!(names[0], names[1]);
    assert!(r.id().starts_with(names[0]), "{names:?}");
    // Security: the container's capabilities and seccomp filter, default SIGPIPE.
    let out = r.exec(&["cat", "/proc/self/status", "/proc/1/status"]);
    out.assert_success();
    let (mine, init) = out.stdout.split_at(out.stdout.find("\nName:").unwrap() + 1);
    assert_eq!(status_field(mine, "CapEff"), "00000000a80425fb");
    assert_eq!(status_field(mine, "CapBnd"), status_field(init, "CapBnd"));
    assert_eq!(status_field(mine, "Seccomp"), "2");
    assert_eq!(status_field(init, "Seccomp"), "2");
    assert_eq!(
        status_field(mine, "NoNewPrivs"),
        status_field(init, "NoNewPrivs")
    );
    // SIGPIPE (bit 12) is not ignored, whatever coracle itself does with it.
    let ign = u64::from_str_radix(&status_field(mine, "SigIgn"), 16).unwrap();
    assert_eq!(ign & (1 << 12), 0, "{mine}");
    // The filter is docker's: unshare(2) is refused without CAP_SYS_ADMIN.
    let out = r.exec(&["unshare", "-U", "true"]);
    assert_ne!(out.code, 0, "{}", out.stdout);
    // --privileged: more capabilities (CAP_SYS_ADMIN is bit 21).
    let out = r.exec(&["--privileged", "--", "grep", "CapEff", "/proc/self/status"]);
    out.assert_success();
    let eff = u64::from_str_radix(status_field(&out.stdout, "CapEff").as_str(), 16).unwrap();
    assert_ne!(eff & (1 << 21), 0, "{}", out.stdout);
    assert_eq!(eff & 0xa80425fb, 0xa80425fb);
    // Another user loses them at execve, as in docker.
    let out = r.exec(&["-u", "nobody", "--", "grep", "CapEff", "/proc/self/status"]);
    assert_eq!(status_field(&out.stdout, "CapEff"), "0000000000000000");
}

fn pause_and_unpause(c: &Coracle, runtime: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let vol = format!("{}:/out", dir.path().display());
    let mut opts = vec!["-v", vol.as_str()];
    opts.extend_from_slice(runtime);
    let loop_cmd = "i=0; while true; do i=$((i+1)); echo $i > /out/n.tmp; mv /out/n.tmp /out/n; sleep 0.02; done";
    let r = Running::start(c, "frozen", &opts, &["sh", "-c", loop_cmd]);
    let counter = || -> u64 {
        std::fs::read_to_string(dir.path().join("n"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    let advancing = || {
        let a = counter();
        std::thread::sleep(Duration::from_millis(400));
        counter() > a
    };
    assert!(advancing(), "the counter runs");

    let out = c.run(["pause", "frozen"]);
    out.assert_success();
    assert_eq!(out.stdout, "frozen\n");
    std::thread::sleep(Duration::from_millis(100));
    assert!(!advancing(), "a paused container does not run");
    let ps = c.run(["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert!(ps.stdout.contains("frozen paused"), "{}", ps.stdout);
    let out = c.run(["pause", "frozen"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("is already paused"), "{}", out.stderr);
    let out = r.exec(&["true"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("Container frozen is paused, unpause the container before exec"),
        "{}",
        out.stderr
    );

    let out = c.run(["unpause", "frozen"]);
    out.assert_success();
    assert_eq!(out.stdout, "frozen\n");
    assert!(advancing(), "an unpaused container runs again");
    let ps = c.run(["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert!(ps.stdout.contains("frozen running"), "{}", ps.stdout);
    let out = c.run(["unpause", "frozen"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("is not paused"), "{}", out.stderr);
    r.exec(&["true"]).assert_success();
}

fn terminal(c: &Coracle, runtime: &[&str]) {
    let r = Running::start(c, "term", runtime, &[]);
    // `script` gives coracle a terminal of its own, here 30 rows by 100 columns.
    let in_script = |exec_args: &str, stdin: &[u8]| {
        let cmd = format!(
            "stty rows 30 cols 100; {} {} --root {} exec {exec_args}",
            netns(c).nsenter_prefix(),
            c.bin().display(),
            c.root().display()
        );
        let mut child = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        text
    };
    // The built-in runtime sizes the pty before the process runs. crun 1.8 may start it
    // before applying consoleSize, and we size the pty once we hold its master: under
    // crun the process waits for the size itself (bounded by a count, not a clock).
    let size = if runtime.is_empty() {
        "stty size"
    } else {
        r#"i=0; while [ "$(stty size 2>/dev/null)" != "30 100" ] && [ $i -lt 20000 ]; do i=$((i+1)); done; stty size"#
    };
    let text = in_script(
        &format!("-t term sh -c '{size}; tty; echo TERM=$TERM'"),
        b"",
    );
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("30 100"), "{text}");
    assert!(text.contains("TERM=xterm"), "{text}");
    // -i: what we type reaches the process through its terminal.
    let text = in_script("-it term sh -c 'read line; echo got:$line'", b"typed\n");
    assert!(text.contains("got:typed"), "{text}");
    // Without -t: no terminal, no TERM.
    let out = r.exec(&["sh", "-c", "tty; echo TERM=$TERM"]);
    assert_eq!(out.stdout, "not a tty\nTERM=\n");
}

#[test]
fn output_and_exit_codes_youki() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    output_and_exit_codes(&c, &[]);
    let out = c.run(["exec", "nosuch", "true"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("No such container: nosuch"),
        "{}",
        out.stderr
    );
}

#[test]
fn joins_namespaces_cgroup_and_security_youki() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    joins_the_container(&c, &[]);
}

#[test]
fn pause_and_unpause_youki() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    pause_and_unpause(&c, &[]);
}

#[test]
fn terminal_youki() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    terminal(&c, &[]);
}

#[test]
fn the_same_under_crun() {
    if skip_unless_root() {
        return;
    }
    if !crun_available() {
        return;
    }
    let (_reg, c) = with_busybox();
    let crun = ["--runtime", "crun"];
    output_and_exit_codes(&c, &crun);
    joins_the_container(&c, &crun);
    pause_and_unpause(&c, &crun);
    terminal(&c, &crun);
}

#[test]
fn env_workdir_user_and_stdin() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let r = Running::start(
        &c,
        "envs",
        &[
            "-e",
            "FROM_RUN=1",
            "-e",
            "KEEP=run",
            "-w",
            "/srv",
            "--ulimit",
            "nofile=100:200",
        ],
        &[],
    );
    let out = r.exec(&[
        "sh",
        "-c",
        "echo $FROM_RUN $KEEP $HOME; pwd; id -u; ulimit -n",
    ]);
    assert_eq!(out.stdout, "1 run /root\n/srv\n0\n100\n");
    let env_file = c.tmp().join("env");
    std::fs::write(&env_file, "# comment\nFILE=f\nKEEP=file\n").unwrap();
    let env_file = env_file.to_str().unwrap();
    let out = r.exec(&[
        "-e",
        "FROM_RUN=2",
        "--env-file",
        env_file,
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "--",
        "sh",
        "-c",
        "echo $FROM_RUN $KEEP $FILE $HOME; pwd; id -u; id -g",
    ]);
    assert_eq!(
        out.stdout, "2 file f /nonexistent\n/tmp\n65534\n65534\n",
        "{}",
        out.stderr
    );
    let out = r.exec(&["-u", "1234:5678", "--", "id"]);
    assert!(
        out.stdout.starts_with("uid=1234 gid=5678"),
        "{}",
        out.stdout
    );
    let out = r.exec(&["-w", "/nonexistent", "--", "pwd"]);
    assert_eq!(out.code, 126);
    assert!(
        out.stderr.contains(
            "chdir to cwd (\"/nonexistent\") set in config.json failed: no such file or directory"
        ),
        "{}",
        out.stderr
    );
    let out = r.exec(&["-u", "ghost", "--", "id"]);
    assert_eq!(out.code, 126);
    assert!(
        out.stderr.contains("unable to find user ghost"),
        "{}",
        out.stderr
    );
    // stdin only with -i.
    let out = c.run_stdin(["exec", "-i", "envs", "cat"], b"through stdin\n");
    assert_eq!(out.stdout, "through stdin\n");
    let out = c.run_stdin(["exec", "envs", "cat"], b"through stdin\n");
    assert_eq!(out.stdout, "");
}

#[test]
fn detached_exec_and_refusals() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let r = Running::start(&c, "bg", &[], &[]);
    // The detached command finishes only once the test lets it (or after 30 s, so a
    // waiting `-d` fails below instead of hanging): `-d` returning with no /tmp/bg yet
    // is what shows it does not wait, whatever the clock says.
    let gated = "i=0; while [ ! -e /tmp/go ] && [ $i -lt 600 ]; do i=$((i+1)); sleep 0.05; done; \
                 echo done > /tmp/bg";
    let out = r.exec(&["-d", "--", "sh", "-c", gated]);
    out.assert_success();
    assert_eq!(out.stdout, "");
    let out = r.exec(&["test", "-e", "/tmp/bg"]);
    assert_eq!(out.code, 1, "-d returned before its command ended: {out:?}");
    r.exec(&["touch", "/tmp/go"]).assert_success();
    let deadline = Instant::now() + Duration::from_secs(20);
    while r.exec(&["cat", "/tmp/bg"]).stdout != "done\n" {
        assert!(Instant::now() < deadline, "the detached command never ran");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = r.exec(&["--detach-keys", "ctrl-x", "--", "true"]);
    assert_eq!(out.code, 125);
    assert!(out.stderr.contains("--detach-keys"), "{}", out.stderr);

    // A stopped container: docker's refusal, exit 1.
    c.run(["run", "--name", "done", "box", "true"])
        .assert_success();
    let id = container_id(&c, "done");
    let out = c.run(["exec", "done", "true"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains(&format!("container {id} is not running")),
        "{}",
        out.stderr
    );
    let out = c.run(["pause", "done", "bg"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("is not running"), "{}", out.stderr);
    assert_eq!(out.stdout, "bg\n");
    let out = c.run(["unpause", "bg"]);
    out.assert_success();
    c.run(["rm", "done"]).assert_success();
}

#[test]
fn the_hidden_session_runs_a_prepared_process() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let r = Running::start(&c, "hidden", &[], &[]);
    let process = serde_json::json!({
        "args": ["sh", "-c", "echo from $WHO; exit 5"],
        "env": ["PATH=/bin", "WHO=session"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
    });
    let out = c.run(["__exec", "--id", &r.id(), "--process", &process.to_string()]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert_eq!(out.stdout, "from session\n");
}

#[test]
fn concurrent_execs_all_run_and_leave_nothing_behind() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let r = Running::start(&c, "busy", &[], &[]);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let c = &c;
                s.spawn(move || {
                    for j in 0..4 {
                        let word = format!("{i}-{j}");
                        let out = c.run(["exec", "busy", "echo", &word]);
                        assert_eq!(out.code, 0, "{}", out.stderr);
                        assert_eq!(out.stdout, format!("{word}\n"));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    // libcontainer's per-exec sockets are gone from the container's runtime state.
    let state = std::path::Path::new("/run/coracle/runtime/youki").join(r.id());
    let left: Vec<String> = entries(&state)
        .into_iter()
        .filter(|e| e.starts_with("tenant-") || e.starts_with("exec-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn signals_to_exec_reach_the_process() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let _r = Running::start(&c, "sig", &[], &[]);
    let mut child = c
        .command([
            "exec",
            "sig",
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    // Our own child, by pid: coracle passes the signal on to the exec'd process.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(42));
}
