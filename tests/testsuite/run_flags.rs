//! The rest of `run`'s flags, each observed from inside the container.

use crate::common::*;

fn sh(c: &Coracle, flags: &[&str], script: &str) -> Output {
    let mut args: Vec<&str> = flags.to_vec();
    args.extend_from_slice(&["box", "sh", "-c", script]);
    run(c, &args)
}

#[test]
fn init_reaps_and_forwards() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let out = sh(
        &c,
        &["--init"],
        "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $PPID",
    );
    out.assert_success();
    assert!(
        out.stdout.starts_with("/sbin/docker-init -- sh -c"),
        "{}",
        out.stdout
    );
    // The command is pid 1's child, not pid 1.
    assert_eq!(out.stdout.lines().nth(1), Some("1"));
    // Exit status passes through the init.
    assert_eq!(sh(&c, &["--init"], "exit 5").code, 5);
}

#[test]
fn ulimits_shm_sysctl_and_namespaces() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    assert_eq!(
        sh(
            &c,
            &["--ulimit", "nofile=1024:2048"],
            "ulimit -n; ulimit -Hn"
        )
        .stdout,
        "1024\n2048\n"
    );
    // Above the caller's hard limit (20000 here): refused, not silently clamped.
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap();
    let too_high = format!("nofile={}:{}", hard + 1, hard + 1);
    let out = run(&c, &["--ulimit", &too_high, "box", "true"]);
    assert_eq!(out.code, 125, "{}", out.stderr);

    let shm = sh(
        &c,
        &["--shm-size", "32m"],
        "df -k /dev/shm | tail -n1 | awk '{print $2}'",
    );
    assert_eq!(shm.stdout.trim(), "32768");
    let out = sh(
        &c,
        &["--sysctl", "kernel.shmmax=123456"],
        "cat /proc/sys/kernel/shmmax",
    );
    assert_eq!(out.stdout.trim(), "123456", "{}", out.stderr);
    let bad = run(&c, &["--sysctl", "vm.swappiness=1", "box", "true"]);
    assert_eq!(
        bad.code, 125,
        "non-namespaced sysctl refused: {}",
        bad.stderr
    );

    let host_uts = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(sh(&c, &["--uts", "host"], "hostname").stdout, host_uts);
    // With the host's pid namespace, pid 1 is the host's init, not us.
    assert_ne!(sh(&c, &["--pid", "host"], "echo $$").stdout, "1\n");
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    let ipc = sh(&c, &["--ipc", "host"], "readlink /proc/self/ns/ipc");
    assert_eq!(ipc.stdout.trim(), host_ipc.to_str().unwrap());
    // "host" is the test's network namespace, given a link of its own to recognise.
    netns(&c).add_host_address("192.0.2.10/24");
    let net = sh(&c, &["--network", "host"], "ls /sys/class/net");
    assert!(
        net.stdout.lines().any(|l| l == "hostaddr0"),
        "host network shows the host's links: {}",
        net.stdout
    );
}

#[test]
fn devices_and_cpu_settings() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let out = sh(
        &c,
        &["--device", "/dev/null:/dev/mynull"],
        "ls -l /dev/mynull; echo x > /dev/mynull && echo ok",
    );
    assert!(
        out.stdout.contains("1,") && out.stdout.contains("ok"),
        "{} {}",
        out.stdout,
        out.stderr
    );
    let out = run(&c, &["--device", "/dev/nosuch", "box", "true"]);
    assert_eq!(out.code, 125);

    let quota = sh(
        &c,
        &["--cpus", "1.5"],
        "cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us",
    );
    assert!(
        quota.stdout.starts_with("150000"),
        "{} {}",
        quota.stdout,
        quota.stderr
    );
    let cpuset = sh(
        &c,
        &["--cpuset-cpus", "0"],
        "cat /sys/fs/cgroup/cpuset.cpus 2>/dev/null || cat /sys/fs/cgroup/cpuset/cpuset.cpus",
    );
    assert_eq!(cpuset.stdout.trim(), "0", "{}", cpuset.stderr);
    let shares = sh(
        &c,
        &["--cpu-shares", "512"],
        "cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight",
    );
    assert!(
        !shares.stdout.trim().is_empty() && shares.stdout.trim() != "1024",
        "{}",
        shares.stdout
    );
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    // Shell builtins only for counting: once the limit is reached nothing can fork.
    let bomb = "i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done; \
                n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo $n";
    let limited = sh(&c, &["--pids-limit", "16"], bomb);
    assert_ne!(limited.code, 0);
    assert!(limited.stderr.contains("can't fork"), "{}", limited.stderr);
    // The same script under a higher limit starts all 40.
    let roomy = sh(&c, &["--pids-limit", "100"], bomb);
    roomy.assert_success();
    assert!(
        roomy.stdout.trim().parse::<u32>().unwrap() > 40,
        "{}",
        roomy.stdout
    );
}

