//! Seeing what went wrong (Issue 11 A.4, A.5): `-D`, `--log-level`, `CORACLE_LOG`
//! print debug lines naming the steps, the default level prints none, and a runtime
//! failure names the mount, the call and the errno without debug; a store on overlayfs
//! either works or fails with the real cause.

use crate::common::*;
use std::path::PathBuf;

/// Debug lines of coracle's tracing output (`... DEBUG target: message`).
fn debug_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(" DEBUG ")).collect()
}

#[test]
fn debug_flags_and_env_print_the_steps() {
    if skip_unless_root() {
        return;
    }
    let (reg, _image) = registry_with_busybox();
    let mut c = coracle();
    let name = format!("{}/test/busybox", reg.host());
    let pull = c.run(["-D", "pull", "-q", &name]);
    pull.assert_success();
    for step in ["resolving the manifest", "unpacking layer"] {
        assert!(
            debug_lines(&pull.stderr).iter().any(|l| l.contains(step)),
            "pull: no debug line for {step:?} in:\n{}",
            pull.stderr
        );
    }
    c.run(["tag", &name, "box"]).assert_success();
    c.isolate_network();
    let quiet = c.run(["run", "--rm", "box", "true"]);
    quiet.assert_success();
    assert_eq!(quiet.stderr, "", "the default level prints nothing");
    let info = c.run(["--log-level", "info", "run", "--rm", "box", "true"]);
    info.assert_success();
    assert_eq!(
        info.stderr, "",
        "info prints nothing for a command that works"
    );

    for args in [
        vec!["-D", "run", "--rm", "box", "true"],
        vec!["--debug", "run", "--rm", "box", "true"],
        vec!["--log-level", "debug", "run", "--rm", "box", "true"],
        vec!["-l", "debug", "run", "--rm", "box", "true"],
    ] {
        let out = c.run(&args);
        out.assert_success();
        let lines = debug_lines(&out.stderr);
        for step in [
            "opening the store",
            "runtime create",
            "runtime start",
            "mounting",
        ] {
            assert!(
                lines.iter().any(|l| l.contains(step)),
                "{args:?}: no debug line for {step:?} in:\n{}",
                out.stderr
            );
        }
    }
    c.env("CORACLE_LOG", "debug");
    let out = c.run(["run", "--rm", "box", "true"]);
    out.assert_success();
    assert!(
        debug_lines(&out.stderr)
            .iter()
            .any(|l| l.contains("libcontainer create")),
        "CORACLE_LOG=debug: {}",
        out.stderr
    );
    // A filter that names one crate shows that crate only.
    c.env("CORACLE_LOG", "coracle_engine=debug");
    let out = c.run(["run", "--rm", "box", "true"]);
    out.assert_success();
    let lines = debug_lines(&out.stderr);
    assert!(
        lines.iter().any(|l| l.contains("opening the store")),
        "{}",
        out.stderr
    );
    assert!(
        lines.iter().all(|l| l.contains("coracle_engine")),
        "only coracle_engine's events: {}",
        out.stderr
    );
    c.run(["--log-level", "loud", "ps"]).assert_code(125);

    // The detached monitor inherits the level and logs to its monitor.log.
    c.env("CORACLE_LOG", "");
    let out = c.run(["-D", "run", "-d", "--name", "dbg", "box", "sleep", "1000"]);
    out.assert_success();
    let id = out.stdout.trim().to_string();
    let log = c.root().join("containers").join(&id).join("monitor.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains("container running"),
        "{}: {text}",
        log.display()
    );
    // At the default level a failed exec prints our error, no library's log lines.
    let out = c.run(["run", "-d", "--name", "quiet", "box", "sleep", "1000"]);
    out.assert_success();
    let exec = c.run(["exec", "quiet", "nosuchcmd"]);
    assert_ne!(exec.code, 0);
    assert!(
        !exec.stderr.contains("ERROR") && !exec.stderr.contains("libcontainer"),
        "{}",
        exec.stderr
    );
    let id = out.stdout.trim().to_string();
    let log = c.root().join("containers").join(&id).join("monitor.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("DEBUG"), "{}: {text}", log.display());
    c.run(["rm", "-f", "dbg", "quiet"]).assert_success();
}

#[test]
fn a_failed_mount_names_the_mount_the_call_and_the_errno() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    // The kernel refuses the unknown tmpfs option inside libcontainer's rootfs set-up.
    let out = c.run(["run", "--rm", "--tmpfs", "/x:foo=bar", "box", "true"]);
    out.assert_code(125);
    for part in [
        "prepare rootfs",
        "tmpfs",
        "on /x",
        "fsconfig foo=bar",
        "EINVAL",
    ] {
        assert!(
            out.stderr.contains(part),
            "{part:?} missing from: {}",
            out.stderr
        );
    }
    assert!(debug_lines(&out.stderr).is_empty(), "{}", out.stderr);
    assert_eq!(c.run(["ps", "-aq"]).stdout, "", "--rm leaves nothing");
    // docker's `run -d` whose start fails keeps the container, Created, with the error.
    let out = c.run([
        "run",
        "-d",
        "--name",
        "bad",
        "--tmpfs",
        "/x:foo=bar",
        "box",
        "true",
    ]);
    out.assert_code(125);
    assert!(out.stderr.contains("fsconfig foo=bar"), "{}", out.stderr);
    let state = &inspect_container(&c, "bad")["State"];
    assert_eq!(state["Status"], "created", "{state}");
    assert!(
        state["Error"]
            .as_str()
            .unwrap_or("")
            .contains("fsconfig foo=bar"),
        "{state}"
    );
}

/// An overlayfs the test mounts over the store's root (coracle inside a container).
struct OverlayRoot {
    c: Option<Coracle>,
    target: PathBuf,
}

impl Drop for OverlayRoot {
    fn drop(&mut self) {
        drop(self.c.take());
        let _ = rustix::mount::unmount(&self.target, rustix::mount::UnmountFlags::DETACH);
    }
}

#[test]
fn a_store_on_overlayfs_runs_its_containers() {
    if skip_unless_root() {
        return;
    }
    let (reg, _image) = registry_with_busybox();
    let c = coracle();
    let base = c.tmp().join("ovl");
    for d in ["lower", "upper", "work"] {
        std::fs::create_dir_all(base.join(d)).unwrap();
    }
    let target = c.root();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        base.join("lower").display(),
        base.join("upper").display(),
        base.join("work").display()
    );
    let ok = std::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&target)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mount an overlay on {}", target.display());
    let mut store = OverlayRoot { c: Some(c), target };
    let c = store.c.as_mut().unwrap();
    let name = format!("{}/test/busybox", reg.host());
    c.run(["pull", "-q", &name]).assert_success();
    c.run(["tag", &name, "box"]).assert_success();
    c.isolate_network();
    // Overlay cannot take an upper dir on overlayfs: the layers are copied instead.
    let out = c.run(["run", "--rm", "box", "echo", "hi"]);
    assert_ne!(
        out.code, 127,
        "never 'executable file not found': {}",
        out.stderr
    );
    out.assert_success();
    assert_eq!(out.stdout, "hi\n");
    let out = c.run(["run", "-d", "--name", "ovl", "box", "sleep", "1000"]);
    out.assert_success();
    assert_eq!(inspect_container(c, "ovl")["State"]["Status"], "running");
    c.run(["rm", "-f", "ovl"]).assert_success();
    let ps = c.run(["ps", "-aq"]);
    assert_eq!(ps.stdout, "", "nothing left behind");
}
