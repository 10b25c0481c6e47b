//! Persistent network namespaces: created on a thread of the caller, pinned by a bind
//! mount of their nsfs file (as `ip netns add` and podman do) so they outlive every
//! process in them, and entered for a while by one thread with `run_in`.
//!
//! Namespaces are per thread: everything here uses `/proc/thread-self/ns/net`, never
//! `/proc/self/ns/net`, which names the main thread's namespace.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::mount::{mount_bind, unmount, UnmountFlags};
use rustix::thread::{move_into_link_name_space, unshare_unsafe, LinkNameSpaceType, UnshareFlags};

use crate::NetError;

const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// New network namespace bind-mounted at `path` (parent dirs created), `setup` run
/// inside it before it is returned (`link::create_netns` brings `lo` up there). The
/// calling thread's own namespace is unchanged afterwards.
///
/// `path` must not exist yet: a leftover from a crash is the caller's to `remove` first.
pub fn create(path: &Path, setup: impl FnOnce() -> Result<(), NetError>) -> Result<(), NetError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(NetError::io("create directory", parent))?;
    }
    // Mode 0444 as `ip netns add`: the file is only a mount point for the nsfs inode.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
        .map_err(NetError::io("create netns file", path))?;
    let created = unshare_and_pin(path, setup);
    if created.is_err() {
        // The original error is the one worth reporting; this is cleanup only.
        let _ = remove(path);
    }
    created
}

fn unshare_and_pin(
    path: &Path,
    setup: impl FnOnce() -> Result<(), NetError>,
) -> Result<(), NetError> {
    let original = File::open(THREAD_NETNS).map_err(NetError::io("open", THREAD_NETNS))?;
    // SAFETY: only CLONE_NEWNET is unshared; the fd table stays shared with the other
    // threads, which is what `unshare_unsafe` asks callers to guarantee.
    unsafe { unshare_unsafe(UnshareFlags::NEWNET) }.map_err(|e| NetError::Sys {
        call: "unshare(CLONE_NEWNET)",
        source: e.into(),
    })?;
    let inside = mount_bind(THREAD_NETNS, path)
        .map_err(|e| NetError::Io {
            op: "bind-mount netns onto",
            path: path.into(),
            source: e.into(),
        })
        .and_then(|()| setup());
    let back = enter(&original);
    inside.and(back)
}

