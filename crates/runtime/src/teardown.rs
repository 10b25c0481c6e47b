//! Removing what a container leaves on the host once it is killed: its cgroup
//! directories in every hierarchy and its runtime state directory, so that neither
//! outlives it.
//!
//! A killed container's processes leave its cgroups asynchronously (the kernel tears
//! each one down after SIGKILL; other processes of its pid namespace are killed only as
//! its init exits), and `rmdir` of a cgroup fails with EBUSY until every one has gone.
//! libcontainer gives up after about 100 ms, which a loaded host exceeds. So teardown
//! kills again, thaws frozen cgroups (a frozen process cannot act on SIGKILL on cgroup
//! v1), and retries until the cgroups are gone or a generous deadline passes.
//!
//! Every runtime operation on one container's state directory is serialised with a
//! `flock` on that directory ([`lock_dir`]): libcontainer rewrites `state.json` in place
//! (truncate, then write) on `kill`, so a `delete` running at the same time read an
//! empty file, or found the directory refilled while removing it ("Directory not
//! empty"), and left everything behind.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use coracle_core::ErrorKind;
use rustix::fs::{flock, FlockOperation};
use rustix::process::{kill_process, Pid, Signal};

/// How long teardown keeps killing a container's processes and retrying before it
/// reports the cgroups it could not remove.
pub const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    /// A cgroup path that names no container's own cgroup (empty, root, `..`).
    #[error("refusing to remove cgroup {0:?}: not a container's own cgroup")]
    BadCgroupPath(String),
    #[error("remove cgroup {path} ({left} left after {secs}s): {source}")]
    Cgroup {
        path: PathBuf,
        left: usize,
        secs: u64,
        #[source]
        source: io::Error,
    },
    #[error("remove runtime state {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl TeardownError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            TeardownError::BadCgroupPath(_) => ErrorKind::InvalidArgument,
            TeardownError::Cgroup { .. } | TeardownError::StateDir { .. } => ErrorKind::Internal,
        }
    }
}

/// Mount points of every cgroup hierarchy, v1 and v2 (from /proc/self/mountinfo).
pub fn cgroup_mounts() -> Vec<PathBuf> {
    fs::read_to_string("/proc/self/mountinfo")
        .map(|info| parse_cgroup_mounts(&info))
        .unwrap_or_default()
}

fn parse_cgroup_mounts(info: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            let point = left.split_whitespace().nth(4)?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| PathBuf::from(unescape(point)))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) if b[i] == b'\\' => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `cgroups_path` (the spec's `linux.cgroupsPath`) relative to a hierarchy's root,
/// refused unless it names a cgroup below the root.
fn relative(cgroups_path: &str) -> Result<PathBuf, TeardownError> {
    let rel = Path::new(cgroups_path.trim_start_matches('/'));
    let ok =
        rel.components().count() > 0 && rel.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(rel.to_path_buf())
    } else {
        Err(TeardownError::BadCgroupPath(cgroups_path.to_string()))
    }
}

/// The container's cgroup directories that exist, in every hierarchy.
pub fn cgroup_dirs(cgroups_path: &str) -> Result<Vec<PathBuf>, TeardownError> {
    let rel = relative(cgroups_path)?;
    Ok(cgroup_mounts()
        .into_iter()
        .map(|m| m.join(&rel))
        .filter(|p| p.is_dir())
        .collect())
}

/// Whether the process whose `/proc/PID/cgroup` is `proc_cgroup` is in the cgroup
/// `cgroups_path` (or below it) in some hierarchy. A container's init that is not
/// has exited: its pid may belong to another process by now.
pub fn in_cgroup(proc_cgroup: &str, cgroups_path: &str) -> bool {
    let want = format!("/{}", cgroups_path.trim_matches('/'));
    proc_cgroup.lines().any(|l| {
        let path = l.splitn(3, ':').nth(2).unwrap_or_default();
        path == want
            || path
                .strip_prefix(want.as_str())
                .is_some_and(|r| r.starts_with('/'))
    })
}

