//! /sys/fs/cgroup inside containers with the built-in runtime: every hierarchy read-only
//! unless `--privileged` (docker's rule), on cgroup v1, hybrid and pure v2 hosts, and hosts
//! whose v1 controllers are co-mounted (`net_cls,net_prio` with `net_cls`/`net_prio`
//! symlinks, systemd's layout). The v2 and co-mounted layouts are made inside a private
//! mount namespace around one coracle command; the host's mount table is never touched.
//!
//! Also the device allow-list where only a BPF program can enforce it (pure cgroup v2):
//! the container is in the host's root v1 devices cgroup there (a real v2 host has no
//! other), which allows everything, so the program is all that stands between container
//! root (CAP_MKNOD) and the host's disks.

use crate::common::*;
use std::path::Path;
use std::process::{Command, Stdio};

const EROFS: &str = "Read-only file system";

/// Probes every write a container could try under /sys/fs/cgroup; one line per probe,
/// `PATH: written` or `PATH: <the shell's error>`. A write puts back the file's own value,
/// a mkdir is removed again, so a probe that succeeds (`--privileged`) changes nothing.
const PROBE_FNS: &str = r#"
probe_write() {
  [ -f "$1" ] || { echo "$1: missing"; return; }
  v=$(cat "$1")
  if err=$( { echo "$v" > "$1"; } 2>&1 ); then echo "$1: written"; else echo "$1: $err"; fi
}
probe_mkdir() {
  if err=$(mkdir "$1" 2>&1); then rmdir "$1"; echo "$1: written"; else echo "$1: $err"; fi
}
"#;

/// Mount points of the host's cgroup v1 hierarchies under /sys/fs/cgroup (directory
/// names: `cpu`, `net_cls,net_prio`, `systemd`...).
fn host_v1_hierarchies() -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mut v: Vec<String> = info
        .lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mp = pre.split(' ').nth(4)?;
            let fs = post.split(' ').next()?;
            let name = mp.strip_prefix("/sys/fs/cgroup/")?;
            (fs == "cgroup").then(|| name.to_string())
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

fn host_is_cgroup_v2_only() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The probe lines for a v1/hybrid host: a mkdir in every hierarchy (and on the tmpfs
/// holding them, where a hybrid host's `unified` would go) and the limits container root
/// most wants to raise.
fn v1_probes(include_host_root_cgroups: bool) -> (String, Vec<String>) {
    let mut script = PROBE_FNS.to_string();
    let mut paths = Vec::new();
    for h in host_v1_hierarchies() {
        // The container is not placed in a name=systemd cgroup: its view is the host's
        // root there. Only probed where the write must fail.
        if h == "systemd" && !include_host_root_cgroups {
            continue;
        }
        let p = format!("/sys/fs/cgroup/{h}/coracle-probe");
        script.push_str(&format!("probe_mkdir '{p}'\n"));
        paths.push(p);
    }
    for (h, f) in [
        ("pids", "pids.max"),
        ("memory", "memory.limit_in_bytes"),
        ("cpu", "cpu.cfs_quota_us"),
    ] {
        if Path::new("/sys/fs/cgroup").join(h).exists() {
            let p = format!("/sys/fs/cgroup/{h}/{f}");
            script.push_str(&format!("probe_write '{p}'\n"));
            paths.push(p);
        }
    }
    for p in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup/coracle-probe"] {
        script.push_str(&format!("probe_mkdir '{p}'\n"));
        paths.push(p.to_string());
    }
    (script, paths)
}

/// The probe lines for a pure v2 container view: cgroup2 at /sys/fs/cgroup.
fn v2_probes() -> (String, Vec<String>) {
    let mut script = PROBE_FNS.to_string();
    let mut paths = vec!["/sys/fs/cgroup/coracle-probe".to_string()];
    script.push_str("probe_mkdir /sys/fs/cgroup/coracle-probe\n");
    for f in ["cgroup.max.descendants", "cgroup.max.depth"] {
        let p = format!("/sys/fs/cgroup/{f}");
        script.push_str(&format!("probe_write {p}\n"));
        paths.push(p);
    }
    // The limits, where this host's v2 hierarchy has the controllers.
    script.push_str(
        "for f in pids.max memory.max cpu.max; do [ ! -f /sys/fs/cgroup/$f ] || probe_write /sys/fs/cgroup/$f; done\n",
    );
    (script, paths)
}

