//! Seccomp profiles in docker's JSON format, converted to the OCI runtime spec.
//!
//! `default.json` is coracle's own default profile. Its rules are those of docker's
//! default profile, github.com/moby/profiles/seccomp v0.2.3 (moby/moby
//! `profiles/seccomp/default.json`, Apache-2.0; vendored by moby/moby at commit
//! b985e2313a8676e18072b442911fc8f64f17d440, docker v29.7.2-150), with comments; when
//! moby changes its profile, port the change here and say which version. Deny with
//! EPERM, allow the ordinary system calls, unlock privileged ones with the capability
//! that guards them, ENOSYS for `clone3` so that libc falls back to `clone`, whose
//! namespace flags are then filtered.

use std::collections::HashSet;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;

/// Coracle's default profile, in docker's JSON profile format.
pub const DEFAULT_PROFILE: &str = include_str!("default.json");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeccompError {
    #[error("seccomp profile is not valid JSON in docker's profile format: {0}")]
    Parse(String),
    #[error("seccomp profile: {0}")]
    Invalid(String),
    #[error("seccomp profile: architecture {0:?} is not supported (known: x86_64/amd64, aarch64/arm64, x86, arm, ppc64le, s390x, riscv64, mips64, mips64el, loongarch64)")]
    UnknownHostArch(String),
}

impl SeccompError {
    pub fn kind(&self) -> coracle_core::ErrorKind {
        match self {
            // a bad profile file is the user's input
            SeccompError::Parse(_) | SeccompError::Invalid(_) => {
                coracle_core::ErrorKind::InvalidArgument
            }
            SeccompError::UnknownHostArch(_) => coracle_core::ErrorKind::Unavailable,
        }
    }
}

/// A kernel release `major.minor`, compared with a rule's `minKernel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl KernelVersion {
    /// Parse `6.1`, `6.1.0-13-amd64`, `4.8` ...
    pub fn parse(s: &str) -> Option<KernelVersion> {
        let mut it = s.split(|c: char| !c.is_ascii_digit());
        let major = it.next()?.parse().ok()?;
        let minor = it.next().unwrap_or("0").parse().unwrap_or(0);
        Some(KernelVersion { major, minor })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    syscalls: Option<Vec<Syscall>>,
    #[serde(default)]
    flags: Option<Vec<String>>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    listener_metadata: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: usize,
    value: u64,
    #[serde(default)]
    value_two: Option<u64>,
    op: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// (Go arch name used in `includes.arches`, libseccomp arch of the native ABI).
fn host_arch(arch: &str) -> Option<(&'static str, &'static str)> {
    Some(match arch {
        "x86_64" | "amd64" => ("amd64", "SCMP_ARCH_X86_64"),
        "aarch64" | "arm64" => ("arm64", "SCMP_ARCH_AARCH64"),
        "x86" | "i386" | "i686" | "386" => ("386", "SCMP_ARCH_X86"),
        "arm" | "armv7" | "armv7l" => ("arm", "SCMP_ARCH_ARM"),
        "ppc64le" | "powerpc64le" => ("ppc64le", "SCMP_ARCH_PPC64LE"),
        "s390x" => ("s390x", "SCMP_ARCH_S390X"),
        "riscv64" => ("riscv64", "SCMP_ARCH_RISCV64"),
        "mips64" => ("mips64", "SCMP_ARCH_MIPS64"),
        "mips64el" | "mips64le" => ("mips64le", "SCMP_ARCH_MIPSEL64"),
        "loongarch64" | "loong64" => ("loong64", "SCMP_ARCH_LOONGARCH64"),
        _ => return None,
    })
}

fn enum_from_str<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T, SeccompError> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| SeccompError::Invalid(format!("unknown {what} {s:?}")))
}

fn parse_kernel(s: &str) -> Result<KernelVersion, SeccompError> {
    KernelVersion::parse(s).ok_or_else(|| {
        SeccompError::Invalid(format!("invalid minKernel {s:?}: expected e.g. \"4.8\""))
    })
}

