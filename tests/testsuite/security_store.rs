//! The store belongs to its owner alone (issue 10, items 2 and 5). A local user must
//! reach nothing under it: not the setuid files and device nodes of layers and upper
//! dirs (which made them root), not the `-e` secrets in config.json and state.db, not
//! logs; and `coracle --root <root's store>` must say whose store it is rather than
//! print part of it. Containers running as non-root users inside must not notice.
//! The unprivileged user is an account the test creates and removes.

use crate::common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

const SECRET: &str = "SECRET=hunter2-e7c1";

/// useradd and userdel lock /etc/passwd and fail when another holds it.
static ACCOUNTS: Mutex<()> = Mutex::new(());
/// /run/coracle is shared by every store: one test makes it world-readable for a while.
static RUN_DIR: Mutex<()> = Mutex::new(());

/// An unprivileged account made for one test, deleted on drop (also when it fails).
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestUser {
    fn create() -> TestUser {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("cortest{}x{n}", std::process::id());
        let _g = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let out = Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home"])
            .args(["--shell", "/bin/false", &name])
            .output()
            .expect("run useradd");
        assert!(out.status.success(), "useradd {name}: {out:?}");
        let user = TestUser {
            uid: id(&name, "-u"),
            gid: id(&name, "-g"),
            name,
        };
        assert_ne!(user.uid, 0);
        user
    }

    /// `program` as this user (std drops root's supplementary groups), a minimal
    /// environment.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.uid(self.uid)
            .gid(self.gid)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", "/")
            .current_dir("/");
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program} as {}: {e}", self.name));
        Output {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
        }
    }

    /// `coracle --root STORE args` as this user.
    fn coracle(&self, c: &Coracle, args: &[&str]) -> Output {
        let root = c.root().display().to_string();
        let mut all = vec!["--root", &root];
        all.extend_from_slice(args);
        self.run(&c.bin().display().to_string(), &all)
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _g = ACCOUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

fn id(name: &str, flag: &str) -> u32 {
    let out = Command::new("id").args([flag, name]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .mode()
        & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A store holding busybox with a setuid copy of it in a layer (`box`), its parent
/// dir opened up (the test's temp dir is 0700) so the store's own modes are what
/// keep a local user out, and the registry (keep it alive).
fn store_with_setuid_image() -> (Registry, Coracle) {
    let reg = Registry::start().expect("start registry");
    let busybox = fs::read(busybox_path()).unwrap();
    let image = busybox_builder()
        .layer(&Layer::new().file("bin/suid", &busybox, 0o4755))
        .build();
    push(&reg.host(), "test/suid", "latest", &image, None).expect("push image");
    let mut c = coracle();
    let name = format!("{}/test/suid", reg.host());
    c.run(["pull", "-q", &name]).assert_success();
    c.run(["tag", &name, "box"]).assert_success();
    c.isolate_network();
    chmod(c.tmp(), 0o755);
    (reg, c)
}

/// Runs `victim` whose root made a setuid shell and a block device in its upper dir
/// (the attack's set-up), with a secret in its environment; returns its id.
fn start_victim(c: &Coracle) -> String {
    c.run([
        "run",
        "-d",
        "--name",
        "victim",
        "-e",
        SECRET,
        "box",
        "sh",
        "-c",
        "cp /bin/busybox /tmp/sh && chmod 4755 /tmp/sh && mknod /tmp/blk b 7 0 \
         && echo ready && exec sleep 1000",
    ])
    .assert_success();
    wait_for("the victim to be ready", || {
        c.run(["logs", "victim"]).stdout.contains("ready")
    });
    inspect_container(c, "victim")["Id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The committed layer directory holding `rel`.
fn layer_with(c: &Coracle, rel: &str) -> PathBuf {
    layer_dirs(c)
        .into_iter()
        .map(|d| c.root().join("layers").join(d))
        .find(|d| d.join(rel).exists())
        .unwrap_or_else(|| panic!("no layer holds {rel}"))
}

/// The message an unprivileged user gets for root's store.
#[track_caller]
fn assert_refused(out: &Output, c: &Coracle, code: i32) {
    let want = format!(
        "permission denied: this store belongs to root ({})",
        c.root().display()
    );
    assert!(out.stderr.contains(&want), "expected {want:?}:\n{out:?}");
    assert_eq!(out.code, code, "{out:?}");
    assert_eq!(out.stdout, "", "nothing of the store is printed");
}

#[test]
fn local_user_reaches_nothing_in_roots_store() {
    if skip_unless_root() {
        return;
    }
    let user = TestUser::create();
    let (_reg, c) = store_with_setuid_image();
    let id = start_victim(&c);
    let cdir = c.root().join("containers").join(&id);
    let layer_suid = layer_with(&c, "bin/suid").join("bin/suid");
    let targets = [
        layer_suid.clone(),
        cdir.join("upper/tmp/sh"),
        cdir.join("merged/tmp/sh"),
        cdir.join("upper/tmp/blk"),
        cdir.join("merged/tmp/blk"),
        cdir.join("config.json"),
        cdir.join("container.json"),
        cdir.join("monitor.log"),
        cdir.join(format!("{id}-json.log")),
        c.root().join("state.db"),
    ];
    for t in &targets {
        assert!(t.exists(), "{} exists (as root)", t.display());
    }
    assert_eq!(mode(&cdir.join("upper/tmp/sh")), 0o4755);
    assert!(fs::read_to_string(cdir.join("config.json"))
        .unwrap()
        .contains(SECRET));

    for t in &targets {
        let p = t.display().to_string();
        let out = user.run("stat", &["--", &p]);
        assert!(
            out.code != 0 && out.stderr.contains("Permission denied"),
            "{} could stat {p}: {out:?}",
            user.name
        );
        let out = user.run("cat", &["--", &p]);
        assert!(out.code != 0 && !out.stdout.contains("hunter2"), "{out:?}");
    }
    for exe in [
        &layer_suid,
        &cdir.join("upper/tmp/sh"),
        &cdir.join("merged/tmp/sh"),
    ] {
        let err = user
            .command(exe)
            .args(["id", "-u"])
            .output()
            .expect_err("a setuid file in the store must not be executable by others");
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied, "{exe:?}");
    }
    let out = user.run(
        "dd",
        &[
            &format!("if={}", cdir.join("upper/tmp/blk").display()),
            "count=0",
        ],
    );
    assert!(out.stderr.contains("Permission denied"), "{out:?}");

    assert_refused(&user.coracle(&c, &["ps", "-a"]), &c, 1);
    assert_refused(&user.coracle(&c, &["inspect", "victim"]), &c, 1);
    assert_refused(&user.coracle(&c, &["logs", "victim"]), &c, 1);
    assert_refused(&user.coracle(&c, &["images"]), &c, 1);
    assert_refused(&user.coracle(&c, &["run", "--rm", "box", "true"]), &c, 125);

    assert_private_modes(&c, &id);
}

/// Every directory of the store (and of the runtime dir) 0700, every config or state
/// file 0600; the /etc files mounted into the container stay readable inside it.
fn assert_private_modes(c: &Coracle, id: &str) {
    let root = c.root();
    assert_eq!(mode(&root), 0o700, "{}", root.display());
    for entry in fs::read_dir(&root).unwrap().flatten() {
        let p = entry.path();
        let want = if entry.file_type().unwrap().is_dir() {
            0o700
        } else {
            0o600
        };
        assert_eq!(mode(&p), want, "{}", p.display());
    }
    for d in ["blobs", "layers", "tmp", "containers", "volumes"] {
        assert_eq!(mode(&root.join(d)), 0o700, "{d}");
    }
    let cdir = root.join("containers").join(id);
    assert_eq!(mode(&cdir), 0o700);
    for f in [
        "config.json",
        "container.json",
        "monitor.log",
        &format!("{id}-json.log"),
    ] {
        assert_eq!(mode(&cdir.join(f)), 0o600, "{f}");
    }
    for f in ["hosts", "hostname", "resolv.conf"] {
        assert_eq!(mode(&cdir.join(f)), 0o644, "{f}");
    }
    let _g = RUN_DIR.lock().unwrap_or_else(|e| e.into_inner());
    for d in ["", "runtime", "netns", "attach"] {
        let p = Path::new("/run/coracle").join(d);
        assert_eq!(mode(&p), 0o700, "{}", p.display());
    }
    let sock = Path::new("/run/coracle/attach").join(format!("{id}.sock"));
    assert_eq!(mode(&sock) & 0o777, 0o600, "{}", sock.display());
}

/// A store made by an older coracle (0755 directories, 0644 files): an unprivileged
/// user is refused before anything is read, and root's next command makes it private.
#[test]
fn old_world_readable_store_is_made_private_on_open() {
    if skip_unless_root() {
        return;
    }
    let user = TestUser::create();
    let (_reg, c) = store_with_setuid_image();
    let id = start_victim(&c);
    let root = c.root();
    let cdir = root.join("containers").join(&id);
    let mut dirs = vec![root.clone(), cdir.clone()];
    let mut files = vec![];
    for entry in fs::read_dir(&root).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            dirs.push(entry.path());
        } else {
            files.push(entry.path());
        }
    }
    for f in [
        "config.json",
        "container.json",
        "monitor.log",
        &format!("{id}-json.log"),
    ] {
        files.push(cdir.join(f));
    }
    for d in &dirs {
        chmod(d, 0o755);
    }
    for f in &files {
        chmod(f, 0o644);
    }

    let out = user.coracle(&c, &["inspect", "victim"]);
    assert!(!out.stdout.contains("hunter2"), "{out:?}");
    assert_refused(&out, &c, 1);
    assert_eq!(mode(&root), 0o755, "the user changed nothing");

    {
        let _g = RUN_DIR.lock().unwrap_or_else(|e| e.into_inner());
        chmod(Path::new("/run/coracle"), 0o755);
        c.run(["ps"]).assert_success();
        assert_eq!(mode(Path::new("/run/coracle")), 0o700);
    }
    for d in &dirs {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    let out = user.run(
        "cat",
        &["--", &cdir.join("config.json").display().to_string()],
    );
    assert!(out.stderr.contains("Permission denied"), "{out:?}");
}

/// Private store directories do not get in the way of containers whose processes are
/// not root: overlay reads the layers with the mounter's credentials, and volumes,
/// bind mounts, /etc files and the init binary are reached through the container's
/// own mounts.
#[test]
fn non_root_containers_still_work_in_a_private_store() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    assert_eq!(mode(&c.root()), 0o700);

    let out = c.run(["run", "--rm", "--user", "1000", "box", "ls", "/"]);
    assert!(out.assert_success().stdout.contains("bin"), "{out:?}");
    let out = c.run(["run", "--rm", "-u", "1000:1000", "box", "cat", "/etc/hosts"]);
    assert!(out.assert_success().stdout.contains("localhost"), "{out:?}");
    let out = c.run(["run", "--rm", "--init", "-u", "1000", "box", "id", "-u"]);
    assert_eq!(out.assert_success().stdout.trim(), "1000");

    c.run([
        "run",
        "--rm",
        "-v",
        "vol:/data",
        "box",
        "sh",
        "-c",
        "echo hi > /data/f && chown 1000 /data",
    ])
    .assert_success();
    let out = c.run([
        "run",
        "--rm",
        "-u",
        "1000",
        "-v",
        "vol:/data",
        "box",
        "sh",
        "-c",
        "cat /data/f && echo w > /data/g && cat /data/g",
    ]);
    assert_eq!(out.assert_success().stdout, "hi\nw\n");

    let host = tempfile::tempdir().unwrap();
    chmod(host.path(), 0o755);
    fs::write(host.path().join("f"), "bind\n").unwrap();
    let bind = format!("{}:/host:ro", host.path().display());
    let out = c.run([
        "run", "--rm", "-u", "1000", "-v", &bind, "box", "cat", "/host/f",
    ]);
    assert_eq!(out.assert_success().stdout, "bind\n");

    c.run(["run", "-d", "--name", "sleeper", "box", "sleep", "1000"])
        .assert_success();
    let out = c.run(["exec", "-u", "1000", "sleeper", "sh", "-c", "id -u && ls /"]);
    let text = out.assert_success().stdout.clone();
    assert!(
        text.starts_with("1000\n") && text.contains("bin"),
        "{out:?}"
    );
}
