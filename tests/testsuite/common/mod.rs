//! Shared set-up for the black-box tests: the coracle binary with an isolated store,
//! and registries started per test on loopback.
#![allow(dead_code)]

pub use coracle_testsupport::*;
use std::path::Path;

pub fn coracle() -> Coracle {
    Coracle::new(env!("CARGO_BIN_EXE_coracle"))
}

pub use coracle_testsupport::skip_unless_root;

/// Start a registry with no auth holding busybox as `test/busybox:latest`.
pub fn registry_with_busybox() -> (Registry, Image) {
    let reg = Registry::start().expect("start registry");
    let image = busybox_image();
    push(&reg.host(), "test/busybox", "latest", &image, None).expect("push busybox");
    (reg, image)
}

/// Names of the entries of a directory (empty if it does not exist), sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Committed layer directories (temp ones start with a dot).
pub fn layer_dirs(c: &Coracle) -> Vec<String> {
    entries(&c.root().join("layers"))
        .into_iter()
        .filter(|e| !e.starts_with('.'))
        .collect()
}

/// Blobs in the content store.
pub fn blobs(c: &Coracle) -> Vec<String> {
    entries(&c.root().join("blobs/sha256"))
}

pub fn inspect(c: &Coracle, image: &str) -> serde_json::Value {
    let out = c.run(["image", "inspect", image]);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("inspect prints JSON");
    v[0].clone()
}

/// A store with busybox pulled and tagged `box`, plus its registry (keep it alive).
/// Pulled from the host's namespace (the registry listens on its loopback); every later
/// command runs in a network namespace of the test's own, so containers on the default
/// bridge never touch the host's network.
pub fn with_busybox() -> (Registry, Coracle) {
    let (reg, _image) = registry_with_busybox();
    let mut c = coracle();
    let name = format!("{}/test/busybox", reg.host());
    c.run(["pull", "-q", &name]).assert_success();
    c.run(["tag", &name, "box"]).assert_success();
    c.isolate_network();
    (reg, c)
}

/// The test's network namespace ([`with_busybox`] made one).
#[track_caller]
pub fn netns(c: &Coracle) -> &NetNs {
    c.netns()
        .expect("the store was isolated in a network namespace")
}

/// `inspect NAME` (a container) as JSON.
#[track_caller]
pub fn inspect_container(c: &Coracle, name: &str) -> serde_json::Value {
    let out = c.run(["inspect", name]);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("inspect prints JSON");
    v[0].clone()
}

/// Polls `GET /` on `addr` from inside the namespace until an HTTP answer comes (20 s at
/// most); the status and body.
#[track_caller]
pub fn wait_http(ns: &NetNs, addr: std::net::SocketAddr) -> (u16, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match ns.http_get(addr, "/") {
            Ok(r) => return r,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("no HTTP answer from {addr} in the test namespace: {e}")
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

/// `coracle run --rm ARGS...`.
pub fn run(c: &Coracle, args: &[&str]) -> Output {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    c.run(all)
}

/// crun (not coracle) refuses hybrid cgroup hosts until the v1 hugetlb hierarchy is
/// mounted; the machine's fix, applied idempotently for the peer.
pub fn crun_hybrid_cgroup_fix() {
    let hybrid = std::path::Path::new("/sys/fs/cgroup/unified").is_dir();
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(" /sys/fs/cgroup/hugetlb ");
    if hybrid && !mounted {
        std::fs::create_dir_all("/sys/fs/cgroup/hugetlb").unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "cgroup",
                "-o",
                "hugetlb",
                "cgroup",
                "/sys/fs/cgroup/hugetlb",
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount the hugetlb cgroup hierarchy for crun");
    }
}

/// Polls `f` every 50 ms until it holds; panics naming `what` after `timeout`.
#[track_caller]
/// [`wait_until`] with a minute's deadline, ample on a loaded machine.
pub fn wait_for(what: &str, f: impl FnMut() -> bool) {
    wait_until(what, std::time::Duration::from_secs(60), f)
}

pub fn wait_until(what: &str, timeout: std::time::Duration, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The container's IPv4 address on `network` (`inspect`: NetworkSettings.Networks).
#[track_caller]
pub fn ip_on(c: &Coracle, name: &str, network: &str) -> String {
    let v = inspect_container(c, name);
    v["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has an address on {network}: {v:#}"))
        .to_string()
}

/// Arguments after `run -d` for a busybox web server answering `GET /` with
/// "hello from NAME\n" on port 80.
pub fn web_server(name: &str) -> Vec<String> {
    vec![
        "box".into(),
        "sh".into(),
        "-c".into(),
        format!(
            "mkdir -p /www && echo 'hello from {name}' > /www/index.html && exec httpd -f -p 80 -h /www"
        ),
    ]
}

/// A tiny HTTP server listening on 0.0.0.0:`port` inside the namespace (the "host"'s
/// services), answering every request with 200 and `body`; stops when dropped.
pub struct HostServer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HostServer {
    pub fn start(ns: &NetNs, port: u16, body: &str) -> HostServer {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = ns
            .run_in(move || std::net::TcpListener::bind(("0.0.0.0", port)))
            .expect("bind the host server in the test namespace");
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let body = body.to_string();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                        let mut buf = [0u8; 1024];
                        let _ = s.read(&mut buf);
                        let _ = write!(
                            s,
                            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        });
        HostServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HostServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A store on a tmpfs of `size` mounted over the test store's root, for disk-full
/// cases. Drop removes the store's containers (the `Coracle`'s own Drop) before
/// unmounting.
pub struct TmpfsStore {
    pub c: Option<Coracle>,
    pub mount: std::path::PathBuf,
}

impl TmpfsStore {
    pub fn new(c: Coracle, size: &str) -> TmpfsStore {
        let mount = c.root();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(&mount)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount a tmpfs on {}", mount.display());
        TmpfsStore { c: Some(c), mount }
    }

    pub fn c(&self) -> &Coracle {
        self.c.as_ref().unwrap()
    }

    pub fn c_mut(&mut self) -> &mut Coracle {
        self.c.as_mut().unwrap()
    }
}

impl Drop for TmpfsStore {
    fn drop(&mut self) {
        drop(self.c.take());
        let _ = rustix::mount::unmount(&self.mount, rustix::mount::UnmountFlags::DETACH);
    }
}

/// Fills the file system of `path` (a new file) until it refuses more.
pub fn fill(path: &Path) -> std::fs::File {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    for chunk in [1 << 20, 4096, 1] {
        let buf = vec![0u8; chunk];
        loop {
            match f.write(&buf) {
                Ok(n) if n == buf.len() => {}
                Ok(_) => break,
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(28), "fill {path:?}: {e}"); // ENOSPC
                    break;
                }
            }
        }
    }
    f
}

/// Takes whatever space appears on a full file system (writing to `f`) until dropped:
/// the store gives back its reserve when full, and this takes it again while the
/// command under test runs.
pub struct KeepFull {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KeepFull {
    pub fn start(mut f: std::fs::File) -> KeepFull {
        use std::io::Write;
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let buf = [0u8; 4096];
            while !flag.load(Ordering::Relaxed) {
                if f.write(&buf).is_err() && f.write(&buf[..1]).is_err() {
                    std::thread::yield_now();
                }
            }
        });
        KeepFull {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for KeepFull {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
