//! `coracle run` in the foreground, observed from inside real containers.

use crate::common::*;

fn no_leftovers(c: &Coracle) {
    assert!(
        entries(&c.root().join("containers")).is_empty(),
        "container dirs left"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(c.root().to_str().unwrap()),
        "mounts left under the store"
    );
}

#[test]
fn runs_a_command_and_returns_its_exit_code() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let out = run(&c, &["box", "echo", "hello"]);
    out.assert_success();
    assert_eq!(out.stdout, "hello\n");
    let out = run(&c, &["box", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.code, 3);
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    no_leftovers(&c);
}

#[test]
fn signals_to_run_reach_the_container() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let mut child = c
        .command([
            "run",
            "--rm",
            "box",
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    // Our own child, by pid: docker's sig-proxy forwards it to the container.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(42));
    no_leftovers(&c);
}

/// A container starts with no signal ignored, whatever the caller ignored (`nohup`
/// ignores SIGHUP, a background job SIGINT and SIGQUIT): an ignored signal survives
/// exec, and it reached the container through the monitor and the runtime.
#[test]
fn signals_the_caller_ignores_are_not_ignored_in_the_container() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    for runtime in [&[][..], &["--runtime", "crun"][..]] {
        if !runtime.is_empty() && !crate::exec::crun_available() {
            continue;
        }
        for detached in [false, true] {
            let mut args = vec!["run"];
            args.extend_from_slice(runtime);
            args.extend(["--name", "ign", "box", "cat", "/proc/self/status"]);
            if detached {
                args.insert(1, "-d");
            }
            let mut cmd = c.command(&args);
            // SAFETY: only sigaction between fork and exec.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                    for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGUSR1] {
                        libc::signal(sig, libc::SIG_IGN);
                    }
                    Ok(())
                });
            }
            let out = cmd.output().unwrap();
            assert!(out.status.success(), "{runtime:?} {out:?}");
            c.run(["wait", "ign"]).assert_success();
            let logs = c.run(["logs", "ign"]);
            let ignored = logs.stdout.lines().find(|l| l.starts_with("SigIgn:"));
            assert_eq!(
                ignored,
                Some("SigIgn:\t0000000000000000"),
                "{runtime:?} detached={detached}"
            );
            c.run(["rm", "ign"]).assert_success();
        }
    }
}

#[test]
fn docker_exit_codes_for_failures() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let out = run(&c, &["box", "nosuchcommand"]);
    assert_eq!(out.code, 127, "{}", out.stderr);
    assert!(out.stderr.contains("nosuchcommand"), "{}", out.stderr);
    let out = run(&c, &["box", "/etc/passwd"]);
    assert_eq!(out.code, 126, "{}", out.stderr);
    let out = run(&c, &["--pull", "never", "nosuch/image:1", "true"]);
    assert_eq!(out.code, 125);
    assert!(out.stderr.contains("No such image"), "{}", out.stderr);
    let out = run(&c, &["--memory", "12x", "box", "true"]);
    assert_eq!(out.code, 125);
    assert!(out.stderr.contains("12x"), "{}", out.stderr);
    let out = run(
        &c,
        &[
            "--mount",
            "type=bind,source=/nonexistent/src,target=/x",
            "box",
            "true",
        ],
    );
    assert_eq!(out.code, 125);
    assert!(out.stderr.contains("/nonexistent/src"), "{}", out.stderr);
    let out = run(&c, &["-v", "a/b:/x", "box", "true"]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    no_leftovers(&c);
}

#[test]
fn entrypoint_cmd_env_workdir_user_hostname() {
    if skip_unless_root() {
        return;
    }
    let reg = Registry::start().unwrap();
    let image = busybox_builder()
        .entrypoint(&["echo", "ep"])
        .cmd(&["default-arg"])
        .env(&["FROM_IMAGE=1", "PATH=/bin:/usr/bin"])
        .working_dir("/srv")
        .build();
    push(&reg.host(), "test/ep", "latest", &image, None).unwrap();
    let mut c = coracle();
    let name = format!("{}/test/ep", reg.host());
    c.run(["pull", "-q", &name]).assert_success();
    c.isolate_network();

    assert_eq!(run(&c, &[&name]).stdout, "ep default-arg\n");
    assert_eq!(run(&c, &[&name, "x", "y"]).stdout, "ep x y\n");
    assert_eq!(run(&c, &["--entrypoint", "pwd", &name]).stdout, "/srv\n");
    assert_eq!(
        run(&c, &["--entrypoint", "pwd", "-w", "/made/here", &name]).stdout,
        "/made/here\n"
    );
    let env = run(
        &c,
        &[
            "--entrypoint",
            "env",
            "-e",
            "A=1",
            "-e",
            "FROM_IMAGE=2",
            &name,
        ],
    )
    .stdout;
    assert!(
        env.contains("A=1\n")
            && env.contains("FROM_IMAGE=2\n")
            && env.contains("PATH=/bin:/usr/bin\n"),
        "{env}"
    );
    let id = run(&c, &["--entrypoint", "id", "-u", "1000:1000", &name]).stdout;
    assert!(id.starts_with("uid=1000 gid=1000"), "{id}");
    let id = run(&c, &["--entrypoint", "id", "-u", "nobody", &name]).stdout;
    assert!(id.starts_with("uid=65534"), "{id}");
    let host = run(
        &c,
        &["--entrypoint", "hostname", "--hostname", "boat", &name],
    )
    .stdout;
    assert_eq!(host, "boat\n");
}