/// The result line of every expected probe, in order; panics (with the whole output)
/// when one is missing.
#[track_caller]
fn probe_results<'a>(out: &'a Output, paths: &[String]) -> Vec<(&'a str, &'a str)> {
    paths
        .iter()
        .map(|p| {
            let prefix = format!("{p}: ");
            let line = out
                .stdout
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| {
                    panic!("no probe result for {p}:\n{}\n{}", out.stdout, out.stderr)
                });
            (&line[..p.len()], &line[prefix.len()..])
        })
        .collect()
}

#[track_caller]
fn assert_all_read_only(out: &Output, paths: &[String]) {
    out.assert_success();
    let bad: Vec<_> = probe_results(out, paths)
        .into_iter()
        .filter(|(_, r)| !r.ends_with(EROFS))
        .collect();
    assert!(
        bad.is_empty(),
        "writes under /sys/fs/cgroup that did not fail with EROFS: {bad:?}\n{}",
        out.stdout
    );
}

#[track_caller]
fn assert_all_written(out: &Output, paths: &[String]) {
    out.assert_success();
    let bad: Vec<_> = probe_results(out, paths)
        .into_iter()
        .filter(|(_, r)| *r != "written")
        .collect();
    assert!(bad.is_empty(), "privileged writes that failed: {bad:?}");
}

/// `coracle ARGS` with the test's store, env and network namespace, but run by `sh -c
/// SETUP` inside a private mount namespace of its own: SETUP lays out /sys/fs/cgroup
/// there, runs `"$@"` (coracle), cleans up and exits with coracle's status.
fn in_private_mount_ns(c: &Coracle, setup: &str, args: &[&str]) -> Output {
    let inner = c.command(args);
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        setup,
        "sh",
    ]);
    cmd.arg(inner.get_program()).args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.stdin(Stdio::null());
    netns(c).enter(&mut cmd);
    let out = cmd.output().expect("run unshare");
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// A fresh tmpfs over /sys/fs/cgroup holding binds of the host's hierarchies (so nothing
/// is created on the host's tmpfs), then `net_cls,net_prio` co-mounted there with
/// systemd's symlinks. Afterwards the cgroups coracle left in the new hierarchy are
/// removed and it is unmounted, so the kernel frees it.
const COMOUNT_SETUP: &str = r#"
set -e
old=$(mktemp -d)
mount --rbind /sys/fs/cgroup "$old"
mount -t tmpfs -o mode=755,nosuid,nodev,noexec tmpfs /sys/fs/cgroup
for d in "$old"/*; do
  n=${d##*/}
  if [ -L "$d" ]; then ln -s "$(readlink "$d")" "/sys/fs/cgroup/$n"; continue; fi
  mkdir "/sys/fs/cgroup/$n"
  mount --bind "$d" "/sys/fs/cgroup/$n"
done
umount -l "$old"; rmdir "$old"
h=/sys/fs/cgroup/net_cls,net_prio
mkdir "$h"
mount -t cgroup -o net_cls,net_prio cgroup "$h"
ln -s net_cls,net_prio /sys/fs/cgroup/net_cls
ln -s net_cls,net_prio /sys/fs/cgroup/net_prio
set +e
"$@"; rc=$?
find "$h" -mindepth 1 -depth -type d -exec rmdir {} \;
# The unmount frees the hierarchy only when its removed cgroups are gone (the kernel
# finishes removing them asynchronously): wait until the root is its only cgroup.
i=0
while ! grep -q '^net_cls[[:space:]]*[0-9]*[[:space:]]*1[[:space:]]' /proc/cgroups && [ $i -lt 200 ]; do
  sleep 0.05; i=$((i+1))
done
umount "$h"
exit $rc
"#;

/// cgroup2 mounted over /sys/fs/cgroup: the layout of a pure v2 host. The hierarchy is
/// the host's (there is one); the `coracle` parent cgroup is removed afterwards when
/// this run created it.
const V2_SETUP: &str = r#"
set -e
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
pre=; [ -d /sys/fs/cgroup/coracle ] && pre=1
set +e
"$@"; rc=$?
[ -n "$pre" ] || rmdir /sys/fs/cgroup/coracle 2>/dev/null
umount /sys/fs/cgroup
exit $rc
"#;