/// Convert a profile in docker's JSON format to the OCI `linux.seccomp` section for a
/// container whose bounding capability set is `caps` (names `CAP_X`), on a host of
/// architecture `arch` (`x86_64`, `aarch64`, or Go's `amd64`, `arm64`, ...), running
/// kernel `kernel` (None: assume new enough for every `minKernel`). Docker's rules:
/// `architectures` or `archMap` (the host's entry and its sub-architectures);
/// a rule is dropped when `excludes` matches (arch, any cap, kernel ≥ minKernel) or
/// `includes` does not (arch, all caps, kernel ≥ minKernel).
pub fn profile_to_oci(
    profile_json: &str,
    caps: &[String],
    arch: &str,
    kernel: Option<KernelVersion>,
) -> Result<LinuxSeccomp, SeccompError> {
    let p: Profile =
        serde_json::from_str(profile_json).map_err(|e| SeccompError::Parse(e.to_string()))?;
    let (go_arch, scmp_arch) =
        host_arch(arch).ok_or_else(|| SeccompError::UnknownHostArch(arch.to_string()))?;
    let architectures = architectures(&p, scmp_arch)?;
    let default_action: LinuxSeccompAction = enum_from_str("action", &p.default_action)?;
    let host = RuleHost {
        go_arch,
        caps: caps.iter().map(String::as_str).collect(),
        kernel,
    };
    let mut syscalls = Vec::new();
    for (i, call) in p.syscalls.into_iter().flatten().enumerate() {
        if let Some(sc) = syscall_rule(i, call, &host)? {
            syscalls.push(sc);
        }
    }

    let mut s = LinuxSeccomp::default();
    s.set_default_action(default_action);
    s.set_default_errno_ret(p.default_errno_ret);
    if !architectures.is_empty() {
        s.set_architectures(Some(architectures));
    }
    if let Some(flags) = p.flags.filter(|f| !f.is_empty()) {
        let flags: Vec<LinuxSeccompFilterFlag> = flags
            .iter()
            .map(|f| enum_from_str("flag", f))
            .collect::<Result<_, _>>()?;
        s.set_flags(Some(flags));
    }
    s.set_listener_path(p.listener_path.map(Into::into));
    s.set_listener_metadata(p.listener_metadata);
    s.set_syscalls(Some(syscalls));
    Ok(s)
}

/// The profile's architectures: its `architectures`, or the host's `archMap` entry
/// and that entry's sub-architectures (not both).
fn architectures(p: &Profile, scmp_arch: &str) -> Result<Vec<Arch>, SeccompError> {
    let has_archs = p.architectures.as_ref().is_some_and(|a| !a.is_empty());
    let has_map = p.arch_map.as_ref().is_some_and(|a| !a.is_empty());
    if has_archs && has_map {
        return Err(SeccompError::Invalid(
            "both 'architectures' and 'archMap' are specified, use either 'architectures' or 'archMap'".into(),
        ));
    }
    let mut arch_names: Vec<String> = p.architectures.clone().unwrap_or_default();
    for m in p.arch_map.iter().flatten() {
        if m.architecture == scmp_arch {
            arch_names.push(m.architecture.clone());
            arch_names.extend(m.sub_architectures.iter().flatten().cloned());
        }
    }
    arch_names
        .iter()
        .map(|a| enum_from_str("architecture", a))
        .collect()
}

/// What decides whether a rule applies: the host's architecture (Go's name), the
/// container's bounding capabilities, the kernel (None: new enough for every rule).
struct RuleHost<'a> {
    go_arch: &'a str,
    caps: HashSet<&'a str>,
    kernel: Option<KernelVersion>,
}

