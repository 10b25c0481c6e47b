//! Security options observed from inside containers: the default seccomp profile's
//! io_uring and AF_ALG denials, `--device DIR`, mounts refused over /proc, and what
//! `coracle info` says about the host's security features.

use crate::common::*;
use std::path::{Path, PathBuf};

/// A static probe calling io_uring_setup and socket(AF_ALG) and printing, for each,
/// "ok" or the errno's name.
const PROBE_C: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *result(long r) {
    if (r >= 0) return "ok";
    if (errno == EPERM) return "EPERM";
    if (errno == ENOSYS) return "ENOSYS";
    if (errno == EAFNOSUPPORT) return "EAFNOSUPPORT";
    return strerror(errno);
}

int main(void) {
    unsigned char params[120];
    memset(params, 0, sizeof params);
    long r = syscall(__NR_io_uring_setup, 1, params);
    printf("io_uring_setup %s\n", result(r));
    r = socket(38 /* AF_ALG */, SOCK_SEQPACKET, 0);
    printf("socket_af_alg %s\n", result(r));
    /* the families around it stay usable */
    r = socket(AF_INET, SOCK_STREAM, 0);
    printf("socket_af_inet %s\n", result(r));
    r = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("socket_af_unix %s\n", result(r));
    r = socket(40 /* AF_VSOCK */, SOCK_STREAM, 0);
    printf("socket_af_vsock %s\n", result(r));
    return 0;
}
"#;