/// Kills every process in the cgroups at `cgroups_path` (every hierarchy, child
/// cgroups included), waits for them to go and removes the directories. Kills again
/// and retries until `timeout`; then reports what is left.
pub fn remove_cgroups(cgroups_path: &str, timeout: Duration) -> Result<(), TeardownError> {
    let rel = relative(cgroups_path)?;
    let mounts = cgroup_mounts();
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(5);
    loop {
        let mut left: Vec<(PathBuf, io::Error)> = Vec::new();
        for m in &mounts {
            let top = m.join(&rel);
            for dir in subtree_deepest_first(&top) {
                kill_members(&dir);
                match fs::remove_dir(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => left.push((dir, e)),
                }
            }
        }
        let Some((path, source)) = left.pop() else {
            return Ok(());
        };
        if Instant::now() >= deadline {
            return Err(TeardownError::Cgroup {
                path,
                left: left.len() + 1,
                secs: timeout.as_secs(),
                source,
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

/// `dir` and the cgroups below it, children before their parents (empty if `dir`
/// does not exist).
fn subtree_deepest_first(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(subtree_deepest_first(&e.path()));
            }
        }
    } else {
        return out;
    }
    out.push(dir.to_path_buf());
    out
}

/// SIGKILL to every process and thread of the cgroup `dir`, and thaws it.
fn kill_members(dir: &Path) {
    // cgroup v2 (5.14+) kills the whole subtree, forks racing the kill included.
    let _ = fs::write(dir.join("cgroup.kill"), "1");
    for file in ["cgroup.procs", "tasks"] {
        let Ok(text) = fs::read_to_string(dir.join(file)) else {
            continue;
        };
        // 0 is a member in another pid namespace: not one we can name (and kill(0)
        // would be our own process group).
        let pids = text.lines().filter_map(|l| l.trim().parse::<i32>().ok());
        for pid in pids.filter_map(Pid::from_raw) {
            let _ = kill_process(pid, Signal::KILL);
        }
    }
    // A frozen process dies only once thawed (v1 freezer; v2 lets SIGKILL through,
    // thawing is harmless there).
    let freezer = dir.join("freezer.state");
    if fs::read_to_string(&freezer).is_ok_and(|s| s.trim() != "THAWED") {
        let _ = fs::write(&freezer, "THAWED");
    }
    let freeze = dir.join("cgroup.freeze");
    if fs::read_to_string(&freeze).is_ok_and(|s| s.trim() != "0") {
        let _ = fs::write(&freeze, "0");
    }
}

/// Removes a runtime state directory; retries for a while when something creates
/// entries in it meanwhile (a runtime command that does not take [`lock_dir`]).
pub fn remove_state_dir(dir: &Path, timeout: Duration) -> Result<(), TeardownError> {
    let deadline = Instant::now() + timeout;
    loop {
        match fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(TeardownError::StateDir {
                    path: dir.to_path_buf(),
                    source: e,
                })
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// A `flock` on a container's runtime state directory: exclusive for commands that
/// change the state (start, kill, pause, resume, delete), shared for readers. Released
/// when the file drops (or the holder dies). Fails with NotFound once the directory
/// is gone: the caller then treats the container as deleted.
pub fn lock_dir(dir: &Path, exclusive: bool) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)?;
    let op = if exclusive {
        FlockOperation::LockExclusive
    } else {
        FlockOperation::LockShared
    };
    loop {
        match flock(&f, op) {
            Ok(()) => break,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Deleted while we waited: the lock is on a directory nobody sees any more.
    if !dir.exists() {
        return Err(io::Error::from(io::ErrorKind::NotFound));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_mounts_are_parsed_from_mountinfo() {
        let info = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:4 - cgroup2 cgroup2 rw
50 23 0:40 / /tmp/odd\\040dir rw - cgroup2 cgroup2 rw
60 23 0:41 / /proc rw - proc proc rw
";
        assert_eq!(
            parse_cgroup_mounts(info),
            [
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/unified",
                "/tmp/odd dir"
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn cgroup_membership_from_proc_pid_cgroup() {
        let v1 = "12:pids:/coracle/abc\n4:memory:/coracle/abc\n1:name=systemd:/user.slice\n0::/";
        assert!(in_cgroup(v1, "/coracle/abc"));
        assert!(!in_cgroup(v1, "/coracle/ab"));
        assert!(in_cgroup("0::/coracle/abc/sub\n", "/coracle/abc"));
        assert!(!in_cgroup("0::/coracle/abcd\n", "/coracle/abc"));
        assert!(!in_cgroup(
            "0::/user.slice/session-1.scope\n",
            "/coracle/abc"
        ));
    }

    #[test]
    fn only_a_cgroup_below_the_root_is_removed() {
        for bad in ["", "/", "//", "/coracle/../..", ".."] {
            assert!(
                matches!(relative(bad), Err(TeardownError::BadCgroupPath(_))),
                "{bad:?}"
            );
        }
        assert_eq!(relative("/coracle/abc").unwrap(), Path::new("coracle/abc"));
        assert_eq!(relative("coracle/abc").unwrap(), Path::new("coracle/abc"));
    }

    #[test]
    fn subtrees_list_children_before_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path().join("c");
        fs::create_dir_all(top.join("a/x")).unwrap();
        fs::create_dir_all(top.join("b")).unwrap();
        fs::write(top.join("cgroup.procs"), "").unwrap();
        let order = subtree_deepest_first(&top);
        let pos = |p: &str| order.iter().position(|d| d == &top.join(p)).unwrap();
        assert_eq!(order.len(), 4);
        assert!(pos("a/x") < pos("a") && pos("a") < pos("") && pos("b") < pos(""));
        assert!(subtree_deepest_first(&tmp.path().join("none")).is_empty());
    }

    #[test]
    fn a_state_dir_lock_excludes_and_reports_a_deleted_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("id");
        fs::create_dir(&dir).unwrap();
        let held = lock_dir(&dir, true).unwrap();
        let f = fs::File::open(&dir).unwrap();
        let r = flock(&f, FlockOperation::NonBlockingLockShared);
        assert_eq!(
            r,
            Err(rustix::io::Errno::WOULDBLOCK),
            "a second lock must wait"
        );
        drop(held);
        drop(lock_dir(&dir, false).unwrap());
        remove_state_dir(&dir, Duration::from_secs(1)).unwrap();
        assert_eq!(
            lock_dir(&dir, true).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        remove_state_dir(&dir, Duration::from_secs(1)).unwrap();
    }
}
