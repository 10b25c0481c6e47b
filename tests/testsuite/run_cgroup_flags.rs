//! `run`/`create` cgroup flags (`--oom-kill-disable`, `--cgroup-parent`, `--cgroupns`,
//! the block I/O device flags, `--device-cgroup-rule`, `--userns`), each checked in the
//! container's cgroup files under the built-in runtime and crun.

use crate::common::*;
use std::path::{Path, PathBuf};

/// The built-in runtime, and crun where it is installed.
fn runtimes() -> Vec<Option<&'static str>> {
    let crun = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("crun").is_file()))
        .unwrap_or(false);
    if crun {
        // Once per test binary: the tests run in parallel and the fix mounts.
        static FIX: std::sync::Once = std::sync::Once::new();
        FIX.call_once(crun_hybrid_cgroup_fix);
        vec![None, Some("crun")]
    } else {
        println!("crun is not installed: checked with the built-in runtime only");
        vec![None]
    }
}

/// `run --rm [--runtime RT] FLAGS box sh -c SCRIPT`.
fn sh(c: &Coracle, rt: Option<&str>, flags: &[&str], script: &str) -> Output {
    let mut args: Vec<&str> = Vec::new();
    if let Some(r) = rt {
        args.extend(["--runtime", r]);
    }
    args.extend_from_slice(flags);
    args.extend_from_slice(&["box", "sh", "-c", script]);
    run(c, &args)
}

fn host_config(c: &Coracle, name: &str) -> serde_json::Value {
    inspect_container(c, name)["HostConfig"].clone()
}

/// Every cgroup hierarchy's mount point (v1 controllers and the v2 one).
fn hierarchies() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            matches!(fstype, "cgroup" | "cgroup2")
                .then(|| PathBuf::from(left.split_whitespace().nth(4).unwrap()))
        })
        .collect()
}

/// Removes the (empty) parent cgroups a test asked for, deepest first.
struct ParentCgroups(Vec<String>);

impl Drop for ParentCgroups {
    fn drop(&mut self) {
        for h in hierarchies() {
            for rel in &self.0 {
                let mut p = h.join(rel.trim_start_matches('/'));
                while p != h {
                    let _ = std::fs::remove_dir(&p);
                    p.pop();
                }
            }
        }
    }
}

/// A block device node of the host (not a loop or RAM disk), for the blkio flags.
fn block_device() -> Option<(String, String)> {
    use std::os::unix::fs::FileTypeExt;
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort_by_key(|n| (n.starts_with("loop") || n.starts_with("ram"), n.clone()));
    names.into_iter().find_map(|n| {
        let dev = format!("/dev/{n}");
        let numbers = std::fs::read_to_string(format!("/sys/block/{n}/dev")).ok()?;
        std::fs::metadata(&dev)
            .is_ok_and(|m| m.file_type().is_block_device())
            .then(|| (dev, numbers.trim().to_string()))
    })
}