#[test]
fn default_isolation_matches_docker() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let status = run(&c, &["box", "cat", "/proc/self/status"]).stdout;
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .unwrap_or_default()
    };
    // docker's 14 default capabilities.
    assert_eq!(field("CapEff:"), "00000000a80425fb", "{status}");
    assert_eq!(field("Seccomp:"), "2");
    assert_eq!(field("NoNewPrivs:"), "0");
    let dropped = run(
        &c,
        &["--cap-drop", "ALL", "box", "cat", "/proc/self/status"],
    )
    .stdout;
    assert!(dropped.contains("CapEff:\t0000000000000000"), "{dropped}");
    let priv_ = run(&c, &["--privileged", "box", "cat", "/proc/self/status"]).stdout;
    assert!(priv_.contains("Seccomp:\t0"), "{priv_}");
    let nnp = run(
        &c,
        &[
            "--security-opt",
            "no-new-privileges",
            "box",
            "cat",
            "/proc/self/status",
        ],
    )
    .stdout;
    assert!(nnp.contains("NoNewPrivs:\t1"), "{nnp}");
    // pid 1 is the command: a new pid namespace.
    assert_eq!(run(&c, &["box", "sh", "-c", "echo $$"]).stdout, "1\n");
    // masked and read-only paths
    assert_eq!(run(&c, &["box", "cat", "/proc/kcore"]).stdout, "");
    assert_ne!(
        run(&c, &["box", "sh", "-c", "echo 1 > /proc/sys/kernel/shmmax"]).code,
        0
    );
    // --network none: only loopback
    let links = run(&c, &["--network", "none", "box", "ls", "/sys/class/net"]).stdout;
    assert_eq!(links.trim(), "lo");
}

#[test]
fn read_only_rootfs_with_tmpfs() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    assert_ne!(run(&c, &["--read-only", "box", "touch", "/x"]).code, 0);
    run(
        &c,
        &["--read-only", "--tmpfs", "/tmp", "box", "touch", "/tmp/x"],
    )
    .assert_success();
}

#[test]
fn bind_mounts_and_named_volumes() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let host = c.tmp().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in.txt"), "from host").unwrap();
    let spec = format!("{}:/data", host.display());
    let out = run(
        &c,
        &[
            "-v",
            &spec,
            "box",
            "sh",
            "-c",
            "cat /data/in.txt; echo back > /data/out.txt",
        ],
    );
    out.assert_success();
    assert_eq!(out.stdout, "from host");
    assert_eq!(
        std::fs::read_to_string(host.join("out.txt")).unwrap(),
        "back\n"
    );
    let ro = format!("{}:/data:ro", host.display());
    assert_ne!(run(&c, &["-v", &ro, "box", "touch", "/data/x"]).code, 0);

    // A new named volume starts with the image's content at its mount point.
    let out = run(
        &c,
        &[
            "-v",
            "vol1:/etc",
            "box",
            "sh",
            "-c",
            "cat /etc/passwd | head -n1; echo kept > /etc/new",
        ],
    );
    out.assert_success();
    assert!(out.stdout.starts_with("root:"), "{}", out.stdout);
    assert_eq!(
        run(&c, &["-v", "vol1:/v", "box", "cat", "/v/new"]).stdout,
        "kept\n"
    );
    let ls = c.run(["volume", "ls", "-q"]);
    assert_eq!(ls.stdout, "vol1\n");
}

#[test]
fn cgroup_limits_are_visible_and_enforced() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let mem = run(&c, &["--memory", "64m", "box", "sh", "-c",
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"]);
    assert_eq!(mem.stdout.trim(), "67108864", "{}", mem.stderr);
    let pids = run(
        &c,
        &[
            "--pids-limit",
            "20",
            "box",
            "sh",
            "-c",
            "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max",
        ],
    );
    assert_eq!(pids.stdout.trim(), "20", "{}", pids.stderr);
    // Over the memory limit: OOM-killed, exit 137.
    let oom = run(
        &c,
        &[
            "--memory",
            "16m",
            "--memory-swap",
            "16m",
            "box",
            "sh",
            "-c",
            "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
        ],
    );
    assert_eq!(oom.code, 137, "{}", oom.stderr);
    no_leftovers(&c);
}

#[test]
fn the_same_container_runs_under_crun() {
    if skip_unless_root() {
        return;
    }
    if std::process::Command::new("crun")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: crun is not installed");
        return;
    }
    crun_hybrid_cgroup_fix();
    let (_reg, c) = with_busybox();
    let out = run(
        &c,
        &[
            "--runtime",
            "crun",
            "box",
            "sh",
            "-c",
            "echo $$; grep CapEff /proc/self/status",
        ],
    );
    out.assert_success();
    assert_eq!(out.stdout, "1\nCapEff:\t00000000a80425fb\n");
}

#[test]
fn a_terminal_is_a_real_pty() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    // `script` gives coracle a terminal of its own; nsenter keeps it in the test's
    // network namespace.
    let cmd = format!(
        "{} {} --root {} run --rm -t box sh -c 'tty; stty size'",
        netns(&c).nsenter_prefix(),
        c.bin().display(),
        c.root().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("COLUMNS", "100")
        .env("LINES", "30")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("/dev/pts/0"), "{text}");
}