#[test]
fn env_file_caller_env_and_group_add() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let file = c.tmp().join("env.list");
    std::fs::write(&file, "# comment\nFROM_FILE=yes\n\nCALLER_VAR\n").unwrap();
    let mut cmd = c.command([
        "run",
        "--rm",
        "--env-file",
        file.to_str().unwrap(),
        "-e",
        "CALLER_VAR",
        "-e",
        "MISSING_VAR",
        "box",
        "env",
    ]);
    cmd.env("CALLER_VAR", "from-caller");
    cmd.env_remove("MISSING_VAR");
    let out = cmd.output().unwrap();
    let env = String::from_utf8_lossy(&out.stdout);
    assert!(env.contains("FROM_FILE=yes\n"), "{env}");
    assert!(env.contains("CALLER_VAR=from-caller\n"), "{env}");
    assert!(!env.contains("MISSING_VAR"), "{env}");
    assert!(env.contains("PATH="), "{env}");
    let id = sh(
        &c,
        &["-u", "1000", "--group-add", "27", "--group-add", "wheelish"],
        "id",
    );
    assert_eq!(
        id.code, 125,
        "an unknown group name is an error: {}",
        id.stderr
    );
    let id = sh(&c, &["-u", "1000", "--group-add", "27"], "id -G");
    assert_eq!(id.stdout.trim(), "0 27");
}

#[test]
fn mount_flag_volumes_tmpfs_and_seccomp_profiles() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let out = sh(
        &c,
        &["--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m"],
        "grep ' /scratch ' /proc/mounts",
    );
    assert!(
        out.stdout.contains("tmpfs") && out.stdout.contains("size=1024k"),
        "{}",
        out.stdout
    );
    sh(
        &c,
        &["--mount", "type=volume,source=mvol,target=/m"],
        "echo hi > /m/f",
    )
    .assert_success();
    assert_eq!(
        sh(
            &c,
            &["--mount", "type=volume,source=mvol,target=/m,readonly"],
            "cat /m/f"
        )
        .stdout,
        "hi\n"
    );
    assert_ne!(
        sh(
            &c,
            &["--mount", "type=volume,source=mvol,target=/m,readonly"],
            "touch /m/g"
        )
        .code,
        0
    );

    // A docker-format profile that denies mkdir.
    let profile = c.tmp().join("deny-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let out = sh(&c, &["--security-opt", &opt], "mkdir /tmp/x");
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("Operation not permitted"),
        "{}",
        out.stderr
    );
    sh(
        &c,
        &["--security-opt", "seccomp=unconfined"],
        "mkdir /tmp/x",
    )
    .assert_success();
}