#[test]
fn cgroup_parent_and_oom_kill_disable_take_effect() {
    if skip_unless_root() {
        return;
    }
    let tag = format!("coracle-test-{}", std::process::id());
    let abs = format!("/{tag}-abs/jobs");
    let rel = format!("{tag}-rel");
    // Dropped after the store, whose drop removes any container a failure left.
    let _cleanup = ParentCgroups(vec![abs.clone(), rel.clone()]);
    let (_reg, c) = with_busybox();
    let v1_memory = Path::new("/sys/fs/cgroup/memory/memory.oom_control").exists();
    for rt in runtimes() {
        let name = format!("parent-{}", rt.unwrap_or("builtin"));
        let mut args = vec!["run", "-d", "--name", &name];
        if let Some(r) = rt {
            args.extend(["--runtime", r]);
        }
        args.extend([
            "--cgroup-parent",
            &abs,
            "--oom-kill-disable",
            "-m",
            "64m",
            "box",
            "sleep",
            "300",
        ]);
        let out = c.run(args);
        assert_eq!(out.code, 0, "{rt:?}: {}", out.stderr);
        let id = out.stdout.trim().to_string();
        let pid = inspect_container(&c, &name)["State"]["Pid"]
            .as_u64()
            .unwrap();
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let want = format!("{abs}/{id}");
        // In every v1 hierarchy (hybrid host) or the unified one.
        let lines: Vec<&str> = cgroups.lines().filter(|l| !l.starts_with("0::")).collect();
        let placed: Vec<&str> = if lines.is_empty() {
            cgroups.lines().collect()
        } else {
            lines.into_iter().filter(|l| !l.contains("name=")).collect()
        };
        for l in &placed {
            assert!(
                l.ends_with(&want),
                "{rt:?}: {l} is not in {want}:\n{cgroups}"
            );
        }
        let dirs: Vec<PathBuf> = hierarchies()
            .into_iter()
            .map(|h| h.join(want.trim_start_matches('/')))
            .filter(|d| d.is_dir())
            .collect();
        assert!(!dirs.is_empty(), "{rt:?}: no cgroup at {want}");
        let host = host_config(&c, &name);
        assert_eq!(host["CgroupParent"], abs.as_str());
        if v1_memory {
            let oom =
                std::fs::read_to_string(format!("/sys/fs/cgroup/memory{want}/memory.oom_control"))
                    .unwrap();
            assert!(oom.contains("oom_kill_disable 1"), "{rt:?}: {oom}");
            assert_eq!(host["OomKillDisable"], true);
        } else {
            assert!(
                out.stderr.contains("does not support OomKillDisable"),
                "{}",
                out.stderr
            );
            assert!(host["OomKillDisable"].is_null());
        }
        c.run(["rm", "-f", &name]).assert_success();
        for d in &dirs {
            assert!(!d.exists(), "{rt:?}: cgroup left after rm: {}", d.display());
        }

        // Relative: from the hierarchy's root. Without the flag the OOM killer is on.
        let flags = ["--cgroup-parent", rel.as_str()];
        let out = sh(&c, rt, &flags, "cat /proc/self/cgroup");
        out.assert_success();
        let shown = sh(
            &c,
            rt,
            &["--cgroupns", "host", "--cgroup-parent", &rel],
            "cat /proc/self/cgroup",
        );
        assert!(
            shown.stdout.contains(&format!(":/{rel}/")),
            "{rt:?}: {}{}",
            shown.stdout,
            shown.stderr
        );
        if v1_memory {
            let on = sh(&c, rt, &[], "cat /sys/fs/cgroup/memory/memory.oom_control");
            assert!(on.stdout.contains("oom_kill_disable 0"), "{}", on.stdout);
        }
    }
    for bad in ["../escape", "/a/../../b"] {
        let out = run(&c, &["--cgroup-parent", bad, "box", "true"]);
        assert_eq!(out.code, 125, "{bad}: {}", out.stderr);
        assert!(
            out.stderr.contains("--cgroup-parent") && out.stderr.contains(".."),
            "{}",
            out.stderr
        );
    }
    assert!(c.run(["ps", "-aq"]).stdout.is_empty());
}

