//! The device allow-list on cgroup v2: a `BPF_PROG_TYPE_CGROUP_DEVICE` program built
//! from the spec's `linux.resources.devices` and attached to the container's cgroup.
//!
//! cgroup v2 has no devices controller: the kernel asks the BPF programs attached to the
//! task's cgroup on every device open and mknod, and allows everything when there are
//! none. youki's libcgroups 0.7.0 builds that program only with its `cgroupsv2_devices`
//! feature, which we leave off (it needs libbpf and libelf, and raises RLIMIT_MEMLOCK's
//! hard limit to 128 MiB or fails every create, which an engine without
//! CAP_SYS_RESOURCE cannot do). Without a program a default container on a pure v2
//! host, whose root has CAP_MKNOD, could mknod the host's disks and read them. So the
//! built-in runtime attaches the program itself, between libcontainer's create (the
//! cgroup exists, no user code has run) and start, as runc and crun do in theirs.
//!
//! The program is crun's and runc's: the rules are checked last to first and the first
//! that matches decides, which is cgroup v1's "the last rule wins"; none matching denies.
//! A deny rule matches when it covers any of the requested accesses (v1 removes those
//! from the allowed set), an allow rule only when it covers all of them. The program is
//! attached with `BPF_F_ALLOW_MULTI`, so a program in a nested cgroup adds restrictions
//! and cannot lift ours; it lives as long as the cgroup (its fd is closed at once).

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use coracle_core::ErrorKind;
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, Spec};

/// Where libcontainer looks for the cgroup hierarchy (libcgroups' `DEFAULT_CGROUP_ROOT`).
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

// From <linux/bpf.h>.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const ACC_ALL: i32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    #[error("device cgroup rule {rule}: {reason}")]
    InvalidRule { rule: String, reason: &'static str },
    #[error("cgroup path {0:?} of the container is not a plain absolute path")]
    CgroupPath(PathBuf),
    #[error("load the container's device cgroup BPF program: {verifier}{source}")]
    Load {
        verifier: String,
        #[source]
        source: io::Error,
    },
    #[error("attach the device cgroup BPF program to {path}: {source}")]
    Attach {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("open cgroup {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl DevicesError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            DevicesError::InvalidRule { .. } | DevicesError::CgroupPath(_) => {
                ErrorKind::InvalidArgument
            }
            _ => ErrorKind::Internal,
        }
    }
}

/// Whether /sys/fs/cgroup is the cgroup v2 hierarchy: then libcontainer puts the
/// container there (its v2 path), and only a BPF program enforces the device rules.
pub fn host_is_unified() -> bool {
    statfs(CGROUP_ROOT).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
}

/// On a pure cgroup v2 host, attaches the spec's device rules to the container's cgroup
/// (which libcontainer created). Elsewhere libcontainer's v1 devices controller applies
/// them and this does nothing.
pub fn apply(spec: &Spec) -> Result<(), DevicesError> {
    if !host_is_unified() || !in_initial_user_ns_as_root() {
        return Ok(());
    }
    let linux = spec.linux().as_ref();
    let Some(cgroup) = linux.and_then(|l| l.cgroups_path().as_ref()) else {
        // Coracle always sets one; without it libcontainer would pick its own.
        return Err(DevicesError::CgroupPath(PathBuf::new()));
    };
    let rules = linux
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().clone())
        .unwrap_or_default();
    let program = program(&rules)?;
    let dir = cgroup_dir(cgroup)?;
    let prog = load(&program)?;
    attach(&prog, &dir)
}

/// Rootless (not root, or in a user namespace, as libcontainer tells them apart): no
/// cgroup of ours to attach to and no BPF without CAP_BPF, and none needed: a user
/// namespace cannot make device nodes (mknod needs CAP_MKNOD in the initial one).
fn in_initial_user_ns_as_root() -> bool {
    nix::unistd::geteuid().is_root()
        && std::fs::read_to_string("/proc/self/uid_map")
            .is_ok_and(|m| m.split_whitespace().eq(["0", "0", "4294967295"]))
}

/// The container's cgroup directory under the v2 root; the path must stay inside it.
fn cgroup_dir(cgroup: &Path) -> Result<PathBuf, DevicesError> {
    let mut dir = PathBuf::from(CGROUP_ROOT);
    for c in cgroup.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => dir.push(n),
            _ => return Err(DevicesError::CgroupPath(cgroup.to_path_buf())),
        }
    }
    Ok(dir)
}

/// One eBPF instruction, `struct bpf_insn` (little- or big-endian as the host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        // The register nibbles follow the bitfield order of the host's C ABI.
        let regs = if cfg!(target_endian = "little") {
            dst | (src << 4)
        } else {
            (dst << 4) | src
        };
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }
}

// Opcodes, and registers: R1 the context, R2..R5 its fields, R0 the verdict.
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_W | BPF_MEM
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

/// One rule in the program's terms: `None` is a wildcard.
struct Rule {
    typ: Option<i32>,
    access: i32,
    major: Option<i32>,
    minor: Option<i32>,
    allow: bool,
}