#[test]
fn default_container_cannot_write_any_cgroup_hierarchy() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    if host_is_cgroup_v2_only() {
        let (script, paths) = v2_probes();
        assert_all_read_only(&run(&c, &["box", "sh", "-c", &script]), &paths);
        let priv_out = run(&c, &["--privileged", "box", "sh", "-c", &script]);
        assert_all_written(&priv_out, &paths);
        return;
    }
    assert!(
        !host_v1_hierarchies().is_empty(),
        "no cgroup v1 hierarchy on this host"
    );
    let (script, paths) = v1_probes(true);
    let out = run(&c, &["box", "sh", "-c", &script]);
    assert_all_read_only(&out, &paths);

    // docker: --privileged gets them read-write (the host-root systemd view is left out:
    // a successful mkdir there would be a cgroup in the host's tree).
    let (script, paths) = v1_probes(false);
    let priv_out = run(&c, &["--privileged", "box", "sh", "-c", &script]);
    assert_all_written(&priv_out, &paths);
}

#[test]
fn pure_cgroup_v2_layout_is_read_only() {
    if skip_unless_root() {
        return;
    }
    if host_is_cgroup_v2_only() {
        eprintln!("skipped: the host is pure v2; default_container_cannot_write_any_cgroup_hierarchy covers it");
        return;
    }
    if !Path::new("/sys/fs/cgroup/unified").is_dir() {
        eprintln!("skipped: no cgroup2 hierarchy on this host to lay out as a v2 host");
        return;
    }
    let (_reg, c) = with_busybox();
    let (script, paths) = v2_probes();
    let check = format!("grep ' /sys/fs/cgroup ' /proc/self/mountinfo\n{script}");
    let out = in_private_mount_ns(&c, V2_SETUP, &["run", "--rm", "box", "sh", "-c", &check]);
    assert_all_read_only(&out, &paths);
    let mount = out.stdout.lines().next().unwrap_or_default();
    assert!(
        mount.contains(" ro,") && mount.contains(" - cgroup2 "),
        "cgroup2 read-only at /sys/fs/cgroup: {mount}"
    );
    let priv_out = in_private_mount_ns(
        &c,
        V2_SETUP,
        &["run", "--rm", "--privileged", "box", "sh", "-c", &script],
    );
    assert_all_written(&priv_out, &paths);
}

/// Whether `net_cls` and `net_prio` can be co-mounted here: both enabled, mounted nowhere
/// on the host, and not bound apart (a hierarchy left from an earlier run, still being
/// freed, is reused by the same mount).
fn net_cls_prio_free() -> bool {
    let cgroups = std::fs::read_to_string("/proc/cgroups").unwrap_or_default();
    let hierarchy = |name: &str| {
        cgroups.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[0] == name && f[3] == "1").then(|| f[1].to_string())
        })
    };
    let mounted = host_v1_hierarchies()
        .iter()
        .any(|h| h.split(',').any(|c| c == "net_cls" || c == "net_prio"));
    match (hierarchy("net_cls"), hierarchy("net_prio")) {
        (Some(a), Some(b)) => a == b && !mounted,
        _ => false,
    }
}

#[test]
fn co_mounted_controllers_run_and_are_read_only() {
    if skip_unless_root() {
        return;
    }
    if host_is_cgroup_v2_only() || !net_cls_prio_free() {
        eprintln!("skipped: net_cls and net_prio are not free v1 controllers on this host");
        return;
    }
    let (_reg, c) = with_busybox();
    let script = "cat /proc/self/cgroup; \
        echo link: $(readlink /sys/fs/cgroup/net_cls) $(readlink /sys/fs/cgroup/net_prio); \
        grep ' /sys/fs/cgroup/net_cls,net_prio ' /proc/self/mountinfo; \
        mkdir /sys/fs/cgroup/net_cls,net_prio/coracle-probe 2>&1; \
        mkdir /sys/fs/cgroup/net_prio/coracle-probe 2>&1; true";
    let out = in_private_mount_ns(
        &c,
        COMOUNT_SETUP,
        &["run", "--rm", "box", "sh", "-c", script],
    );
    out.assert_success();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.ends_with(":net_cls,net_prio:/")),
        "the container is in its own net_cls,net_prio cgroup:\n{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("link: net_cls,net_prio net_cls,net_prio\n"),
        "{}",
        out.stdout
    );
    let mount = out
        .stdout
        .lines()
        .find(|l| l.contains(" /sys/fs/cgroup/net_cls,net_prio "))
        .unwrap_or_else(|| panic!("co-mounted hierarchy not mounted:\n{}", out.stdout));
    assert!(mount.contains(" ro,"), "read-only: {mount}");
    assert!(
        mount.contains(" - cgroup ") && mount.contains("net_cls") && mount.contains("net_prio"),
        "{mount}"
    );
    assert_eq!(
        out.stdout.matches(EROFS).count(),
        2,
        "mkdir through the directory and the symlink fails with EROFS:\n{}",
        out.stdout
    );

    // --privileged: the same hierarchy, read-write.
    let out = in_private_mount_ns(
        &c,
        COMOUNT_SETUP,
        &[
            "run",
            "--rm",
            "--privileged",
            "box",
            "sh",
            "-c",
            "mkdir /sys/fs/cgroup/net_prio/coracle-probe && rmdir /sys/fs/cgroup/net_prio/coracle-probe && echo written",
        ],
    );
    out.assert_success();
    assert_eq!(out.stdout, "written\n");
}