#[test]
fn images_with_many_layers_run() {
    if skip_unless_root() {
        return;
    }
    let reg = Registry::start().unwrap();
    let mut b = ImageBuilder::new().layer(&Layer::busybox());
    for i in 0..64 {
        b = b.layer(&Layer::new().file(&format!("layer{i:02}"), format!("{i}"), 0o644));
    }
    let image = b.cmd(&["sh"]).build();
    push(&reg.host(), "test/deep", "latest", &image, None).unwrap();
    let c = coracle();
    let name = format!("{}/test/deep", reg.host());
    // `run` pulls from the registry on the host's loopback, so it stays in the host's
    // namespace; --network none keeps the container off any bridge.
    let out = c.run([
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "sh",
        "-c",
        "ls / | grep -c '^layer'",
    ]);
    out.assert_success();
    assert_eq!(out.stdout.trim(), "64");
}

#[test]
fn run_pulls_a_missing_image_and_keeps_stdout_for_the_container() {
    if skip_unless_root() {
        return;
    }
    let (reg, _image) = registry_with_busybox();
    let c = coracle();
    let name = format!("{}/test/busybox", reg.host());
    // The pull needs the host's loopback (the registry); --network none keeps the
    // container off any bridge in the host's namespace.
    let out = c.run([
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "echo",
        "only this",
    ]);
    out.assert_success();
    assert_eq!(out.stdout, "only this\n", "pull progress stays off stdout");
    assert!(out.stderr.contains("Pull complete"), "{}", out.stderr);
}

#[test]
fn without_rm_the_container_is_kept_as_exited() {
    if skip_unless_root() {
        return;
    }
    let (reg, c) = with_busybox();
    let out = c.run(["run", "--name", "keeper", "box", "sh", "-c", "exit 4"]);
    assert_eq!(out.code, 4);
    let again = c.run(["run", "--name", "keeper", "box", "true"]);
    assert_eq!(again.code, 125);
    assert!(
        again.stderr.contains("is already in use"),
        "{}",
        again.stderr
    );
    let bad = c.run(["run", "--name", "bad/name", "box", "true"]);
    assert_eq!(bad.code, 125);

    let ps = c.run([
        "ps",
        "-a",
        "--format",
        "{{.Names}} {{.Status}} {{.Command}}",
    ]);
    assert!(ps.stdout.starts_with("keeper Exited (4) "), "{}", ps.stdout);
    assert!(
        ps.stdout.trim_end().ends_with("\"sh -c 'exit 4'\""),
        "{}",
        ps.stdout
    );
    assert!(c.run(["ps", "-q"]).stdout.is_empty(), "nothing running");
    let table = c.run(["ps", "-a"]);
    assert!(
        table.stdout.starts_with("CONTAINER ID   IMAGE"),
        "{}",
        table.stdout
    );

    // The image is in use: removing its last name is refused until the container is
    // removed (other names go, as docker untags them).
    c.run(["rmi", "box"]).assert_success();
    let rmi = c.run(["rmi", &format!("{}/test/busybox", reg.host())]);
    assert_eq!(rmi.code, 1);
    assert!(
        rmi.stderr.contains("is using its referenced image"),
        "{}",
        rmi.stderr
    );
    c.run(["rm", "keeper"]).assert_success();
    assert!(c.run(["ps", "-aq"]).stdout.is_empty());
    assert!(entries(&c.root().join("containers")).is_empty());
    assert_eq!(c.run(["rm", "keeper"]).code, 1);
}