#[test]
fn block_io_device_limits_take_effect() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let Some((dev, numbers)) = block_device() else {
        println!("skipped: this host has no block device node (/sys/block, /dev)");
        return;
    };
    let read_bps = format!("{dev}:1mb");
    let write_bps = format!("{dev}:2mb");
    let read_iops = format!("{dev}:100");
    let write_iops = format!("{dev}:200");
    let flags = [
        "--device-read-bps",
        read_bps.as_str(),
        "--device-write-bps",
        &write_bps,
        "--device-read-iops",
        &read_iops,
        "--device-write-iops",
        &write_iops,
    ];
    let script = "cd /sys/fs/cgroup; if [ -d blkio ]; then \
        for f in read_bps write_bps read_iops write_iops; do \
        echo $f $(cat blkio/blkio.throttle.${f}_device); done; \
        else echo io.max $(cat io.max); fi";
    for rt in runtimes() {
        let out = sh(&c, rt, &flags, script);
        assert_eq!(out.code, 0, "{rt:?}: {}", out.stderr);
        let text = out.stdout;
        if text.starts_with("io.max") {
            let want = format!("{numbers} rbps=1048576 wbps=2097152 riops=100 wiops=200");
            assert!(text.contains(&want), "{rt:?}: {text}");
        } else {
            for line in [
                format!("read_bps {numbers} 1048576"),
                format!("write_bps {numbers} 2097152"),
                format!("read_iops {numbers} 100"),
                format!("write_iops {numbers} 200"),
            ] {
                assert!(text.contains(&line), "{rt:?}: want {line} in\n{text}");
            }
        }

        // Weights per device: where the host has the knob, else docker's warning.
        let weight = format!("{dev}:300");
        let out = sh(
            &c,
            rt,
            &["--blkio-weight-device", &weight],
            "cat /sys/fs/cgroup/blkio/blkio.weight_device /sys/fs/cgroup/blkio/blkio.bfq.weight_device /sys/fs/cgroup/io.weight /sys/fs/cgroup/io.bfq.weight 2>/dev/null; true",
        );
        assert_eq!(out.code, 0, "{rt:?}: {}", out.stderr);
        if out.stderr.contains("Weight-device discarded") {
            println!("{rt:?}: the host has no per-device blkio weight: discarded as docker does");
        } else {
            assert!(
                out.stdout.contains(&format!("{numbers} 300")),
                "{rt:?}: {}",
                out.stdout
            );
        }
    }

    let mut create = vec!["create", "--name", "limits"];
    create.extend_from_slice(&flags);
    create.extend(["box", "true"]);
    c.run(create).assert_success();
    let host = host_config(&c, "limits");
    let entry = |rate: u64| serde_json::json!([{"Path": dev, "Rate": rate}]);
    assert_eq!(host["BlkioDeviceReadBps"], entry(1 << 20));
    assert_eq!(host["BlkioDeviceWriteBps"], entry(2 << 20));
    assert_eq!(host["BlkioDeviceReadIOps"], entry(100));
    assert_eq!(host["BlkioDeviceWriteIOps"], entry(200));
    c.run(["rm", "limits"]).assert_success();

    for (flag, value, want) in [
        ("--device-read-bps", "/dev/null:1mb", "not a block device"),
        (
            "--device-write-iops",
            "/dev/nonexistent-disk:5",
            "stat /dev/nonexistent-disk",
        ),
        ("--device-read-bps", "/dev/sda", "bad format"),
        (
            "--device-read-iops",
            "/dev/sda:lots",
            "invalid rate for device",
        ),
        (
            "--blkio-weight-device",
            "/dev/sda:5",
            "invalid weight for device",
        ),
    ] {
        let out = run(&c, &[flag, value, "box", "true"]);
        assert_eq!(out.code, 125, "{flag} {value}: {}", out.stderr);
        assert!(
            out.stderr.contains(flag) && out.stderr.contains(want),
            "{flag} {value}: {}",
            out.stderr
        );
    }
}