fn rule_of(r: &LinuxDeviceCgroup) -> Result<Option<Rule>, DevicesError> {
    let invalid = |reason| DevicesError::InvalidRule {
        rule: format!("{r:?}"),
        reason,
    };
    let typ = match r.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => None,
        LinuxDeviceType::B => Some(DEV_BLOCK),
        LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
        // A fifo is no device: the kernel never asks about one.
        LinuxDeviceType::P => return Ok(None),
    };
    let mut access = 0;
    for c in r.access().as_deref().unwrap_or("rwm").chars() {
        access |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => return Err(invalid("access is not a combination of r, w and m")),
        };
    }
    if access == 0 {
        return Ok(None);
    }
    let number = |n: Option<i64>| match n {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        Some(n) => i32::try_from(n)
            .map(Some)
            .map_err(|_| invalid("device number out of range")),
    };
    Ok(Some(Rule {
        typ,
        access,
        major: number(r.major())?,
        minor: number(r.minor())?,
        allow: r.allow(),
    }))
}

/// The program for `rules` (in the spec's order).
fn program(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>, DevicesError> {
    let mut p = vec![
        Insn::new(LDX_W, 2, 1, 0, 0),        // R2 = access_type
        Insn::new(AND32_K, 2, 0, 0, 0xffff), // R2 = type
        Insn::new(LDX_W, 3, 1, 0, 0),        // R3 = access_type
        Insn::new(RSH32_K, 3, 0, 0, 16),     // R3 = access
        Insn::new(LDX_W, 4, 1, 4, 0),        // R4 = major
        Insn::new(LDX_W, 5, 1, 8, 0),        // R5 = minor
    ];
    let rules: Vec<Rule> = rules
        .iter()
        .filter_map(|r| rule_of(r).transpose())
        .collect::<Result<_, _>>()?;
    for r in rules.iter().rev() {
        let mut checks = Vec::new();
        if let Some(t) = r.typ {
            checks.push((JNE_K, 2, 0, t));
        }
        if r.access != ACC_ALL {
            checks.push((MOV32_X, 1, 3, 0));
            checks.push((AND32_K, 1, 0, r.access));
            // allow: every requested access covered (R1 == R3); deny: any of them (R1 != 0)
            checks.push(if r.allow {
                (JNE_X, 1, 3, 0)
            } else {
                (JEQ_K, 1, 0, 0)
            });
        }
        if let Some(m) = r.major {
            checks.push((JNE_K, 4, 0, m));
        }
        if let Some(m) = r.minor {
            checks.push((JNE_K, 5, 0, m));
        }
        let wildcard = checks.is_empty();
        let n = checks.len();
        for (i, (code, dst, src, imm)) in checks.into_iter().enumerate() {
            // A jump skips the rest of this rule's checks and its verdict (2 insns).
            let off = if code == MOV32_X || code == AND32_K {
                0
            } else {
                (n - i - 1 + 2) as i16
            };
            p.push(Insn::new(code, dst, src, off, imm));
        }
        p.push(Insn::new(MOV64_K, 0, 0, 0, r.allow as i32));
        p.push(Insn::new(EXIT, 0, 0, 0, 0));
        if wildcard {
            // Matches everything: the rules before it are never reached.
            return Ok(p);
        }
    }
    p.push(Insn::new(MOV64_K, 0, 0, 0, 0));
    p.push(Insn::new(EXIT, 0, 0, 0, 0));
    Ok(p)
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: attr is a repr(C) prefix of union bpf_attr for cmd, size passed with it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// The BPF_PROG_LOAD part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
}

fn load(program: &[Insn]) -> Result<OwnedFd, DevicesError> {
    let license = CString::new("Apache-2.0").expect("no NUL");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: program.len() as u32,
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    let mut r = bpf(BPF_PROG_LOAD, &mut attr);
    if r.is_err() {
        // Before Linux 5.11 programs count against RLIMIT_MEMLOCK: use what the hard
        // limit allows (never above it), then ask again with the verifier's log.
        raise_memlock_to_hard_limit();
        let mut log = vec![0u8; 64 * 1024];
        attr.log_level = 1;
        attr.log_size = log.len() as u32;
        attr.log_buf = log.as_mut_ptr() as u64;
        r = bpf(BPF_PROG_LOAD, &mut attr);
        if let Err(source) = r {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let verifier = String::from_utf8_lossy(&log[..end]).trim().to_string();
            let verifier = if verifier.is_empty() {
                String::new()
            } else {
                format!("{verifier}: ")
            };
            return Err(DevicesError::Load { verifier, source });
        }
    }
    let fd = r.expect("checked") as i32;
    // SAFETY: a new fd the kernel just returned (close-on-exec), owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn raise_memlock_to_hard_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let l = getrlimit(Resource::Memlock);
    // None is unlimited.
    let below_hard = match (l.current, l.maximum) {
        (Some(cur), Some(max)) => cur < max,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below_hard {
        let raised = Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        };
        let _ = setrlimit(Resource::Memlock, raised);
    }
}

/// The BPF_PROG_ATTACH part of `union bpf_attr`.
#[repr(C)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn attach(prog: &OwnedFd, dir: &Path) -> Result<(), DevicesError> {
    let cgroup = File::open(dir).map_err(|source| DevicesError::Open {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_ATTACH, &mut attr)
        .map(drop)
        .map_err(|source| DevicesError::Attach {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests;
