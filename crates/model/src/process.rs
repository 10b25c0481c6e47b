//! Parsers for process and security flags: env, user, capabilities, sysctls,
//! `--security-opt`, namespaces.

use std::path::PathBuf;

use super::{bad, OptionsError};
use crate::defaults;

/// `-e K=V` or `-e K`. `K` alone takes its value from `lookup` (the caller's
/// environment); when the caller has no such variable the entry is dropped (docker).
pub fn parse_env(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<String>, OptionsError> {
    const FLAG: &str = "-e, --env";
    let (name, value) = match s.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (s, None),
    };
    if name.is_empty() {
        return Err(bad(FLAG, s, format!("invalid environment variable: {s}")));
    }
    Ok(match value {
        Some(_) => Some(s.to_string()),
        None => lookup(name).map(|v| format!("{name}={v}")),
    })
}

/// The contents of an `--env-file`: one `K=V` or `K` per line; blank lines and lines
/// starting with `#` are skipped; `K` alone takes its value from `lookup` (dropped if
/// unset); leading whitespace is trimmed from the name; values are taken verbatim
/// (no quotes removed), as docker. `file` only names the file in errors.
pub fn parse_env_file(
    file: &str,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, OptionsError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (line.trim_end(), None),
        };
        if name.is_empty() {
            return Err(OptionsError::Invalid(format!(
                "{file}:{}: no variable name on line '{raw}'",
                i + 1
            )));
        }
        if name.contains(char::is_whitespace) {
            return Err(OptionsError::Invalid(format!(
                "{file}:{}: variable '{name}' contains whitespaces",
                i + 1
            )));
        }
        match value {
            Some(v) => out.push(format!("{name}={v}")),
            None => {
                if let Some(v) = lookup(name) {
                    out.push(format!("{name}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// A user or group given by name or by number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdRef {
    Id(u32),
    Name(String),
}

impl IdRef {
    pub fn parse(s: &str) -> IdRef {
        match s.parse::<u32>() {
            Ok(n) if s.bytes().all(|b| b.is_ascii_digit()) => IdRef::Id(n),
            _ => IdRef::Name(s.to_string()),
        }
    }
}

/// `-u, --user name|uid[:group|gid]`, resolved later against the container's
/// /etc/passwd and /etc/group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub user: IdRef,
    pub group: Option<IdRef>,
}

fn valid_id_name(s: &str) -> bool {
    !s.is_empty()
        && !s.contains(|c: char| c == ':' || c == '/' || c.is_whitespace() || c.is_control())
}

pub fn parse_user(s: &str) -> Result<UserSpec, OptionsError> {
    const FLAG: &str = "-u, --user";
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    if !valid_id_name(u) {
        return Err(bad(
            FLAG,
            s,
            "expected name|uid[:group|gid], e.g. 1000:1000 or nobody",
        ));
    }
    if let Some(g) = g {
        if !valid_id_name(g) {
            return Err(bad(
                FLAG,
                s,
                "expected name|uid[:group|gid], e.g. 1000:1000 or nobody",
            ));
        }
    }
    Ok(UserSpec {
        user: IdRef::parse(u),
        group: g.map(IdRef::parse),
    })
}

/// `--group-add group|gid`.
pub fn parse_group_add(s: &str) -> Result<IdRef, OptionsError> {
    if !valid_id_name(s) {
        return Err(bad("--group-add", s, "expected a group name or gid"));
    }
    Ok(IdRef::parse(s))
}

/// A capability name normalised as docker does: case-insensitive, `CAP_` optional,
/// `ALL` kept as `ALL`. Unknown names are an error.
pub fn parse_capability(flag: &'static str, s: &str) -> Result<String, OptionsError> {
    let up = s.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if defaults::ALL_CAPABILITIES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(bad(flag, s, format!("unknown capability: \"{full}\"")))
    }
}

/// Docker's `TweakCapabilities`: the final capability list from the default set,
/// `--cap-add` and `--cap-drop` (already normalised with [`parse_capability`]), or
/// every capability up to `last_cap` when privileged.
pub fn resolve_capabilities(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
    last_cap: u8,
) -> Vec<String> {
    let all: Vec<String> = defaults::ALL_CAPABILITIES
        .iter()
        .take(usize::from(last_cap.min(defaults::LAST_CAP)) + 1)
        .map(|s| s.to_string())
        .collect();
    if privileged {
        return all;
    }
    let has = |l: &[String], c: &str| l.iter().any(|x| x == c);
    let mut caps: Vec<String> = if has(cap_add, "ALL") {
        all.into_iter().filter(|c| !has(cap_drop, c)).collect()
    } else if has(cap_drop, "ALL") {
        cap_add.to_vec()
    } else {
        let mut v: Vec<String> = defaults::DEFAULT_CAPABILITIES
            .iter()
            .filter(|c| !has(cap_drop, c))
            .map(|s| s.to_string())
            .collect();
        v.extend(cap_add.iter().cloned());
        v
    };
    let mut seen = std::collections::HashSet::new();
    caps.retain(|c| c != "ALL" && seen.insert(c.clone()));
    caps
}

/// Where the namespaced sysctls may be set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SysctlContext {
    /// `--network host` (or another container's): `net.*` is the host's, refused.
    pub host_network: bool,
    /// `--ipc host`: the IPC sysctls are the host's, refused.
    pub host_ipc: bool,
}

fn ipc_sysctl(k: &str) -> bool {
    k.starts_with("kernel.msg")
        || k.starts_with("kernel.shm")
        || k == "kernel.sem"
        || k.starts_with("fs.mqueue.")
}

/// `--sysctl KEY=VALUE`: only namespaced sysctls, as docker: `kernel.msg*`,
/// `kernel.sem`, `kernel.shm*`, `fs.mqueue.*` (IPC namespace) and `net.*` (network
/// namespace, so not with `--network host`).
pub fn parse_sysctl(s: &str, ctx: SysctlContext) -> Result<(String, String), OptionsError> {
    const FLAG: &str = "--sysctl";
    let not_allowed = || {
        bad(
            FLAG,
            s,
            format!("sysctl '{s}' is not allowed (only namespaced sysctls: kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*)"),
        )
    };
    let (k, v) = s.split_once('=').ok_or_else(not_allowed)?;
    let k = k.trim();
    if ipc_sysctl(k) {
        if ctx.host_ipc {
            return Err(bad(
                FLAG,
                s,
                format!(
                    "sysctl '{k}' is not allowed with --ipc host: it would change the host's value"
                ),
            ));
        }
    } else if k.starts_with("net.") {
        if ctx.host_network {
            return Err(bad(
                FLAG,
                s,
                format!("sysctl '{k}' is not allowed with --network host: it would change the host's value"),
            ));
        }
    } else {
        return Err(not_allowed());
    }
    Ok((k.to_string(), v.to_string()))
}

/// The seccomp part of `--security-opt`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SeccompOption {
    /// docker's default profile (ours, in `seccomp/default.json`).
    #[default]
    Default,
    Unconfined,
    /// A profile file in docker's JSON format; the engine reads it.
    Profile(PathBuf),
}

