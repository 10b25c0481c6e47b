//! `volume create -o` (Issue 11 C.3): docker's local driver options. A volume with
//! `type`/`device`/`o` is mounted on its `_data` while containers use it (one mount
//! shared by them all), unmounted when the last one stops or its monitor dies, and
//! `volume inspect` shows the options; unknown or incomplete options are refused.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn data_dir(c: &Coracle, volume: &str) -> PathBuf {
    c.root().join("volumes").join(volume).join("_data")
}

fn is_mounted(path: &Path) -> bool {
    mounts_under(path).iter().any(|m| m == path)
}

/// The container's mountinfo line for `target`.
fn mount_line(c: &Coracle, name: &str, target: &str) -> String {
    let out = c.run(["exec", name, "cat", "/proc/self/mountinfo"]);
    out.assert_success();
    out.stdout
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(target))
        .unwrap_or_else(|| panic!("no mount at {target} in {name}: {}", out.stdout))
        .to_string()
}

#[test]
fn a_tmpfs_volume_is_shared_by_its_containers_and_unmounted_after_the_last() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run([
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=5m,uid=1000",
        "tv",
    ])
    .assert_success();
    let out = c.run(["volume", "inspect", "tv"]);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v[0]["Options"],
        serde_json::json!({"type": "tmpfs", "device": "tmpfs", "o": "size=5m,uid=1000"})
    );
    let data = data_dir(&c, "tv");
    assert!(!is_mounted(&data), "mounted before any container uses it");

    c.run([
        "run", "-d", "--name", "c1", "-v", "tv:/v", "box", "sleep", "1000",
    ])
    .assert_success();
    let line = mount_line(&c, "c1", "/v");
    assert!(line.contains(" - tmpfs tmpfs "), "{line}");
    assert!(line.contains("size=5120k"), "{line}");
    assert!(line.contains("uid=1000"), "{line}");
    assert!(is_mounted(&data), "the host holds the volume's mount");
    c.run(["exec", "c1", "sh", "-c", "echo shared > /v/f"])
        .assert_success();

    c.run([
        "run", "-d", "--name", "c2", "-v", "tv:/w", "box", "sleep", "1000",
    ])
    .assert_success();
    let out = c.run(["exec", "c2", "cat", "/w/f"]);
    out.assert_success();
    assert_eq!(out.stdout, "shared\n", "one tmpfs for both containers");
    assert_eq!(
        mounts_under(&data).len(),
        1,
        "the second user mounts nothing more"
    );

    c.run(["stop", "-t", "0", "c1"]).assert_success();
    assert!(is_mounted(&data), "c2 still uses the volume");
    let out = c.run(["exec", "c2", "cat", "/w/f"]);
    assert_eq!(out.stdout, "shared\n");

    c.run(["stop", "-t", "0", "c2"]).assert_success();
    wait_until("the volume unmounted", Duration::from_secs(20), || {
        !is_mounted(&data)
    });
    assert!(entries(&data).is_empty(), "the tmpfs's files went with it");

    // Started again: mounted again, empty (a tmpfs), and gone after.
    c.run(["start", "c1"]).assert_success();
    assert!(is_mounted(&data));
    let out = c.run(["exec", "c1", "ls", "/v"]);
    assert_eq!(out.stdout, "");
    // In use: not removable.
    let out = c.run(["volume", "rm", "tv"]);
    assert_ne!(out.code, 0, "{out:?}");
    c.run(["rm", "-f", "c1", "c2"]).assert_success();
    wait_until("the volume unmounted", Duration::from_secs(20), || {
        !is_mounted(&data)
    });
    c.run(["volume", "rm", "tv"]).assert_success();
}

#[test]
fn a_dead_monitor_does_not_leave_its_volume_mounted() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run([
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m",
        "cv",
    ])
    .assert_success();
    c.run([
        "run", "-d", "--name", "c1", "-v", "cv:/v", "box", "sleep", "1000",
    ])
    .assert_success();
    let data = data_dir(&c, "cv");
    assert!(is_mounted(&data));
    let init = inspect_container(&c, "c1")["State"]["Pid"]
        .as_i64()
        .unwrap();
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    let monitor: i32 = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The monitor is this test's grandchild (started by `run -d`): ours to kill.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(monitor).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    wait_until("the monitor gone", Duration::from_secs(20), || {
        !Path::new(&format!("/proc/{monitor}")).exists()
            || std::fs::read_to_string(format!("/proc/{monitor}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    });
    // The next command that looks finds the monitor dead and cleans up after it.
    c.run(["ps", "-a"]).assert_success();
    assert!(!is_mounted(&data), "a dead monitor's volume stays mounted");
    c.run(["rm", "-f", "c1"]).assert_success();
    c.run(["volume", "rm", "cv"]).assert_success();
}

#[test]
fn a_bind_volume_mounts_its_device() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let host = c.tmp().join("hostdir");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("from-host"), "hello\n").unwrap();
    let device = format!("device={}", host.display());
    c.run([
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &device,
        "bv",
    ])
    .assert_success();
    let out = run(
        &c,
        &[
            "-v",
            "bv:/b",
            "box",
            "sh",
            "-c",
            "cat /b/from-host && echo back > /b/new",
        ],
    );
    out.assert_success();
    assert_eq!(out.stdout, "hello\n");
    assert_eq!(std::fs::read_to_string(host.join("new")).unwrap(), "back\n");
    let data = data_dir(&c, "bv");
    assert!(
        !is_mounted(&data),
        "unmounted once the --rm container is gone"
    );
    assert!(
        entries(&data).is_empty(),
        "the data went to the device, not _data"
    );

    // A device that does not exist fails the start, naming it, and leaks nothing.
    c.run([
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        "device=/nonexistent/coracle-dir",
        "gone",
    ])
    .assert_success();
    let out = run(&c, &["-v", "gone:/g", "box", "true"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("failed to mount local volume")
            && out.stderr.contains("/nonexistent/coracle-dir"),
        "{}",
        out.stderr
    );
    assert!(mounts_under(&c.root().join("volumes")).is_empty());
}

#[test]
fn bad_options_are_refused_as_docker_does() {
    let c = coracle();
    let cases: &[(&[&str], &str)] = &[
        (&["-o", "foo=bar"], "invalid option: \"foo\""),
        (&["-o", "type=tmpfs"], "missing required option: \"device\""),
        (&["-o", "device=tmpfs"], "missing required option: \"type\""),
        (
            &["-o", "o=size=1m", "-o", "type=tmpfs"],
            "missing required option: \"device\"",
        ),
        (
            &["-o", "size=10m"],
            "quota size requested but no quota support",
        ),
        (&["-o", "size=lots"], "size"),
    ];
    for (opts, want) in cases {
        let mut args = vec!["volume", "create"];
        args.extend_from_slice(opts);
        args.push("bad");
        let out = c.run(&args);
        assert_eq!(out.code, 1, "{opts:?}: {out:?}");
        assert!(out.stderr.contains(want), "{opts:?}: {}", out.stderr);
    }
    let out = c.run(["volume", "ls", "-q"]);
    assert_eq!(out.stdout, "", "a refused volume is not made");
    // size=0 asks for no quota: accepted, as docker does.
    c.run(["volume", "create", "-o", "size=0", "zero"])
        .assert_success();
}
