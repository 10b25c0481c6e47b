//! `update`: new limits for running, created and stopped containers, read back from
//! the container's own cgroup files, `inspect` and a later start; the restart policy
//! reaching the container's monitor; docker's errors.

use crate::common::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// A cgroup file as the container sees it: the v1 path, else the v2 one.
fn cgroup(c: &Coracle, name: &str, v1: &str, v2: &str) -> String {
    let script = format!("cat /sys/fs/cgroup/{v1} 2>/dev/null || cat /sys/fs/cgroup/{v2}");
    let out = c.run(["exec", name, "sh", "-c", &script]);
    out.assert_success();
    out.stdout.trim().to_string()
}

fn memory_limit(c: &Coracle, name: &str) -> String {
    cgroup(c, name, "memory/memory.limit_in_bytes", "memory.max")
}

fn cpu_quota(c: &Coracle, name: &str) -> String {
    let v = cgroup(c, name, "cpu/cpu.cfs_quota_us", "cpu.max");
    v.split_whitespace().next().unwrap_or_default().to_string()
}

fn pids_max(c: &Coracle, name: &str) -> String {
    cgroup(c, name, "pids/pids.max", "pids.max")
}

fn host_config(c: &Coracle, name: &str) -> serde_json::Value {
    inspect_container(c, name)["HostConfig"].clone()
}

fn field(c: &Coracle, name: &str, template: &str) -> String {
    let out = c.run(["inspect", "-f", template, name]);
    out.assert_success();
    out.stdout.trim().to_string()
}

fn sleeper(c: &Coracle, name: &str, flags: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["box", "sleep", "1000"]);
    c.run(args).assert_success();
}

#[test]
fn running_container_gets_new_limits_that_survive_a_restart() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    sleeper(
        &c,
        "live",
        &["-m", "64m", "--cpus", "1", "--pids-limit", "80"],
    );
    assert_eq!(memory_limit(&c, "live"), (64u64 << 20).to_string());

    let out = c.run([
        "update",
        "-m",
        "96m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "live",
    ]);
    out.assert_success();
    assert_eq!(out.stdout, "live\n");
    assert_eq!(memory_limit(&c, "live"), (96u64 << 20).to_string());
    assert_eq!(cpu_quota(&c, "live"), "50000");
    assert_eq!(pids_max(&c, "live"), "50");
    let hc = host_config(&c, "live");
    assert_eq!(hc["Memory"], 96 << 20);
    assert_eq!(hc["MemorySwap"], 128 << 20, "the swap limit stays: {hc}");
    assert_eq!(hc["NanoCpus"], 500_000_000);
    assert_eq!(hc["PidsLimit"], 50);

    // Memory beyond the swap limit set at run needs a new swap limit (docker's rule).
    let out = c.run(["update", "-m", "200m", "live"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("Memory limit should be smaller than already set memoryswap limit"),
        "{}",
        out.stderr
    );
    c.run(["update", "-m", "200m", "--memory-swap", "400m", "live"])
        .assert_success();
    assert_eq!(memory_limit(&c, "live"), (200u64 << 20).to_string());
    if std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        assert_eq!(
            cgroup(&c, "live", "memory/memory.memsw.limit_in_bytes", "x"),
            (400u64 << 20).to_string()
        );
    }
    // A paused container is updated too (docker's TestUpdatePausedContainer).
    c.run(["pause", "live"]).assert_success();
    c.run(["update", "--cpu-shares", "500", "live"])
        .assert_success();
    c.run(["unpause", "live"]).assert_success();
    let shares = cgroup(&c, "live", "cpu/cpu.shares", "cpu.weight");
    if std::path::Path::new("/sys/fs/cgroup/cpu/cpu.shares").exists() {
        assert_eq!(shares, "500");
    } else {
        assert_ne!(shares, "100", "cpu.weight moved from its default");
    }
    // -1 lifts the pids limit.
    c.run(["container", "update", "--pids-limit", "-1", "live"])
        .assert_success();
    assert_eq!(pids_max(&c, "live"), "max");
    c.run(["update", "--pids-limit", "40", "live"])
        .assert_success();

    // A new start builds the cgroups from the stored config.
    c.run(["stop", "-t", "0", "live"]).assert_success();
    c.run(["start", "live"]).assert_success();
    assert_eq!(memory_limit(&c, "live"), (200u64 << 20).to_string());
    assert_eq!(cpu_quota(&c, "live"), "50000");
    assert_eq!(pids_max(&c, "live"), "40");
    c.run(["rm", "-f", "live"]).assert_success();
}