#[test]
fn rm_force_kills_a_running_container() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let mut child = c
        .command([
            "run",
            "--name",
            "sleeper",
            "box",
            "sh",
            "-c",
            "echo up; sleep 60",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "up\n");
    let ps = c.run(["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps.stdout, "sleeper running\n");
    // While it runs its cgroups exist; they must be gone once it is removed.
    let id = c.run(["ps", "-q", "--no-trunc"]).stdout.trim().to_string();
    let cgroups: Vec<std::path::PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.path().join("coracle").join(&id))
        .filter(|p| p.exists())
        .collect();
    assert!(!cgroups.is_empty(), "the running container has cgroups");
    let refused = c.run(["rm", "sleeper"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("container is running"),
        "{}",
        refused.stderr
    );
    c.run(["rm", "-f", "sleeper"]).assert_success();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(137));
    for cg in &cgroups {
        assert!(!cg.exists(), "cgroup left: {}", cg.display());
    }
    assert!(c.run(["ps", "-aq"]).stdout.is_empty());
    assert!(entries(&c.root().join("containers")).is_empty());
}

#[test]
fn stdin_relative_binds_etc_files_and_symlinked_targets() {
    if skip_unless_root() {
        return;
    }
    let reg = Registry::start().unwrap();
    // An image whose /escape points out of the rootfs: mount targets under it must
    // still land inside the container.
    let image = busybox_builder()
        .layer(&Layer::new().symlink("escape", "../../../../../../tmp"))
        .build();
    push(&reg.host(), "test/sym", "latest", &image, None).unwrap();
    let mut c = coracle();
    let name = format!("{}/test/sym", reg.host());
    c.run(["pull", "-q", &name]).assert_success();
    c.isolate_network();

    let out = c.run_stdin(["run", "--rm", "-i", &name, "cat"], b"piped in\n");
    assert_eq!(out.stdout, "piped in\n");
    let out = c.run_stdin(["run", "--rm", &name, "cat"], b"not forwarded\n");
    assert_eq!(out.stdout, "", "without -i the container reads /dev/null");

    let workdir = c.tmp().join("work");
    std::fs::create_dir_all(workdir.join("rel")).unwrap();
    std::fs::write(workdir.join("rel/file"), "relative").unwrap();
    let out = c
        .command([
            "run",
            "--rm",
            "-v",
            "./rel:/data",
            &name,
            "cat",
            "/data/file",
        ])
        .current_dir(&workdir)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "relative");

    let marker = format!("coracle-mount-escape-{}", std::process::id());
    let host_dir = c.tmp().join("src");
    std::fs::create_dir_all(&host_dir).unwrap();
    let spec = format!("{}:/escape/{marker}", host_dir.display());
    let out = c.run(["run", "--rm", "-v", &spec, &name, "true"]);
    out.assert_success();
    assert!(
        !std::path::Path::new("/tmp").join(&marker).exists(),
        "mount target escaped to the host"
    );

    let hosts = c.run([
        "run",
        "--rm",
        "--hostname",
        "vessel",
        &name,
        "cat",
        "/etc/hosts",
        "/etc/hostname",
    ]);
    assert!(
        hosts.stdout.contains("127.0.0.1\tlocalhost"),
        "{}",
        hosts.stdout
    );
    assert!(hosts.stdout.ends_with("vessel\n"), "{}", hosts.stdout);
    let resolv = c.run(["run", "--rm", &name, "cat", "/etc/resolv.conf"]);
    assert!(resolv.stdout.contains("nameserver"), "{}", resolv.stdout);
    assert!(
        !resolv.stdout.contains("nameserver 127."),
        "loopback resolvers replaced: {}",
        resolv.stdout
    );
}

#[test]
fn volume_commands_and_cgroups_removed_after_exit() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    assert_eq!(c.run(["volume", "create", "data1"]).stdout, "data1\n");
    let inspect = c.run(["volume", "inspect", "data1"]);
    let v: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(v[0]["Name"], "data1");
    assert_eq!(v[0]["Driver"], "local");
    assert!(v[0]["Mountpoint"]
        .as_str()
        .unwrap()
        .ends_with("volumes/data1/_data"));
    c.run(["run", "--name", "user", "-v", "data1:/d", "box", "true"])
        .assert_success();
    let busy = c.run(["volume", "rm", "data1"]);
    assert_eq!(busy.code, 1);
    assert!(busy.stderr.contains("volume is in use"), "{}", busy.stderr);

    // The exited container's cgroups are gone from every hierarchy.
    let id = c.run(["ps", "-aq", "--no-trunc"]).stdout.trim().to_string();
    assert_eq!(id.len(), 64);
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let leftover = entry.path().join("coracle").join(&id);
        assert!(!leftover.exists(), "cgroup left: {}", leftover.display());
    }
    c.run(["rm", "user"]).assert_success();
    c.run(["volume", "rm", "data1"]).assert_success();
    c.run(["volume", "create", "orphan"]).assert_success();
    let pruned = c.run(["volume", "prune", "-af"]);
    assert!(pruned.stdout.contains("orphan"), "{}", pruned.stdout);
    assert!(c.run(["volume", "ls", "-q"]).stdout.is_empty());
}