impl RuleHost<'_> {
    fn kernel_at_least(&self, min: &str) -> Result<bool, SeccompError> {
        let min = parse_kernel(min)?;
        Ok(self.kernel.is_none_or(|k| k >= min))
    }

    /// `excludes` matches: the arch, any of the caps, or a kernel at least minKernel.
    fn excluded_by(&self, ex: &Filter) -> Result<bool, SeccompError> {
        if ex.arches.iter().flatten().any(|a| a == self.go_arch) {
            return Ok(true);
        }
        if ex
            .caps
            .iter()
            .flatten()
            .any(|c| self.caps.contains(c.as_str()))
        {
            return Ok(true);
        }
        match &ex.min_kernel {
            Some(min) => self.kernel_at_least(min),
            None => Ok(false),
        }
    }

    /// `includes` matches: the arch (if any is given), all the caps, a kernel at
    /// least minKernel.
    fn included_by(&self, inc: &Filter) -> Result<bool, SeccompError> {
        if let Some(arches) = inc.arches.as_ref().filter(|a| !a.is_empty()) {
            if !arches.iter().any(|a| a == self.go_arch) {
                return Ok(false);
            }
        }
        if !inc
            .caps
            .iter()
            .flatten()
            .all(|c| self.caps.contains(c.as_str()))
        {
            return Ok(false);
        }
        match &inc.min_kernel {
            Some(min) => self.kernel_at_least(min),
            None => Ok(true),
        }
    }
}

/// The profile's rule `i` for the OCI spec; None when it does not apply on this host.
fn syscall_rule(
    i: usize,
    call: Syscall,
    host: &RuleHost<'_>,
) -> Result<Option<LinuxSyscall>, SeccompError> {
    let mut names = call.names.unwrap_or_default();
    if let Some(n) = call.name {
        if !names.is_empty() {
            return Err(SeccompError::Invalid(format!(
                "syscalls[{i}]: both 'name' and 'names' are specified, use either 'name' or 'names'"
            )));
        }
        names.push(n);
    }
    if let Some(ex) = &call.excludes {
        if host.excluded_by(ex)? {
            return Ok(None);
        }
    }
    if let Some(inc) = &call.includes {
        if !host.included_by(inc)? {
            return Ok(None);
        }
    }
    let action: LinuxSeccompAction = enum_from_str("action", &call.action)?;
    let mut sc = LinuxSyscall::default();
    sc.set_names(names);
    sc.set_action(action);
    sc.set_errno_ret(call.errno_ret);
    if let Some(args) = call.args {
        let mut out = Vec::with_capacity(args.len());
        for a in args {
            if a.index > 5 {
                return Err(SeccompError::Invalid(format!(
                    "syscalls[{i}]: argument index {} is out of range 0-5",
                    a.index
                )));
            }
            let op: LinuxSeccompOperator = enum_from_str("operator", &a.op)?;
            out.push(seccomp_arg(a.index, a.value, a.value_two, op)?);
        }
        sc.set_args(Some(out));
    }
    Ok(Some(sc))
}

fn seccomp_arg(
    index: usize,
    value: u64,
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
) -> Result<LinuxSeccompArg, SeccompError> {
    let mut b = LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op);
    if let Some(v2) = value_two {
        b = b.value_two(v2);
    }
    b.build().map_err(|e| SeccompError::Invalid(e.to_string()))
}

/// The default profile for `caps` on `arch` ([`profile_to_oci`] of [`DEFAULT_PROFILE`]).
pub fn default_seccomp(
    caps: &[String],
    arch: &str,
    kernel: Option<KernelVersion>,
) -> Result<LinuxSeccomp, SeccompError> {
    profile_to_oci(DEFAULT_PROFILE, caps, arch, kernel)
}