#[test]
fn created_and_stopped_containers_use_the_update_when_started() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let script = "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max";
    c.run(["create", "--name", "later", "box", "sh", "-c", script])
        .assert_success();
    let out = c.run([
        "update",
        "--pids-limit",
        "33",
        "--cpu-shares",
        "512",
        "later",
    ]);
    out.assert_success();
    assert_eq!(out.stdout, "later\n");
    assert_eq!(host_config(&c, "later")["PidsLimit"], 33);
    assert_eq!(c.run(["start", "-a", "later"]).stdout.trim(), "33");
    // Exited now: updated again, started again.
    c.run(["update", "--pids-limit", "44", "later"])
        .assert_success();
    assert_eq!(c.run(["start", "-a", "later"]).stdout.trim(), "44");
    assert_eq!(host_config(&c, "later")["CpuShares"], 512);
}

#[test]
fn restart_policy_update_reaches_the_monitor() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    // Exits 3 once /tmp/go exists (the file stays for the restarted run too).
    let script = "echo run; while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 3";
    c.run(["run", "-d", "--name", "flaky", "box", "sh", "-c", script])
        .assert_success();
    c.run(["update", "--restart", "on-failure:1", "flaky"])
        .assert_success();
    assert_eq!(
        field(
            &c,
            "flaky",
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure:1"
    );
    c.run(["exec", "flaky", "touch", "/tmp/go"])
        .assert_success();
    wait_until("the restart the new policy asks for", WAIT, || {
        field(&c, "flaky", "{{.RestartCount}}") == "1"
    });
    wait_until("the retries to run out", WAIT, || {
        field(&c, "flaky", "{{.State.Status}}") == "exited"
    });
    assert_eq!(
        field(&c, "flaky", "{{.RestartCount}} {{.State.ExitCode}}"),
        "1 3"
    );
    assert_eq!(c.run(["logs", "flaky"]).stdout, "run\nrun\n");

    // The other way: `always` taken away while it runs, so its exit is final.
    c.run([
        "run",
        "-d",
        "--name",
        "steady",
        "--restart",
        "always",
        "box",
        "sh",
        "-c",
        script,
    ])
    .assert_success();
    c.run(["update", "--restart", "no", "steady"])
        .assert_success();
    c.run(["exec", "steady", "touch", "/tmp/go"])
        .assert_success();
    wait_until("the container to stay exited", WAIT, || {
        field(&c, "steady", "{{.State.Status}}") == "exited"
    });
    assert_eq!(field(&c, "steady", "{{.RestartCount}}"), "0");
}