/// Everything `--security-opt` can set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOptions {
    pub seccomp: SeccompOption,
    pub no_new_privileges: bool,
    /// `systempaths=unconfined`: no masked or read-only /proc and /sys paths.
    pub unconfined_system_paths: bool,
    /// `apparmor=PROFILE|unconfined`; applies where the host has AppArmor enabled
    /// (None: the default profile, or unconfined when privileged).
    pub apparmor: Option<String>,
    /// `label=disable|user:U|role:R|type:T|level:L|filetype:F`, in order; applies where
    /// the host has SELinux enabled.
    pub labels: Vec<String>,
}

/// Apply one `--security-opt` to `into`. Supported: `seccomp=unconfined|PATH`,
/// `no-new-privileges[=|:true|false]`, `systempaths=unconfined`, `apparmor=PROFILE`,
/// `label=...` (checked here; applied only where the host has that LSM, as docker).
pub fn parse_security_opt(s: &str, into: &mut SecurityOptions) -> Result<(), OptionsError> {
    const FLAG: &str = "--security-opt";
    if s == "no-new-privileges" {
        into.no_new_privileges = true;
        return Ok(());
    }
    let (k, v) = match s.split_once('=') {
        Some(kv) => kv,
        None => s
            .split_once(':')
            .ok_or_else(|| OptionsError::Invalid(format!("Invalid --security-opt: {s:?}")))?,
    };
    match k {
        "no-new-privileges" => {
            into.no_new_privileges = match v {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(bad(
                        FLAG,
                        s,
                        "invalid --security-opt 2: no-new-privileges takes true or false",
                    ))
                }
            }
        }
        "seccomp" => {
            into.seccomp =
                match v {
                    "unconfined" => SeccompOption::Unconfined,
                    "" => return Err(bad(
                        FLAG,
                        s,
                        "seccomp takes unconfined or the path of a profile in docker's JSON format",
                    )),
                    "builtin" | "default" => SeccompOption::Default,
                    path => SeccompOption::Profile(PathBuf::from(path)),
                }
        }
        "systempaths" => {
            if v != "unconfined" {
                return Err(bad(FLAG, s, "systempaths takes only unconfined"));
            }
            into.unconfined_system_paths = true;
        }
        "label" => {
            if !valid_label_option(v) {
                return Err(bad(FLAG, s, format!("bad label option {v:?}, valid options 'disable' or 'user, role, level, type, filetype' followed by ':' and a value")));
            }
            into.labels.push(v.to_string());
        }
        "apparmor" => {
            if v.is_empty() {
                return Err(bad(FLAG, s, "apparmor takes a profile name or unconfined"));
            }
            into.apparmor = Some(v.to_string());
        }
        _ => {
            return Err(OptionsError::Invalid(format!(
                "Invalid --security-opt: {s:?}"
            )))
        }
    }
    Ok(())
}