/// docker's profile lets containers fork but not clone new namespaces (notably
/// CLONE_NEWUSER, which needs no capability) without CAP_SYS_ADMIN: checked with a
/// static probe under the built-in runtime and crun.
#[test]
fn seccomp_blocks_namespace_clones_but_not_fork() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let dir = c.tmp().join("probe");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("probe.c"),
        r#"#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
static void try_clone(const char *what, long flags) {
    long r = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    if (r < 0) { printf("%s: %s\n", what, strerror(errno)); return; }
    waitpid(r, 0, 0);
    printf("%s: ok\n", what);
}
int main(void) {
    try_clone("fork", 0);
    try_clone("newuser", 0x10000000);
    return 0;
}
"#,
    )
    .unwrap();
    let built = std::process::Command::new("cc")
        .args(["-static", "-o"])
        .arg(dir.join("probe"))
        .arg(dir.join("probe.c"))
        .status()
        .unwrap();
    assert!(built.success(), "cc -static (libc6-dev) builds the probe");
    let bind = format!("{}:/probe", dir.display());
    crun_hybrid_cgroup_fix();
    for runtime in [None, Some("crun")] {
        let mut args = vec!["-v", bind.as_str()];
        if let Some(r) = runtime {
            args.extend(["--runtime", r]);
        }
        args.extend(["box", "/probe/probe"]);
        let out = run(&c, &args);
        out.assert_success();
        assert_eq!(
            out.stdout, "fork: ok\nnewuser: Operation not permitted\n",
            "runtime {runtime:?}"
        );
    }
}