/// youki's libcontainer 0.7.0 reads `SCMP_CMP_MASKED_EQ` arguments the other way
/// round from runc and crun: it takes `valueTwo` as the mask and `value` as the datum,
/// where the OCI spec (runc, crun, docker's profiles) has `value` as the mask and
/// `valueTwo` as the datum. Left as is, docker's `clone` rule (mask 0x7E020000, datum 0)
/// becomes mask 0 under youki, which libseccomp turns into "always matches": clone
/// with CLONE_NEWUSER and the other namespace flags would be allowed to containers
/// without CAP_SYS_ADMIN (seen: unprivileged user namespaces). The bundle written for
/// the built-in runtime passes its seccomp section through this function; a bundle
/// for crun/runc keeps the standard meaning.
pub fn swap_masked_eq_for_libcontainer(seccomp: &LinuxSeccomp) -> LinuxSeccomp {
    let mut out = seccomp.clone();
    if let Some(calls) = seccomp.syscalls() {
        let calls: Vec<LinuxSyscall> = calls
            .iter()
            .map(|c| {
                let mut c = c.clone();
                if let Some(args) = c.args().clone() {
                    let args = args
                        .into_iter()
                        .map(|a| {
                            if a.op() == LinuxSeccompOperator::ScmpCmpMaskedEq {
                                seccomp_arg(
                                    a.index(),
                                    a.value_two().unwrap_or(0),
                                    Some(a.value()),
                                    a.op(),
                                )
                                .unwrap_or(a)
                            } else {
                                a
                            }
                        })
                        .collect();
                    c.set_args(Some(args));
                }
                c
            })
            .collect();
        out.set_syscalls(Some(calls));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_model::defaults::DEFAULT_CAPABILITIES;

    fn caps(extra: &[&str]) -> Vec<String> {
        DEFAULT_CAPABILITIES
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    }

    /// The action a syscall with no argument rules gets, or None when only
    /// argument-conditional rules (or none) mention it.
    fn rules_for<'a>(s: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        s.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|c| c.names().iter().any(|n| n == name))
            .collect()
    }

    fn allowed_unconditionally(s: &LinuxSeccomp, name: &str) -> bool {
        rules_for(s, name)
            .iter()
            .any(|c| c.action() == LinuxSeccompAction::ScmpActAllow && c.args().is_none())
    }

    #[test]
    fn default_profile_x86_64() {
        let s = default_seccomp(&caps(&[]), "x86_64", None).unwrap();
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        assert_eq!(
            s.architectures().as_ref().unwrap(),
            &vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        for ok in [
            "read",
            "write",
            "execve",
            "futex",
            "arch_prctl",
            "modify_ldt",
            "chroot",
            "ptrace",
        ] {
            assert!(allowed_unconditionally(&s, ok), "{ok} should be allowed");
        }
        for denied in [
            "kexec_load",
            "mount",
            "umount2",
            "unshare",
            "setns",
            "reboot",
            "init_module",
            "bpf",
            "open_by_handle_at",
            "clock_settime",
            "swapon",
            "keyctl",
            "add_key",
            "userfaultfd",
            "set_tls",
        ] {
            assert!(
                rules_for(&s, denied).is_empty(),
                "{denied} should be denied"
            );
        }
        // clone: only without namespace flags
        let clone = rules_for(&s, "clone");
        assert_eq!(clone.len(), 1);
        let arg = clone[0].args().as_ref().unwrap()[0];
        assert_eq!(
            (arg.index(), arg.value(), arg.value_two(), arg.op()),
            (
                0,
                0x7E02_0000,
                Some(0),
                LinuxSeccompOperator::ScmpCmpMaskedEq
            )
        );
        // clone3: ENOSYS so that glibc falls back to clone
        let clone3 = rules_for(&s, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
        // socket: every family but AF_ALG (38) and AF_VSOCK (40)
        let socket: Vec<(u64, LinuxSeccompOperator)> = rules_for(&s, "socket")
            .iter()
            .map(|c| {
                let a = c.args().as_ref().unwrap()[0];
                assert_eq!(a.index(), 0);
                (a.value(), a.op())
            })
            .collect();
        assert_eq!(
            socket,
            vec![
                (38, LinuxSeccompOperator::ScmpCmpLt),
                (39, LinuxSeccompOperator::ScmpCmpEq),
                (40, LinuxSeccompOperator::ScmpCmpGt)
            ]
        );
        assert_eq!(rules_for(&s, "personality").len(), 5);
    }

    /// io_uring queues I/O that seccomp never sees, and AF_ALG exposes the kernel's
    /// crypto API: moby's profile denies both, even with every capability.
    #[test]
    fn io_uring_and_af_alg_are_denied() {
        let all_caps = caps(&[
            "CAP_SYS_ADMIN",
            "CAP_SYS_PTRACE",
            "CAP_NET_ADMIN",
            "CAP_BPF",
        ]);
        for (arch, caps) in [
            ("x86_64", caps(&[])),
            ("aarch64", caps(&[])),
            ("x86_64", all_caps),
        ] {
            let s = default_seccomp(&caps, arch, None).unwrap();
            for denied in ["io_uring_setup", "io_uring_enter", "io_uring_register"] {
                assert!(rules_for(&s, denied).is_empty(), "{denied} on {arch}");
            }
            // no socket rule lets family 38 through
            for rule in rules_for(&s, "socket") {
                let a = rule
                    .args()
                    .as_ref()
                    .expect("socket is only allowed by family")[0];
                let allows_alg = match a.op() {
                    LinuxSeccompOperator::ScmpCmpLt => 38 < a.value(),
                    LinuxSeccompOperator::ScmpCmpEq => a.value() == 38,
                    LinuxSeccompOperator::ScmpCmpGt => 38 > a.value(),
                    LinuxSeccompOperator::ScmpCmpNe => a.value() != 38,
                    op => panic!("unexpected socket operator {op:?}"),
                };
                assert!(!allows_alg, "{rule:?} allows AF_ALG");
            }
        }
    }

    /// The profile follows moby's v0.2.3 profile: a few of the syscalls it added.
    #[test]
    fn follows_moby_profile() {
        let s = default_seccomp(&caps(&[]), "x86_64", None).unwrap();
        for ok in [
            "mseal",
            "statmount",
            "listmount",
            "getxattrat",
            "uretprobe",
            "socketcall",
        ] {
            assert!(allowed_unconditionally(&s, ok), "{ok}");
        }
        assert!(rules_for(&s, "lsm_set_self_attr").is_empty());
        let s = default_seccomp(&caps(&["CAP_SYS_ADMIN"]), "x86_64", None).unwrap();
        assert!(allowed_unconditionally(&s, "lsm_set_self_attr"));
        let s = default_seccomp(&caps(&[]), "loongarch64", None).unwrap();
        assert_eq!(
            s.architectures().as_ref().unwrap(),
            &vec![Arch::ScmpArchLoongarch64]
        );
    }

    #[test]
    fn capabilities_unlock_syscalls() {
        let s = default_seccomp(&caps(&["CAP_SYS_ADMIN"]), "x86_64", None).unwrap();
        for ok in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "sethostname",
        ] {
            assert!(allowed_unconditionally(&s, ok), "{ok} with CAP_SYS_ADMIN");
        }
        // the clone3 ENOSYS and the clone filter are excluded with CAP_SYS_ADMIN
        assert!(rules_for(&s, "clone3")
            .iter()
            .all(|c| c.action() == LinuxSeccompAction::ScmpActAllow));
        assert!(rules_for(&s, "clone").iter().all(|c| c.args().is_none()));
        let s = default_seccomp(
            &caps(&[
                "CAP_SYS_PTRACE",
                "CAP_SYS_MODULE",
                "CAP_SYS_TIME",
                "CAP_SYS_BOOT",
                "CAP_SYSLOG",
                "CAP_BPF",
                "CAP_PERFMON",
                "CAP_SYS_NICE",
                "CAP_SYS_RAWIO",
                "CAP_SYS_PACCT",
                "CAP_SYS_TTY_CONFIG",
                "CAP_DAC_READ_SEARCH",
            ]),
            "x86_64",
            None,
        )
        .unwrap();
        for ok in [
            "kcmp",
            "init_module",
            "settimeofday",
            "reboot",
            "syslog",
            "bpf",
            "perf_event_open",
            "mbind",
            "iopl",
            "acct",
            "vhangup",
            "open_by_handle_at",
        ] {
            assert!(allowed_unconditionally(&s, ok), "{ok}");
        }
        assert!(rules_for(&s, "mount").is_empty());
        // without CAP_SYS_CHROOT, chroot is denied
        let nochroot: Vec<String> = caps(&[])
            .into_iter()
            .filter(|c| c != "CAP_SYS_CHROOT")
            .collect();
        let s = default_seccomp(&nochroot, "x86_64", None).unwrap();
        assert!(rules_for(&s, "chroot").is_empty());
    }

    #[test]
    fn default_profile_aarch64() {
        let s = default_seccomp(&caps(&[]), "aarch64", None).unwrap();
        assert_eq!(
            s.architectures().as_ref().unwrap(),
            &vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
        );
        assert!(allowed_unconditionally(&s, "read"));
        assert!(allowed_unconditionally(&s, "set_tls"));
        assert!(rules_for(&s, "arch_prctl").is_empty());
        assert!(rules_for(&s, "modify_ldt").is_empty());
        assert!(rules_for(&s, "kexec_load").is_empty());
        assert_eq!(rules_for(&s, "clone3")[0].errno_ret(), Some(38));
        assert_eq!(s, default_seccomp(&caps(&[]), "arm64", None).unwrap());
    }

    #[test]
    fn min_kernel_is_compared() {
        let old = KernelVersion::parse("4.4.0-210-generic").unwrap();
        assert_eq!(old, KernelVersion { major: 4, minor: 4 });
        let s = default_seccomp(&caps(&[]), "x86_64", Some(old)).unwrap();
        assert!(rules_for(&s, "ptrace").is_empty());
        let s = default_seccomp(&caps(&[]), "x86_64", KernelVersion::parse("6.1")).unwrap();
        assert!(allowed_unconditionally(&s, "ptrace"));
    }

    #[test]
    fn custom_profiles_and_errors() {
        let p = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO","errnoRet":13},
                        {"names":["chmod"],"action":"SCMP_ACT_KILL","excludes":{"caps":["CAP_FOWNER"]}}]}"#;
        let s = profile_to_oci(p, &caps(&[]), "x86_64", None).unwrap();
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(
            s.syscalls().as_ref().unwrap().len(),
            1,
            "chmod excluded by CAP_FOWNER"
        );
        assert_eq!(s.syscalls().as_ref().unwrap()[0].errno_ret(), Some(13));
        assert!(matches!(
            profile_to_oci("{", &[], "x86_64", None),
            Err(SeccompError::Parse(_))
        ));
        let both = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}"#;
        assert!(profile_to_oci(both, &[], "x86_64", None)
            .unwrap_err()
            .to_string()
            .contains("both 'name' and 'names'"));
        let bad_action = r#"{"defaultAction":"SCMP_ACT_MAYBE"}"#;
        assert!(profile_to_oci(bad_action, &[], "x86_64", None)
            .unwrap_err()
            .to_string()
            .contains("unknown action"));
        assert!(matches!(
            profile_to_oci(DEFAULT_PROFILE, &[], "sparc", None),
            Err(SeccompError::UnknownHostArch(_))
        ));
    }

    #[test]
    fn masked_eq_swap_for_libcontainer() {
        let s = default_seccomp(&caps(&[]), "x86_64", None).unwrap();
        let y = swap_masked_eq_for_libcontainer(&s);
        let arg = rules_for(&y, "clone")[0].args().as_ref().unwrap()[0];
        assert_eq!((arg.value(), arg.value_two()), (0, Some(0x7E02_0000)));
        // other operators untouched
        assert_eq!(
            rules_for(&y, "socket")[0].args(),
            rules_for(&s, "socket")[0].args()
        );
    }
}