#[test]
fn device_cgroup_rules_allow_exactly_what_they_name() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    // /dev/kmsg (1:11) is in no default rule; reading it also needs CAP_SYSLOG where
    // dmesg_restrict is set, given here so that only the device rule differs.
    // /dev/loop-control (10:237), in no default rule either, opens without any
    // capability.
    let script = "mknod /tmp/kmsg c 1 11 && mknod /tmp/lc c 10 237 || exit 9; \
        if dd if=/tmp/kmsg of=/dev/null bs=8192 count=1 2>/dev/null; then echo kmsg-read; else echo kmsg-denied; fi; \
        if (: < /tmp/lc) 2>/dev/null; then echo lc-opened; else echo lc-denied; fi";
    for rt in runtimes() {
        let case = |rules: &[&str]| {
            let mut flags = vec!["--cap-add", "SYSLOG"];
            for r in rules {
                flags.extend(["--device-cgroup-rule", r]);
            }
            let out = sh(&c, rt, &flags, script);
            assert_eq!(out.code, 0, "{rt:?} {rules:?}: {}", out.stderr);
            out.stdout
        };
        assert_eq!(case(&[]), "kmsg-denied\nlc-denied\n", "{rt:?}");
        assert_eq!(case(&["c 1:11 r"]), "kmsg-read\nlc-denied\n", "{rt:?}");
        assert_eq!(case(&["c 1:11 w"]), "kmsg-denied\nlc-denied\n", "{rt:?}");
        // Wildcards; type `a` means char and block devices with these numbers, not
        // (as a raw v1 `a` rule would) every device.
        assert_eq!(case(&["a 1:* r"]), "kmsg-read\nlc-denied\n", "{rt:?}");
        assert_eq!(
            case(&["c 1:11 r", "c *:237 r"]),
            "kmsg-read\nlc-opened\n",
            "{rt:?}"
        );
    }
    c.run([
        "create",
        "--name",
        "rules",
        "--device-cgroup-rule",
        "c 1:11 r",
        "--device-cgroup-rule",
        "a *:* m",
        "box",
        "true",
    ])
    .assert_success();
    assert_eq!(
        host_config(&c, "rules")["DeviceCgroupRules"],
        serde_json::json!(["c 1:11 r", "a *:* m"])
    );
    assert!(host_config(&c, "rules")["CgroupParent"] == "");
    for bad in ["c 1:3", "x 1:3 r", "c 1:3 rx", "c a:3 r"] {
        let out = run(&c, &["--device-cgroup-rule", bad, "box", "true"]);
        assert_eq!(out.code, 125, "{bad}: {}", out.stderr);
        assert!(
            out.stderr.contains("invalid device cgroup format"),
            "{bad}: {}",
            out.stderr
        );
    }
}

#[test]
fn cgroupns_and_userns_modes() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    for rt in runtimes() {
        let private = sh(&c, rt, &[], "cat /proc/self/cgroup");
        private.assert_success();
        for l in private.stdout.lines() {
            assert!(l.ends_with(":/"), "{rt:?}: private cgroupns shows {l}");
        }
        let host = sh(&c, rt, &["--cgroupns", "host"], "cat /proc/self/cgroup");
        host.assert_success();
        assert!(
            host.stdout.lines().any(|l| l.contains(":/coracle/")),
            "{rt:?}: host cgroupns shows the host's paths: {}",
            host.stdout
        );
        let userns = sh(&c, rt, &["--userns", "host"], "cat /proc/self/uid_map");
        userns.assert_success();
        assert_eq!(
            userns.stdout.split_whitespace().collect::<Vec<_>>(),
            ["0", "0", "4294967295"]
        );
    }
    c.run(["create", "--name", "dflt", "box", "true"])
        .assert_success();
    let h = host_config(&c, "dflt");
    assert_eq!(h["CgroupnsMode"], "private");
    assert_eq!(h["UsernsMode"], "");
    c.run([
        "create",
        "--name",
        "hostns",
        "--cgroupns",
        "host",
        "--userns",
        "host",
        "box",
        "true",
    ])
    .assert_success();
    let h = host_config(&c, "hostns");
    assert_eq!(h["CgroupnsMode"], "host");
    assert_eq!(h["UsernsMode"], "host");
    let bad = run(&c, &["--cgroupns", "shared", "box", "true"]);
    assert_eq!(bad.code, 125, "{}", bad.stderr);
    assert!(bad.stderr.contains("--cgroupns"), "{}", bad.stderr);
    let bad = run(&c, &["--userns", "private", "box", "true"]);
    assert_eq!(bad.code, 125, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("--userns") && bad.stderr.contains("rootless"),
        "{}",
        bad.stderr
    );
}
