//! Docker's defaults, as data: moby's `oci/defaults.go` and `daemon/oci_linux.go`.
//!
//! Everything here is a constant or a pure function so that the spec builder and its
//! golden tests share one source of truth.

/// PATH when the image sets none (docker's `oci.DefaultPathEnv` on Linux).
pub const DEFAULT_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Size of /dev/shm when `--shm-size` is not given: 64 MiB, as docker.
pub const DEFAULT_SHM_SIZE: u64 = 64 * 1024 * 1024;

/// The CFS period docker uses to turn `--cpus` into a quota.
pub const DEFAULT_CPU_PERIOD: u64 = 100_000;

/// Where the `--init` binary is bound inside the container (docker: /sbin/docker-init).
pub const INIT_PATH: &str = "/sbin/docker-init";

/// Docker's smallest allowed `--memory` (6 MiB, `linuxMinMemory`).
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// Docker's default capability set (moby `oci.DefaultCapabilities`), in docker's order.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability Linux knows, indexed by its number (`CAP_CHOWN` = 0 ...
/// `CAP_CHECKPOINT_RESTORE` = 40). `--privileged` and `--cap-add ALL` take the prefix of
/// this list up to the host's `/proc/sys/kernel/cap_last_cap`.
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The highest capability number this build knows (`CAP_CHECKPOINT_RESTORE`).
pub const LAST_CAP: u8 = 40;

/// Paths masked in a non-privileged container (moby `oci/defaults.go`).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths made read-only in a non-privileged container (moby `oci/defaults.go`).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's `--ulimit` names and the rlimit each one sets (go-units `ulimitNameMapping`).
pub const ULIMIT_NAMES: [(&str, &str); 15] = [
    ("core", "RLIMIT_CORE"),
    ("cpu", "RLIMIT_CPU"),
    ("data", "RLIMIT_DATA"),
    ("fsize", "RLIMIT_FSIZE"),
    ("locks", "RLIMIT_LOCKS"),
    ("memlock", "RLIMIT_MEMLOCK"),
    ("msgqueue", "RLIMIT_MSGQUEUE"),
    ("nice", "RLIMIT_NICE"),
    ("nofile", "RLIMIT_NOFILE"),
    ("nproc", "RLIMIT_NPROC"),
    ("rss", "RLIMIT_RSS"),
    ("rtprio", "RLIMIT_RTPRIO"),
    ("rttime", "RLIMIT_RTTIME"),
    ("sigpending", "RLIMIT_SIGPENDING"),
    ("stack", "RLIMIT_STACK"),
];

/// Default options of a `--tmpfs` mount (docker: `noexec,nosuid,nodev`, tmpfs
/// defaults for size and mode).
pub const TMPFS_DEFAULT_OPTIONS: [&str; 3] = ["noexec", "nosuid", "nodev"];

/// A cgroup device rule: (allow, type, major, minor, access). `None` = wildcard.
pub type DeviceRule = (bool, char, Option<i64>, Option<i64>, &'static str);

/// The device cgroup rules of a non-privileged container: deny everything, then the
/// devices every container gets. Docker writes the first and the `fuse` deny; runc and
/// youki add the rest implicitly (runc `AllowedDevices`). We write them all out so that
/// every runtime (youki, crun, runc) enforces the same set.
pub const DEFAULT_DEVICE_RULES: [DeviceRule; 13] = [
    (false, 'a', None, None, "rwm"),
    (true, 'c', None, None, "m"),             // mknod of any char device
    (true, 'b', None, None, "m"),             // mknod of any block device
    (true, 'c', Some(1), Some(3), "rwm"),     // /dev/null
    (true, 'c', Some(1), Some(5), "rwm"),     // /dev/zero
    (true, 'c', Some(1), Some(7), "rwm"),     // /dev/full
    (true, 'c', Some(1), Some(8), "rwm"),     // /dev/random
    (true, 'c', Some(1), Some(9), "rwm"),     // /dev/urandom
    (true, 'c', Some(5), Some(0), "rwm"),     // /dev/tty
    (true, 'c', Some(5), Some(1), "rwm"),     // /dev/console
    (true, 'c', Some(5), Some(2), "rwm"),     // /dev/ptmx
    (true, 'c', Some(136), None, "rwm"),      // /dev/pts/*
    (false, 'c', Some(10), Some(229), "rwm"), // /dev/fuse, denied as docker
];

/// The cgroups path of a container: one explicit path that is valid under the v2
/// unified hierarchy and under every v1 hierarchy alike (youki needs it explicit).
pub fn cgroups_path(container_id: &str) -> String {
    format!("/coracle/{container_id}")
}

/// The rlimit name docker's `--ulimit NAME=` maps to, if NAME is one docker knows.
pub fn ulimit_rlimit(name: &str) -> Option<&'static str> {
    ULIMIT_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, r)| *r)
}