/// Unmount (MNT_DETACH) and delete; a missing file is Ok.
pub fn remove(path: &Path) -> Result<(), NetError> {
    match unmount(path, UnmountFlags::DETACH) {
        // EINVAL: not a mount point (a create that failed before mounting).
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => {
            return Err(NetError::Io {
                op: "unmount netns",
                path: path.into(),
                source: e.into(),
            })
        }
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(NetError::Io {
            op: "remove netns file",
            path: path.into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Runs `f` on the calling thread inside the namespace at `path`, then returns the thread
/// to its previous namespace (sockets opened inside stay in that namespace).
pub fn run_in<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T, NetError> {
    let target = File::open(path).map_err(NetError::io("open netns", path))?;
    let original = File::open(THREAD_NETNS).map_err(NetError::io("open", THREAD_NETNS))?;
    enter(&target)?;
    let guard = Return {
        original: Some(original),
    };
    let out = f();
    guard.now()?;
    Ok(out)
}

fn enter(ns: &File) -> Result<(), NetError> {
    move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network)).map_err(|e| {
        NetError::Sys {
            call: "setns(CLONE_NEWNET)",
            source: e.into(),
        }
    })
}

/// Takes the thread back to its namespace even when `f` panics, so an unwinding thread
/// (or a caught panic) never keeps working in the container's namespace.
struct Return {
    original: Option<File>,
}

impl Return {
    fn now(mut self) -> Result<(), NetError> {
        match self.original.take() {
            Some(original) => enter(&original),
            None => Ok(()),
        }
    }
}

impl Drop for Return {
    fn drop(&mut self) {
        if let Some(original) = self.original.take() {
            let _ = enter(&original);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::fs::MetadataExt;
    use std::process::Command;

    /// Runs `f` on a thread in a namespace of its own, so the host's is never touched.
    /// Skipped, saying so, unless root.
    fn in_fresh_netns(f: impl FnOnce() + Send + 'static) {
        if coracle_testsupport::skip_unless_root() {
            return;
        }
        std::thread::spawn(move || {
            unsafe { unshare_unsafe(UnshareFlags::NEWNET) }.expect("unshare(CLONE_NEWNET)");
            f()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    fn thread_netns_inode() -> u64 {
        fs::metadata(THREAD_NETNS).unwrap().ino()
    }

    fn is_mounted(path: &Path) -> bool {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let path = path.to_str().unwrap();
        mountinfo.lines().any(|l| l.split(' ').nth(4) == Some(path))
    }

    /// `lo` up in the thread's namespace: `ip`, forked from this thread, starts in it.
    fn lo_up() -> Result<(), NetError> {
        let ok = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip link set lo up");
        Ok(())
    }

    #[test]
    fn create_pins_a_new_namespace_runs_setup_inside_and_remove_undoes_it() {
        in_fresh_netns(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("a/b/ns1");
            let before = thread_netns_inode();
            create(&path, lo_up).unwrap();
            assert_eq!(
                thread_netns_inode(),
                before,
                "create must leave the thread where it was"
            );
            assert!(is_mounted(&path));
            assert_ne!(
                fs::metadata(&path).unwrap().ino(),
                before,
                "a new namespace"
            );

            let out = Command::new("nsenter")
                .arg(format!("--net={}", path.display()))
                .args(["ip", "-j", "link", "show", "lo"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let links: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let flags = links[0]["flags"].as_array().unwrap();
            assert!(flags.iter().any(|f| f == "UP"), "lo is up: {links}");

            assert!(
                create(&path, || Ok(())).is_err(),
                "an existing path is refused"
            );
            assert!(
                is_mounted(&path),
                "a refused create leaves the existing one alone"
            );

            remove(&path).unwrap();
            assert!(!path.exists());
            assert!(!is_mounted(&path));
            remove(&path).unwrap();
        })
    }

    #[test]
    fn run_in_enters_and_returns_and_sockets_stay_inside() {
        in_fresh_netns(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ns");
            create(&path, lo_up).unwrap();
            let before = thread_netns_inode();
            let ns_inode = fs::metadata(&path).unwrap().ino();

            let (inside, listener) = run_in(&path, || {
                (
                    thread_netns_inode(),
                    TcpListener::bind("127.0.0.1:0").unwrap(),
                )
            })
            .unwrap();
            assert_eq!(inside, ns_inode);
            assert_eq!(thread_netns_inode(), before);

            let addr = listener.local_addr().unwrap();
            // Our namespace's loopback is down and has no listener there.
            assert!(TcpStream::connect(addr).is_err());
            run_in(&path, || TcpStream::connect(addr))
                .unwrap()
                .expect("connect inside");
            assert_eq!(thread_netns_inode(), before);

            let panicked = std::panic::catch_unwind(|| run_in(&path, || panic!("boom")));
            assert!(panicked.is_err());
            assert_eq!(thread_netns_inode(), before, "a panic inside still returns");

            remove(&path).unwrap();
        })
    }

    #[test]
    fn run_in_a_file_that_is_no_namespace_fails_and_stays_put() {
        in_fresh_netns(|| {
            let dir = tempfile::tempdir().unwrap();
            let plain = dir.path().join("plain");
            fs::write(&plain, "").unwrap();
            let before = thread_netns_inode();
            let err = run_in(&plain, || ()).unwrap_err();
            assert!(matches!(err, NetError::Sys { .. }), "{err}");
            let err = run_in(&dir.path().join("missing"), || ()).unwrap_err();
            assert!(matches!(err, NetError::Io { .. }), "{err}");
            assert_eq!(thread_netns_inode(), before);
        })
    }
}