/// `--pid`, `--ipc`, `--uts`: a private namespace (default) or the host's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NamespaceMode {
    #[default]
    Private,
    Host,
}

/// Parse `--pid`/`--ipc`/`--uts` (`flag` names which). Docker's `private` (and
/// `shareable` for ipc) mean a private namespace; `container:NAME` is not supported yet.
pub fn parse_namespace_mode(flag: &'static str, s: &str) -> Result<NamespaceMode, OptionsError> {
    match s {
        "" | "private" => Ok(NamespaceMode::Private),
        "shareable" if flag == "--ipc" => Ok(NamespaceMode::Private),
        "host" => Ok(NamespaceMode::Host),
        _ if s.starts_with("container:") => Err(OptionsError::Unsupported {
            option: format!("{flag} {s}"),
            hint: "joining another container's namespace is not supported yet; use host or leave it private".into(),
        }),
        _ => Err(bad(flag, s, format!("invalid {} mode: use host or private", &flag[2..]))),
    }
}

/// `--network`/`--net`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// A private network namespace with only loopback.
    None,
    Host,
    /// A bridge network (docker's default); `bridge` or a user-defined network name.
    #[default]
    DefaultBridge,
    Named(String),
    /// `container:NAME|ID`: join that container's network namespace.
    Container(String),
}

pub fn parse_network(s: &str) -> Result<NetworkMode, OptionsError> {
    match s {
        "none" => Ok(NetworkMode::None),
        "host" => Ok(NetworkMode::Host),
        "" | "default" | "bridge" => Ok(NetworkMode::DefaultBridge),
        _ if s.starts_with("container:") => match &s["container:".len()..] {
            "" => Err(OptionsError::Invalid(
                "invalid network mode: invalid container format container:<name|id>".into(),
            )),
            target => Ok(NetworkMode::Container(target.to_string())),
        },
        _ => Ok(NetworkMode::Named(s.to_string())),
    }
}

