//! A container's processes start with every signal at its default action, as under
//! docker. An ignored signal survives `execve`, so a `coracle run` from a shell that
//! ignores some (`nohup` ignores SIGHUP, a background job SIGINT and SIGQUIT) would
//! hand them on through the monitor and the runtime to the container: its init would
//! then never see a `docker stop`-style SIGHUP or a Ctrl-C it traps.

/// The kernel's `struct sigaction` (x86_64 and arm64 both define SA_RESTORER). The raw
/// system call is used because glibc refuses signals 32 and 33, which it reserves but
/// a caller may still have ignored (and the container's libc may use).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

const SIG_IGN: usize = 1;

/// Puts every ignored signal back to its default action. Async-signal-safe (only the
/// `rt_sigaction` system call), so it may run between fork and exec.
pub(crate) fn reset() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let mut old = KernelSigaction {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        let default = KernelSigaction {
            handler: 0, // SIG_DFL
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: both pointers are to live structs of the kernel's layout for this
        // system call, with the kernel's sigset size (8 bytes); SIG_DFL installs no
        // handler.
        unsafe {
            let size = std::mem::size_of::<u64>();
            let got = libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::null::<KernelSigaction>(),
                &mut old,
                size,
            );
            if got == 0 && old.handler == SIG_IGN {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &default,
                    std::ptr::null_mut::<KernelSigaction>(),
                    size,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// In a child process (the test runner's own dispositions stay as they are).
    #[test]
    fn ignored_signals_are_back_to_default_glibcs_reserved_ones_too() {
        // SAFETY: fork in a test; the child only makes system calls and _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            unsafe {
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                let ign = super::KernelSigaction {
                    handler: super::SIG_IGN,
                    flags: 0,
                    restorer: 0,
                    mask: 0,
                };
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    32,
                    &ign,
                    std::ptr::null_mut::<u8>(),
                    8,
                );
                super::reset();
                let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
                let ok = status.lines().any(|l| l == "SigIgn:\t0000000000000000");
                libc::_exit(if ok { 0 } else { 1 });
            }
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "{status}"
        );
    }
}