#[test]
fn mounts_below_a_read_only_sys_fs_cgroup_still_work() {
    if skip_unless_root() {
        return;
    }
    if host_is_cgroup_v2_only() {
        eprintln!("skipped: a v2 host has no tmpfs at /sys/fs/cgroup");
        return;
    }
    // The tmpfs holding the hierarchies is made read-only only after every mount, so a
    // mount point that does not exist yet (docker makes it in its writable tmpfs) works.
    let (_reg, c) = with_busybox();
    let vol = c.tmp().join("cgroup-vol");
    std::fs::create_dir(&vol).unwrap();
    let bind = format!("{}:/sys/fs/cgroup/vol", vol.display());
    let out = run(
        &c,
        &[
            "--tmpfs",
            "/sys/fs/cgroup/extra",
            "-v",
            &bind,
            "box",
            "sh",
            "-c",
            "touch /sys/fs/cgroup/extra/f /sys/fs/cgroup/vol/f && echo written; \
             mkdir /sys/fs/cgroup/new 2>&1; true",
        ],
    );
    out.assert_success();
    assert!(out.stdout.starts_with("written\n"), "{}", out.stdout);
    assert!(out.stdout.contains(EROFS), "{}", out.stdout);
    assert!(vol.join("f").exists());
}

/// `coracle run --rm ARGS` where libcontainer takes its cgroup v2 path: on the host when
/// it is pure v2, else in the v2 layout made in a private mount namespace. `None` (the
/// test skips) where the host has no cgroup2 hierarchy.
fn run_on_v2(c: &Coracle, args: &[&str]) -> Option<Output> {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    if host_is_cgroup_v2_only() {
        return Some(c.run(all));
    }
    if !Path::new("/sys/fs/cgroup/unified").is_dir() {
        eprintln!("skipped: no cgroup2 hierarchy on this host to lay out as a v2 host");
        return None;
    }
    Some(in_private_mount_ns(c, V2_SETUP, &all))
}

/// Opens (read-only, no read: `: <PATH`) each NAME=PATH; one line each, `NAME: opened`
/// or `NAME: <errno text>`. The nodes under /tmp are made first with mknod (allowed:
/// docker's rules let a container make any node, only not open it).
const DEVICE_PROBE: &str = r#"
mknod /tmp/loop b 7 0 && mknod /tmp/loopctl c 10 237 && echo "mknod: ok"
probe() {
  if e=$( { : <"$2"; } 2>&1 ); then echo "$1: opened"; else echo "$1: ${e##*: }"; fi
}
probe loop /tmp/loop
probe loopctl /tmp/loopctl
for d in null zero full random urandom tty; do probe $d /dev/$d; done
[ -e /dev/loop-control ] && probe added /dev/loop-control
echo x >/dev/null && echo "write null: ok"
echo "read zero: $(head -c3 /dev/zero | wc -c) bytes"
"#;

#[track_caller]
fn device_result<'a>(out: &'a Output, name: &str) -> &'a str {
    let prefix = format!("{name}: ");
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no result for {name}:\n{}\n{}", out.stdout, out.stderr))
}