#[test]
fn auto_remove_containers_keep_no_restart_policy() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    sleeper(&c, "gone", &["--rm"]);
    let out = c.run(["update", "--restart", "always", "gone"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains(
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(
        field(&c, "gone", "{{.HostConfig.RestartPolicy.Name}}"),
        "no"
    );
    c.run(["update", "--restart", "no", "gone"])
        .assert_success();
    c.run(["rm", "-f", "gone"]).assert_success();
}

#[test]
fn bad_values_and_unknown_containers_fail_as_docker() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    sleeper(&c, "box1", &["--cpus", "0.5"]);
    let fails = |args: &[&str], code: i32, msg: &str| {
        let mut all = vec!["update"];
        all.extend_from_slice(args);
        let out = c.run(&all);
        assert_eq!(out.code, code, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(msg), "{args:?}: {}", out.stderr);
    };
    fails(
        &["-m", "2m", "box1"],
        1,
        "Minimum memory limit allowed is 6MB",
    );
    fails(
        &["-m", "12x", "box1"],
        125,
        "invalid argument \"12x\" for \"-m, --memory\" flag",
    );
    fails(
        &["--cpus", "100000", "box1"],
        1,
        "range of CPUs is from 0.01 to",
    );
    fails(
        &["--cpu-quota", "80000", "box1"],
        1,
        "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set",
    );
    fails(
        &["--memory-reservation", "1m", "box1"],
        1,
        "Minimum memory reservation allowed is 6MB",
    );
    fails(
        &["--restart", "sometimes", "box1"],
        1,
        "invalid restart policy",
    );
    fails(&["--kernel-memory", "10m", "box1"], 125, "--kernel-memory");
    fails(
        &["--cpuset-cpus", "4000", "box1"],
        1,
        "Requested CPUs are not available - requested 4000",
    );
    fails(
        &["--cpu-rt-runtime", "1000", "box1"],
        125,
        "--cpu-rt-runtime",
    );
    fails(
        &["box1"],
        1,
        "you must provide one or more flags when using this command",
    );
    fails(&["-m", "64m", "nosuch"], 1, "No such container: nosuch");
    // Each container on its own: the good one is updated and printed.
    let out = c.run(["update", "--cpu-shares", "512", "box1", "nosuch"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, "box1\n");
    assert!(
        out.stderr.contains("No such container: nosuch"),
        "{}",
        out.stderr
    );
    assert_eq!(host_config(&c, "box1")["CpuShares"], 512);
    assert_eq!(host_config(&c, "box1")["NanoCpus"], 500_000_000);
    c.run(["rm", "-f", "box1"]).assert_success();
}

/// The kernel refuses a limit below what the container uses (v1: EBUSY); the update
/// is then undone everywhere. cgroup v2 reclaims or OOM-kills instead, as with docker.
#[test]
fn memory_below_usage_fails_and_changes_nothing() {
    if skip_unless_root() {
        return;
    }
    if !std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        eprintln!("skipped: the memory controller is on cgroup v2 here");
        return;
    }
    let (_reg, c) = with_busybox();
    // 40 MiB in /dev/shm: charged to the container and, without swap, not reclaimable.
    let script = "head -c 41943040 /dev/zero > /dev/shm/fill && echo ready && sleep 1000";
    c.run([
        "run",
        "-d",
        "--name",
        "full",
        "-m",
        "100m",
        "--memory-swap",
        "100m",
        "box",
        "sh",
        "-c",
        script,
    ])
    .assert_success();
    wait_until("the container to fill its memory", WAIT, || {
        c.run(["logs", "full"]).stdout.contains("ready")
    });
    let out = c.run(["update", "-m", "10m", "--memory-swap", "10m", "full"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("Cannot update container")
            && out
                .stderr
                .contains("unable to set memory limit to 10485760"),
        "{}",
        out.stderr
    );
    assert_eq!(host_config(&c, "full")["Memory"], 100 << 20);
    assert_eq!(memory_limit(&c, "full"), (100u64 << 20).to_string());
    c.run(["stop", "-t", "0", "full"]).assert_success();
    c.run(["start", "full"]).assert_success();
    assert_eq!(memory_limit(&c, "full"), (100u64 << 20).to_string());
    c.run(["rm", "-f", "full"]).assert_success();
}

/// An OCI runtime binary gets the new limits through `update --resources FILE ID`.
#[test]
fn crun_containers_are_updated_through_the_runtime() {
    if skip_unless_root() {
        return;
    }
    if which("crun").is_none() {
        eprintln!("skipped: crun is not installed");
        return;
    }
    crun_hybrid_cgroup_fix();
    let (_reg, c) = with_busybox();
    sleeper(&c, "viacrun", &["--runtime", "crun", "--pids-limit", "80"]);
    c.run([
        "update",
        "--pids-limit",
        "25",
        "--cpu-quota",
        "30000",
        "viacrun",
    ])
    .assert_success();
    assert_eq!(pids_max(&c, "viacrun"), "25");
    assert_eq!(cpu_quota(&c, "viacrun"), "30000");
    c.run(["rm", "-f", "viacrun"]).assert_success();
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