/// Compiles the probe into `dir` with `cc -static`; None (after saying why) when no
/// compiler or static libc is installed (scripts/install-deps.sh installs both).
fn build_probe(dir: &Path) -> Option<PathBuf> {
    let src = dir.join("probe.c");
    let bin = dir.join("probe");
    std::fs::write(&src, PROBE_C).unwrap();
    let out = std::process::Command::new("cc")
        .arg("-static")
        .arg("-O")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .output();
    match out {
        Ok(o) if o.status.success() => Some(bin),
        Ok(o) => {
            eprintln!(
                "skipped: cc -static failed (install build-essential): {}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            eprintln!("skipped: no C compiler (install build-essential): {e}");
            None
        }
    }
}

fn probe_results(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn default_seccomp_denies_io_uring_and_af_alg() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let Some(probe) = build_probe(c.tmp()) else {
        return;
    };
    let volume = format!("{}:/probe:ro", probe.display());
    let expected: Vec<(String, String)> = [
        ("io_uring_setup", "EPERM"),
        ("socket_af_alg", "EPERM"),
        ("socket_af_inet", "ok"),
        ("socket_af_unix", "ok"),
        ("socket_af_vsock", "EPERM"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    // The built-in runtime, and crun (the bundle for an OCI runtime binary keeps the
    // spec's argument semantics, which the built-in one reads differently).
    let mut runtimes = vec!["youki"];
    if std::process::Command::new("crun")
        .arg("--version")
        .output()
        .is_ok()
    {
        crun_hybrid_cgroup_fix();
        runtimes.push("crun");
    } else {
        eprintln!("crun is not installed: only the built-in runtime is checked");
    }
    for runtime in runtimes {
        let out = run(&c, &["--runtime", runtime, "-v", &volume, "box", "/probe"]);
        out.assert_success();
        assert_eq!(
            probe_results(&out.stdout),
            expected,
            "{runtime}: {}",
            out.stdout
        );
    }

    // The control: the same calls get past seccomp when it is off, so the EPERM
    // above is the profile's (the host may still refuse them itself).
    let host = std::process::Command::new(&probe).output().unwrap();
    let host = probe_results(&String::from_utf8_lossy(&host.stdout));
    let out = run(
        &c,
        &[
            "--security-opt",
            "seccomp=unconfined",
            "-v",
            &volume,
            "box",
            "/probe",
        ],
    );
    out.assert_success();
    assert_eq!(probe_results(&out.stdout), host, "{}", out.stdout);
}

#[test]
fn device_dir_adds_its_nodes_or_is_refused() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    // No device node under it: docker's error, nothing created.
    let plain = c.tmp().join("plain");
    std::fs::create_dir_all(plain.join("sub")).unwrap();
    std::fs::write(plain.join("sub/file"), "x").unwrap();
    let out = run(&c, &["--device", plain.to_str().unwrap(), "box", "true"]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    let expected = format!(
        "error gathering device information while adding custom device {:?}: not a device node",
        plain.display().to_string()
    );
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    assert_eq!(c.run(["ps", "-aq"]).stdout, "", "no container was left");

    // Device nodes under it, at any depth, appear at the same place in the container
    // and are usable (the cgroup device rule lets them through).
    let devs = c.tmp().join("devs");
    std::fs::create_dir_all(devs.join("sub")).unwrap();
    let null = devs.join("sub/mynull");
    let made = std::process::Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(made.success(), "mknod");
    let spec = format!("{}:/dev/mydevs", devs.display());
    let out = run(
        &c,
        &[
            "--device",
            &spec,
            "box",
            "sh",
            "-c",
            "stat -c '%F %t:%T' /dev/mydevs/sub/mynull && echo hi > /dev/mydevs/sub/mynull && echo written",
        ],
    );
    out.assert_success();
    assert_eq!(out.stdout, "character special file 1:3\nwritten\n");
    // The built-in runtime makes device nodes only under /dev: said up front.
    let outside = format!("{}:/mydevs", devs.display());
    let out = run(&c, &["--device", &outside, "box", "true"]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("only under /dev, not at /mydevs/sub/mynull"),
        "{}",
        out.stderr
    );
}

#[test]
fn info_reports_security_options_and_cgroup_version() {
    let c = coracle();
    let out = c.run(["info"]);
    out.assert_success();
    let text = &out.stdout;
    assert!(text.starts_with("Client:\n"), "{text}");
    assert!(
        text.contains("\nServer:\n Containers: 0\n  Running: 0\n"),
        "{text}"
    );
    assert!(
        text.contains(" Security Options:\n  seccomp\n   Profile: builtin\n"),
        "{text}"
    );
    // This machine has neither LSM, and info says so.
    let apparmor = std::fs::read("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|b| b.first() == Some(&b'Y'));
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    if !apparmor && !selinux {
        assert!(
            text.contains("  (no AppArmor or SELinux: neither is enabled on this host)\n"),
            "{text}"
        );
        assert!(!text.contains("  apparmor\n") && !text.contains("  selinux\n"));
    }
    assert!(
        text.contains(&format!(" Root Dir: {}\n", c.root().display())),
        "{text}"
    );

    // The cgroup version as docker counts it: the unified hierarchy mounted at
    // /sys/fs/cgroup is 2, v1 and hybrid are 1.
    let v2 = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| {
            l.split_whitespace().nth(4) == Some("/sys/fs/cgroup") && l.contains(" - cgroup2 ")
        });
    let out = c.run(["info", "-f", "{{.CgroupVersion}}"]);
    out.assert_success();
    assert_eq!(out.stdout, if v2 { "2\n" } else { "1\n" });
    let out = c.run(["info", "--format", "{{json .}}"]);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["OSType"], "linux");
    assert_eq!(v["DefaultRuntime"], "youki");
    assert_eq!(v["Runtimes"]["youki"]["path"], "built-in");
    assert_eq!(v["ClientInfo"]["Context"], "default");
    let opts: Vec<&str> = v["SecurityOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert!(opts.contains(&"name=seccomp,profile=builtin"), "{opts:?}");
    assert_eq!(opts.contains(&"name=apparmor"), apparmor, "{opts:?}");
    assert_eq!(
        c.run(["info", "-f", "{{.Containers}} {{.Images}}"]).stdout,
        "0 0\n"
    );
    assert_eq!(c.run(["info", "-f", "{{.Nope"]).code, 64);
}

#[test]
fn mounts_over_proc_are_refused() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let host_dir = c.tmp().join("fake-sys");
    std::fs::create_dir_all(&host_dir).unwrap();
    let bind = format!("{}:/proc/sys", host_dir.display());
    for (args, why) in [
        (
            vec!["--tmpfs", "/proc"],
            "\"/proc\" cannot be mounted because it is not of type proc",
        ),
        (
            vec!["--tmpfs", "/proc/sys"],
            "\"/proc/sys\" cannot be mounted because it is inside /proc",
        ),
        (
            vec!["--mount", "type=tmpfs,target=/proc/sys/kernel"],
            "is inside /proc",
        ),
        (
            vec!["-v", &bind],
            "\"/proc/sys\" cannot be mounted because it is inside /proc",
        ),
        (
            vec!["-v", "vol:/proc"],
            "\"/proc\" cannot be mounted because it is not of type proc",
        ),
    ] {
        let mut all = args.clone();
        all.extend_from_slice(&["box", "true"]);
        let out = run(&c, &all);
        assert_eq!(out.code, 125, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(why), "{args:?}: {}", out.stderr);
    }
    assert_eq!(c.run(["ps", "-aq"]).stdout, "", "no container was left");
    // A tmpfs elsewhere still works.
    let out = run(&c, &["--tmpfs", "/procx", "box", "true"]);
    out.assert_success();
}

/// On a host without AppArmor or SELinux (this one), their options are checked and,
/// as docker does, have no effect; a malformed one is refused.
#[test]
fn lsm_options_are_checked_and_ignored_without_the_lsm() {
    if skip_unless_root() {
        return;
    }
    let apparmor = std::fs::read("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|b| b.first() == Some(&b'Y'));
    if apparmor || std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        eprintln!("skipped: this host has AppArmor or SELinux");
        return;
    }
    let (_reg, c) = with_busybox();
    let out = run(&c, &["--security-opt", "label=colour:red", "box", "true"]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(out.stderr.contains("bad label option"), "{}", out.stderr);
    let data = c.tmp().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f"), "hello\n").unwrap();
    let bind = format!("{}:/data:Z", data.display());
    let out = run(
        &c,
        &[
            "--security-opt",
            "apparmor=some-profile",
            "--security-opt",
            "label=type:spc_t",
            "-v",
            &bind,
            "box",
            "cat",
            "/data/f",
        ],
    );
    out.assert_success();
    assert_eq!(out.stdout, "hello\n");
    // Nothing was relabelled.
    let mut buf = [0u8; 256];
    assert!(rustix::fs::getxattr(&data, "security.selinux", &mut buf[..]).is_err());
}