/// A `--security-opt label=` value: `disable`, or `user|role|type|level|filetype`
/// followed by `:` and a value.
pub fn valid_label_option(opt: &str) -> bool {
    opt == "disable"
        || matches!(opt.split_once(':'),
            Some((k, v)) if !v.is_empty() && matches!(k, "user" | "role" | "type" | "level" | "filetype"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(k: &str) -> Option<String> {
        (k == "HOME").then(|| "/home/me".to_string())
    }

    #[test]
    fn env_forms() {
        assert_eq!(parse_env("A=1", &lookup).unwrap(), Some("A=1".into()));
        assert_eq!(parse_env("A=", &lookup).unwrap(), Some("A=".into()));
        assert_eq!(
            parse_env("HOME", &lookup).unwrap(),
            Some("HOME=/home/me".into())
        );
        assert_eq!(parse_env("UNSET", &lookup).unwrap(), None);
        assert_eq!(
            parse_env("=x", &lookup).unwrap_err().to_string(),
            "invalid argument \"=x\" for \"-e, --env\" flag: invalid environment variable: =x"
        );
    }

    #[test]
    fn env_file_follows_docker() {
        let text = "\u{feff}# comment\n\nA=1\n  B=two words \nHOME\nUNSET\nC=\"quoted\"\nD==x\n";
        assert_eq!(
            parse_env_file("f.env", text, &lookup).unwrap(),
            vec![
                "A=1",
                "B=two words ",
                "HOME=/home/me",
                "C=\"quoted\"",
                "D==x"
            ]
        );
        assert!(parse_env_file("f.env", "=x\n", &lookup)
            .unwrap_err()
            .to_string()
            .contains("no variable name"));
        assert!(parse_env_file("f.env", "A B=1\n", &lookup)
            .unwrap_err()
            .to_string()
            .contains("contains whitespaces"));
    }

    #[test]
    fn user_forms() {
        assert_eq!(
            parse_user("1000:1000").unwrap(),
            UserSpec {
                user: IdRef::Id(1000),
                group: Some(IdRef::Id(1000))
            }
        );
        assert_eq!(
            parse_user("nobody").unwrap(),
            UserSpec {
                user: IdRef::Name("nobody".into()),
                group: None
            }
        );
        assert_eq!(
            parse_user("www:adm").unwrap(),
            UserSpec {
                user: IdRef::Name("www".into()),
                group: Some(IdRef::Name("adm".into()))
            }
        );
        assert!(parse_user("").is_err());
        assert!(parse_user("a:").is_err());
        assert!(parse_user(":1").is_err());
        assert!(parse_user("a:b:c").is_err());
        assert_eq!(parse_group_add("10").unwrap(), IdRef::Id(10));
        assert_eq!(parse_group_add("+1").unwrap(), IdRef::Name("+1".into()));
    }

    #[test]
    fn capabilities_follow_docker() {
        assert_eq!(
            parse_capability("--cap-add", "net_admin").unwrap(),
            "CAP_NET_ADMIN"
        );
        assert_eq!(
            parse_capability("--cap-add", "CAP_SYS_ADMIN").unwrap(),
            "CAP_SYS_ADMIN"
        );
        assert_eq!(parse_capability("--cap-drop", "all").unwrap(), "ALL");
        assert_eq!(
            parse_capability("--cap-add", "foo")
                .unwrap_err()
                .to_string(),
            "invalid argument \"foo\" for \"--cap-add\" flag: unknown capability: \"CAP_FOO\""
        );
        let d = resolve_capabilities(&[], &[], false, 40);
        assert_eq!(d, defaults::DEFAULT_CAPABILITIES.map(String::from).to_vec());
        let v = resolve_capabilities(&["CAP_NET_ADMIN".into()], &["ALL".into()], false, 40);
        assert_eq!(v, vec!["CAP_NET_ADMIN"]);
        let v = resolve_capabilities(&["CAP_NET_ADMIN".into()], &["CAP_CHOWN".into()], false, 40);
        assert!(!v.contains(&"CAP_CHOWN".to_string()) && v.contains(&"CAP_NET_ADMIN".to_string()));
        assert_eq!(v.len(), 14);
        let v = resolve_capabilities(&["ALL".into()], &["CAP_SYS_ADMIN".into()], false, 40);
        assert_eq!(v.len(), 40);
        assert_eq!(resolve_capabilities(&[], &[], true, 40).len(), 41);
        assert_eq!(resolve_capabilities(&[], &[], true, 37).len(), 38);
        let v = resolve_capabilities(&["CAP_KILL".into()], &[], false, 40);
        assert_eq!(v.len(), 14, "no duplicates");
    }

    #[test]
    fn sysctls_only_namespaced() {
        let ctx = SysctlContext::default();
        assert_eq!(
            parse_sysctl("net.ipv4.ip_forward=1", ctx).unwrap(),
            ("net.ipv4.ip_forward".into(), "1".into())
        );
        assert!(parse_sysctl("kernel.shmmax=1000", ctx).is_ok());
        assert!(parse_sysctl("kernel.msgmax=1000", ctx).is_ok());
        assert!(parse_sysctl("kernel.sem=1 2 3 4", ctx).is_ok());
        assert!(parse_sysctl("fs.mqueue.msg_max=20", ctx).is_ok());
        assert!(parse_sysctl("kernel.foo=1", ctx)
            .unwrap_err()
            .to_string()
            .contains("sysctl 'kernel.foo=1' is not allowed"));
        assert!(parse_sysctl("vm.swappiness=1", ctx).is_err());
        assert!(parse_sysctl("foo", ctx).is_err());
        let host = SysctlContext {
            host_network: true,
            host_ipc: true,
        };
        assert!(parse_sysctl("net.ipv4.ip_forward=1", host)
            .unwrap_err()
            .to_string()
            .contains("--network host"));
        assert!(parse_sysctl("kernel.shmmax=1", host)
            .unwrap_err()
            .to_string()
            .contains("--ipc host"));
    }

    #[test]
    fn security_opts() {
        let mut o = SecurityOptions::default();
        parse_security_opt("no-new-privileges", &mut o).unwrap();
        assert!(o.no_new_privileges);
        parse_security_opt("no-new-privileges:false", &mut o).unwrap();
        assert!(!o.no_new_privileges);
        parse_security_opt("no-new-privileges=true", &mut o).unwrap();
        assert!(o.no_new_privileges);
        parse_security_opt("seccomp=unconfined", &mut o).unwrap();
        assert_eq!(o.seccomp, SeccompOption::Unconfined);
        parse_security_opt("seccomp=/etc/p.json", &mut o).unwrap();
        assert_eq!(o.seccomp, SeccompOption::Profile("/etc/p.json".into()));
        parse_security_opt("systempaths=unconfined", &mut o).unwrap();
        assert!(o.unconfined_system_paths);
        parse_security_opt("label=disable", &mut o).unwrap();
        parse_security_opt("apparmor=unconfined", &mut o).unwrap();
        assert_eq!(o.apparmor.as_deref(), Some("unconfined"));
        parse_security_opt("label=type:svirt_t", &mut o).unwrap();
        parse_security_opt("label:level:s0:c1,c2", &mut o).unwrap();
        assert_eq!(o.labels, ["disable", "type:svirt_t", "level:s0:c1,c2"]);
        let e = parse_security_opt("label=colour:red", &mut o).unwrap_err();
        assert!(e.to_string().contains("bad label option"), "{e}");
        assert!(parse_security_opt("apparmor=", &mut o).is_err());
        parse_security_opt("apparmor=my-profile", &mut o).unwrap();
        assert_eq!(o.apparmor.as_deref(), Some("my-profile"));
        assert_eq!(
            parse_security_opt("foo", &mut o).unwrap_err().to_string(),
            "Invalid --security-opt: \"foo\""
        );
        assert!(parse_security_opt("no-new-privileges=maybe", &mut o).is_err());
    }

    #[test]
    fn namespaces_and_network() {
        assert_eq!(
            parse_namespace_mode("--pid", "host").unwrap(),
            NamespaceMode::Host
        );
        assert_eq!(
            parse_namespace_mode("--ipc", "private").unwrap(),
            NamespaceMode::Private
        );
        assert!(parse_namespace_mode("--uts", "bogus").is_err());
        assert!(parse_namespace_mode("--pid", "container:x").is_err());
        assert_eq!(parse_network("none").unwrap(), NetworkMode::None);
        assert_eq!(parse_network("host").unwrap(), NetworkMode::Host);
        assert_eq!(parse_network("bridge").unwrap(), NetworkMode::DefaultBridge);
        assert_eq!(
            parse_network("mynet").unwrap(),
            NetworkMode::Named("mynet".into())
        );
        assert_eq!(
            parse_network("container:web").unwrap(),
            NetworkMode::Container("web".into())
        );
        assert_eq!(
            parse_network("container:").unwrap_err().to_string(),
            "invalid network mode: invalid container format container:<name|id>"
        );
        assert_eq!(parse_network("").unwrap(), NetworkMode::default());
    }
}
