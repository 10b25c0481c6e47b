//! Where debug logging (`-D`, `--log-level`, `CORACLE_LOG`) is written: stderr, as it
//! was when the runtime last pinned it, and never with a panic.
//!
//! libcontainer logs from the processes it forks for a container. The container's init
//! moves the container's own stdio onto fds 0-2 early, so events written to fd 2 from
//! there on would land in the container's stderr (and its logs). [`pin_stderr`], called
//! before the runtime forks, keeps a close-on-exec duplicate of the engine's stderr
//! (the monitor's `monitor.log`, a client's terminal) that every later event goes to:
//! the forked processes inherit it until they exec the container's program.

use std::io::Write;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// The pinned fd, or -1 for fd 2 as it is at each write.
static PINNED: AtomicI32 = AtomicI32::new(-1);
/// A second destination, or -1: the client's stderr while a monitor starts a container.
static MIRROR: AtomicI32 = AtomicI32::new(-1);

/// The environment variable naming the fd a spawned monitor mirrors its log to.
pub const MIRROR_FD_ENV: &str = "CORACLE_LOG_FD";

/// An `io::Write` for the log subscriber: writes to the pinned stderr and reports
/// success whatever happens. A monitor's stderr is a file in the store: on a full disk
/// a failing write must lose the line, not the monitor (the subscriber would print the
/// error with `eprintln!`, which panics).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSink;

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let fd = match PINNED.load(Ordering::Relaxed) {
            -1 => 2,
            fd => fd,
        };
        write_all(fd, buf);
        match MIRROR.load(Ordering::Relaxed) {
            -1 => {}
            fd => write_all(fd, buf),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes what it can; errors lose the rest.
fn write_all(fd: RawFd, buf: &[u8]) {
    let mut rest = buf;
    while !rest.is_empty() {
        // SAFETY: writes from a live slice to fd 2 or to the pinned duplicate,
        // which is never closed.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n > 0 {
            rest = &rest[n as usize..];
        } else if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {
            continue;
        } else {
            break;
        }
    }
}

/// Also writes every event to `fd` (made close-on-exec here) until [`clear_mirror`].
/// A monitor started by a client at debug level mirrors to the client's stderr while
/// it starts the container: its own `monitor.log` may be gone (`--rm`) by the time the
/// client could read it.
pub fn set_mirror(fd: RawFd) {
    // SAFETY: fcntl on an fd number; a bad one just fails.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == 0 {
        MIRROR.store(fd, Ordering::Relaxed);
    }
}

/// Ends [`set_mirror`] and closes its fd.
pub fn clear_mirror() {
    let fd = MIRROR.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: the mirror fd was handed to this process to own.
        unsafe { libc::close(fd) };
    }
}

/// Makes log events go to what fd 2 is now, even after a forked child of this process
/// has put something else there. Cheap when already pinned to the same open file.
pub fn pin_stderr() {
    let current = PINNED.load(Ordering::Relaxed);
    if current >= 0 && same_file(current, 2) {
        return;
    }
    let Ok(dup) = rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stderr(), 3) else {
        return;
    };
    // Kept open for good: events go to it from any thread.
    let dup = std::os::fd::IntoRawFd::into_raw_fd(dup);
    // The old duplicate is left open (another thread may be writing to it); a process
    // pins again only when its stderr changed, which happens once or twice at most.
    PINNED.store(dup, Ordering::Relaxed);
}

fn same_file(a: RawFd, b: RawFd) -> bool {
    let stat = |fd: RawFd| nix::sys::stat::fstat(fd).ok().map(|s| (s.st_dev, s.st_ino));
    matches!((stat(a), stat(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn write_errors_are_swallowed() {
        // A pipe whose read end is gone: the write fails (EPIPE), the sink succeeds.
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        // SAFETY: the test process ignores SIGPIPE so the write returns EPIPE.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        let old = PINNED.swap(w.as_raw_fd(), Ordering::Relaxed);
        assert_eq!(LogSink.write(b"lost line\n").unwrap(), 10);
        PINNED.store(old, Ordering::Relaxed);
    }
}