#[test]
fn cgroup_v2_device_rules_are_enforced() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let Some(out) = run_on_v2(&c, &["box", "sh", "-c", DEVICE_PROBE]) else {
        return;
    };
    out.assert_success();
    assert_eq!(device_result(&out, "mknod"), "ok");
    // The made nodes: a loop block device and /dev/loop-control, neither allowed.
    assert_eq!(device_result(&out, "loop"), "Operation not permitted");
    assert_eq!(device_result(&out, "loopctl"), "Operation not permitted");
    for d in ["null", "zero", "full", "random", "urandom"] {
        assert_eq!(device_result(&out, d), "opened", "{}", out.stdout);
    }
    // /dev/tty: allowed by the rules; with no controlling terminal the open gets ENXIO.
    assert_ne!(device_result(&out, "tty"), "Operation not permitted");
    assert_eq!(device_result(&out, "write null"), "ok");
    assert_eq!(device_result(&out, "read zero"), "3 bytes");

    // --device adds its rule; everything else stays denied.
    let out = run_on_v2(
        &c,
        &[
            "--device",
            "/dev/loop-control",
            "box",
            "sh",
            "-c",
            DEVICE_PROBE,
        ],
    )
    .expect("v2 layout");
    out.assert_success();
    assert_eq!(device_result(&out, "added"), "opened");
    assert_eq!(device_result(&out, "loop"), "Operation not permitted");

    // --privileged: every device. This also shows that nothing but the v2 rules (no v1
    // devices cgroup, no LSM) denied the node above.
    let out = run_on_v2(&c, &["--privileged", "box", "sh", "-c", DEVICE_PROBE]).expect("v2 layout");
    out.assert_success();
    assert_eq!(device_result(&out, "loop"), "opened");
    assert_eq!(device_result(&out, "loopctl"), "opened");
}

/// bpf(2) `BPF_PROG_QUERY`'s part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BpfQuery {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
}

const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_CGROUP_DEVICE: u32 = 6;

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: attr is the repr(C) prefix of union bpf_attr that cmd reads.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Ids of the device programs attached to the cgroup directory `dir`.
fn device_programs(dir: &Path) -> Vec<u32> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(dir).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()));
    let mut ids = [0u32; 64];
    let mut q = BpfQuery {
        target_fd: f.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut q).expect("BPF_PROG_QUERY");
    ids[..q.prog_cnt as usize].to_vec()
}

/// Whether BPF program `id` still exists (it is freed once nothing refers to it).
fn bpf_program_exists(id: u32) -> bool {
    let mut attr = [id, 0, 0];
    match bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) {
        Ok(fd) => {
            // SAFETY: the fd the kernel just gave us.
            unsafe { libc::close(fd as i32) };
            true
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => false,
        Err(e) => panic!("BPF_PROG_GET_FD_BY_ID {id}: {e}"),
    }
}

#[track_caller]
#[test]
fn cgroup_v2_device_program_goes_with_the_container() {
    if skip_unless_root() {
        return;
    }
    let v2_root = if host_is_cgroup_v2_only() {
        Path::new("/sys/fs/cgroup")
    } else {
        Path::new("/sys/fs/cgroup/unified")
    };
    if !v2_root.join("cgroup.procs").exists() {
        eprintln!("skipped: no cgroup2 hierarchy on this host");
        return;
    }
    let (_reg, c) = with_busybox();
    let sync = c.tmp().join("sync");
    std::fs::create_dir(&sync).unwrap();
    let vol = format!("{}:/sync", sync.display());
    let script = "touch /sync/up; while [ ! -e /sync/go ]; do sleep 0.05; done";
    std::thread::scope(|s| {
        let run = s.spawn(|| {
            run_on_v2(
                &c,
                &["--name", "devprog", "-v", &vol, "box", "sh", "-c", script],
            )
            .expect("v2 layout")
        });
        wait_for("the container to start", || {
            sync.join("up").exists() || run.is_finished()
        });
        if !sync.join("up").exists() {
            let out = run.join().unwrap();
            panic!(
                "the container did not start:\n{}\n{}",
                out.stdout, out.stderr
            );
        }
        let id = inspect_container(&c, "devprog")["Id"]
            .as_str()
            .expect("Id")
            .to_string();
        let cgroup = v2_root.join("coracle").join(&id);
        let progs = device_programs(&cgroup);
        // Where v1 is mounted the container's process is in its root devices cgroup,
        // which allows every device: the program is the only rule.
        let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap();
        let pid = procs.lines().next().expect("a process in the cgroup");
        let v1 = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        std::fs::write(sync.join("go"), "").unwrap();
        let out = run.join().unwrap();
        out.assert_success();
        assert_eq!(progs.len(), 1, "one device program on {}", cgroup.display());
        if let Some(l) = v1.lines().find(|l| l.contains(":devices:")) {
            assert!(l.ends_with(":devices:/"), "v1 devices cgroup: {l}");
        }
        assert!(!cgroup.exists(), "{} removed", cgroup.display());
        // The kernel frees a removed cgroup's programs asynchronously.
        wait_for("the device program to be freed", || {
            !bpf_program_exists(progs[0])
        });
    });
}