#[test]
fn resource_and_process_flags_of_c4() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    // Raising is always allowed; lowering needs CAP_SYS_RESOURCE, which a sandboxed
    // host may not give: then it is refused by name rather than by an I/O error.
    let out = sh(
        &c,
        &["--oom-score-adj", "500"],
        "cat /proc/self/oom_score_adj",
    );
    assert_eq!(out.stdout.trim(), "500", "{}", out.stderr);
    let low = sh(
        &c,
        &["--oom-score-adj", "-500"],
        "cat /proc/self/oom_score_adj",
    );
    if low.code == 0 {
        assert_eq!(low.stdout.trim(), "-500");
    } else {
        assert_eq!(low.code, 125, "{}", low.stderr);
        assert!(low.stderr.contains("CAP_SYS_RESOURCE"), "{}", low.stderr);
    }
    let out = run(&c, &["--oom-score-adj", "1001", "box", "true"]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("range for oom score adj is [-1000, 1000]"),
        "{}",
        out.stderr
    );

    let cfs = sh(
        &c,
        &["--cpu-period", "50000", "--cpu-quota", "25000"],
        "cd /sys/fs/cgroup/cpu 2>/dev/null && cat cpu.cfs_period_us cpu.cfs_quota_us \
         || cat /sys/fs/cgroup/cpu.max",
    );
    let got: Vec<&str> = cfs.stdout.split_whitespace().collect();
    assert!(
        got == ["50000", "25000"] || got == ["25000", "50000"],
        "{} {}",
        cfs.stdout,
        cfs.stderr
    );
    let both = run(&c, &["--cpus", "1", "--cpu-period", "50000", "box", "true"]);
    assert_eq!(both.code, 125, "{}", both.stderr);
    assert!(
        both.stderr
            .contains("Conflicting options: Nano CPUs and CPU Period cannot both be set"),
        "{}",
        both.stderr
    );
    let short = run(&c, &["--cpu-period", "900", "box", "true"]);
    assert_eq!(short.code, 125, "{}", short.stderr);
    assert!(short.stderr.contains("CPU cfs period"), "{}", short.stderr);

    let mem = sh(
        &c,
        &["--memory-reservation", "64m", "--memory-swappiness", "7"],
        "cd /sys/fs/cgroup/memory 2>/dev/null && cat memory.soft_limit_in_bytes memory.swappiness \
         || cat /sys/fs/cgroup/memory.low",
    );
    assert_eq!(
        mem.stdout.lines().next(),
        Some("67108864"),
        "{} {}",
        mem.stdout,
        mem.stderr
    );
    if std::path::Path::new("/sys/fs/cgroup/memory/memory.swappiness").exists() {
        assert_eq!(mem.stdout.lines().nth(1), Some("7"), "{}", mem.stdout);
    }
    let bad = run(&c, &["--memory-swappiness", "101", "box", "true"]);
    assert_eq!(bad.code, 125, "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("valid memory swappiness range is 0-100"),
        "{}",
        bad.stderr
    );

    let dom = sh(
        &c,
        &["--hostname", "web", "--domainname", "example.test"],
        "cat /proc/sys/kernel/domainname; hostname",
    );
    assert_eq!(dom.stdout, "example.test\nweb\n", "{}", dom.stderr);
    let v6 = run(&c, &["--ip6", "2001:db8::5", "box", "true"]);
    assert_eq!(v6.code, 125, "{}", v6.stderr);
    assert!(
        v6.stderr.contains("--ip6: IPv6 is not supported yet"),
        "{}",
        v6.stderr
    );

    let mems = sh(
        &c,
        &["--cpuset-mems", "0"],
        "cat /sys/fs/cgroup/cpuset/cpuset.mems 2>/dev/null || cat /sys/fs/cgroup/cpuset.mems",
    );
    assert_eq!(mems.stdout.trim(), "0", "{}", mems.stderr);
    let absent = run(&c, &["--cpuset-mems", "0-4095", "box", "true"]);
    assert_eq!(absent.code, 125, "{}", absent.stderr);
    assert!(
        absent
            .stderr
            .contains("Requested memory nodes are not available"),
        "{}",
        absent.stderr
    );
    let weight = std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight");
    let blk = sh(
        &c,
        &["--blkio-weight", "300"],
        "cat /sys/fs/cgroup/blkio/blkio.weight 2>/dev/null || echo none",
    );
    assert_eq!(blk.code, 0, "{}", blk.stderr);
    if weight.exists() {
        assert_eq!(blk.stdout.trim(), "300", "{}", blk.stderr);
    } else {
        // Docker's behaviour where the kernel has no weight knob: warn, drop.
        assert!(blk.stderr.contains("Block I/O weight"), "{}", blk.stderr);
    }
    let bad = run(&c, &["--blkio-weight", "5", "box", "true"]);
    assert_eq!(bad.code, 125, "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("Range of blkio weight is from 10 to 1000"),
        "{}",
        bad.stderr
    );

    let made = c.run([
        "create",
        "--name",
        "c4",
        "--oom-score-adj",
        "300",
        "--cpu-period",
        "50000",
        "--cpu-quota",
        "-1",
        "--memory-reservation",
        "64m",
        "--memory-swappiness",
        "7",
        "--domainname",
        "example.test",
        "--cpuset-mems",
        "0",
        "box",
        "true",
    ]);
    made.assert_success();
    let host = &inspect_container(&c, "c4")["HostConfig"];
    assert_eq!(host["OomScoreAdj"], 300);
    assert_eq!(host["CpuPeriod"], 50000);
    assert_eq!(host["CpuQuota"], -1);
    assert_eq!(host["MemoryReservation"], 64 << 20);
    assert_eq!(host["CpusetMems"], "0");
    assert_eq!(
        inspect_container(&c, "c4")["Config"]["Domainname"],
        "example.test"
    );
    c.run(["rm", "c4"]).assert_success();
}
