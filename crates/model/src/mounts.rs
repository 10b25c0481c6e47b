//! Parsers for `-v/--volume`, `--mount` and `--tmpfs`.

use std::path::{Component, Path, PathBuf};

use super::resources::parse_ram_in_bytes;
use super::{bad, OptionsError};
use crate::defaults;

/// Mount propagation of a bind mount (docker's `bind-propagation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Shared,
    Rshared,
    Slave,
    Rslave,
    Private,
    Rprivate,
}

impl Propagation {
    pub fn parse(s: &str) -> Option<Propagation> {
        Some(match s {
            "shared" => Propagation::Shared,
            "rshared" => Propagation::Rshared,
            "slave" => Propagation::Slave,
            "rslave" => Propagation::Rslave,
            "private" => Propagation::Private,
            "rprivate" => Propagation::Rprivate,
            _ => return None,
        })
    }
    /// The OCI mount option for this propagation.
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Shared => "shared",
            Propagation::Rshared => "rshared",
            Propagation::Slave => "slave",
            Propagation::Rslave => "rslave",
            Propagation::Private => "private",
            Propagation::Rprivate => "rprivate",
        }
    }
}

/// A tmpfs mount from `--tmpfs` or `--mount type=tmpfs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsMount {
    pub target: String,
    /// Mount options, docker's defaults (`noexec,nosuid,nodev`) merged with the user's;
    /// `size=` and `mode=` included when given.
    pub options: Vec<String>,
}

/// `z` (content shared between containers) or `Z` (private to this container).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relabel {
    Shared,
    Private,
}

/// A mount asked for on the command line, before the engine resolves it to host paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountRequest {
    /// A host path bound into the container. A relative path (`./x`, `../x`) is kept
    /// as given; [`MountRequest::absolutize`] resolves it against the caller's cwd.
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
        /// None = docker's default, `rprivate`.
        propagation: Option<Propagation>,
        /// `-v` creates a missing host directory (legacy docker); `--mount` errors.
        create_source: bool,
        /// false only for `bind-recursive=disabled`.
        recursive: bool,
        /// `-v SRC:DST:z|Z`: relabel the source for SELinux (shared or private to the
        /// container); has an effect only where SELinux is enabled, as in docker.
        relabel: Option<Relabel>,
    },
    /// A named volume, created on first use.
    Named {
        name: String,
        target: String,
        read_only: bool,
        /// `nocopy`: do not fill a new volume with the image's content.
        no_copy: bool,
    },
    /// An anonymous volume (`-v /data`): a fresh volume with a generated name.
    Anonymous {
        target: String,
        read_only: bool,
        no_copy: bool,
    },
    Tmpfs(TmpfsMount),
}

impl MountRequest {
    pub fn target(&self) -> &str {
        match self {
            MountRequest::Bind { target, .. }
            | MountRequest::Named { target, .. }
            | MountRequest::Anonymous { target, .. } => target,
            MountRequest::Tmpfs(t) => &t.target,
        }
    }

    /// Resolve a relative bind source against `cwd` (lexically, as docker compose
    /// does for `./x`). Other mounts are returned unchanged.
    pub fn absolutize(self, cwd: &Path) -> MountRequest {
        match self {
            MountRequest::Bind {
                source,
                target,
                read_only,
                propagation,
                create_source,
                recursive,
                relabel,
            } if source.is_relative() => MountRequest::Bind {
                source: clean_path(&cwd.join(source)),
                target,
                read_only,
                propagation,
                create_source,
                recursive,
                relabel,
            },
            other => other,
        }
    }
}

/// Lexical cleaning of an absolute path: `.` dropped, `..` applied, duplicate `/` gone.
pub fn clean_path(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn clean_target(flag: &'static str, raw: &str, target: &str) -> Result<String, OptionsError> {
    if !target.starts_with('/') {
        return Err(bad(
            flag,
            raw,
            format!("invalid mount path: '{target}' mount path must be absolute"),
        ));
    }
    let cleaned = clean_path(Path::new(target));
    if cleaned == Path::new("/") {
        return Err(bad(
            flag,
            raw,
            "invalid specification: destination can't be '/'",
        ));
    }
    Ok(cleaned.to_string_lossy().into_owned())
}

/// Docker's rule for local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate_volume_name(name: &str) -> Result<(), String> {
    let b = name.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        return Ok(());
    }
    let mut msg = format!(
        "\"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
    );
    if name.contains('/') {
        msg.push_str(
            "; a volume name cannot contain '/': to bind a host directory, give an absolute path or one starting with ./ or ../",
        );
    } else if b.len() < 2 {
        msg.push_str(" (at least two characters)");
    }
    Err(msg)
}

fn is_host_path(src: &str) -> bool {
    src.starts_with('/')
        || src == "."
        || src == ".."
        || src.starts_with("./")
        || src.starts_with("../")
}

/// The parsed mode field of `-v SRC:DST:MODE`.
#[derive(Default)]
struct VolumeMode {
    read_only: Option<bool>,
    propagation: Option<Propagation>,
    relabel: Option<char>,
    copy: Option<bool>,
}

fn parse_volume_mode(mode: &str) -> Option<VolumeMode> {
    let mut m = VolumeMode::default();
    for opt in mode.split(',') {
        match opt {
            "rw" | "ro" if m.read_only.is_none() => m.read_only = Some(opt == "ro"),
            "z" | "Z" if m.relabel.is_none() => m.relabel = opt.chars().next(),
            "copy" | "nocopy" if m.copy.is_none() => m.copy = Some(opt == "copy"),
            "consistent" | "cached" | "delegated" => {}
            p => match Propagation::parse(p) {
                Some(p) if m.propagation.is_none() => m.propagation = Some(p),
                _ => return None,
            },
        }
    }
    Some(m)
}

/// `-v, --volume`: `DST`, `DST:MODE`, `SRC:DST`, `SRC:DST:MODE`. SRC is a host path
/// when it is absolute or starts with `./` or `../`, otherwise a volume name. MODE is a
/// comma list of `ro|rw`, `z|Z` (SELinux relabelling of a host path, where SELinux is
/// enabled; ignored for volumes and elsewhere, as docker), a propagation
/// (binds only), `nocopy`.
pub fn parse_volume(s: &str) -> Result<MountRequest, OptionsError> {
    const FLAG: &str = "-v, --volume";
    let parts: Vec<&str> = s.split(':').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad(
            FLAG,
            s,
            format!("invalid spec: {s}: empty section between colons"),
        ));
    }
    let (src, dst, mode) = match parts.as_slice() {
        [d] => (None, *d, None),
        // docker: `/foo:rw` is not a volume (an anonymous volume takes no mode)
        [_, m] if parse_volume_mode(m).is_some() => {
            return Err(bad(
                FLAG,
                s,
                format!("invalid volume specification: '{s}' (an anonymous volume takes no mode; use SRC:DST:MODE)"),
            ))
        }
        [src, d] => (Some(*src), *d, None),
        [src, d, m] => (Some(*src), *d, Some(*m)),
        _ => {
            return Err(bad(
                FLAG,
                s,
                format!("invalid volume specification: '{s}' (expected [SRC:]DST[:MODE])"),
            ))
        }
    };
    let mode = match mode {
        Some(m) => {
            parse_volume_mode(m).ok_or_else(|| bad(FLAG, s, format!("invalid mode: {m}")))?
        }
        None => VolumeMode::default(),
    };
    let target = clean_target(FLAG, s, dst)?;
    let read_only = mode.read_only.unwrap_or(false);
    let no_copy = mode.copy == Some(false);
    match src {
        Some(src) if is_host_path(src) => {
            if mode.copy.is_some() {
                return Err(bad(
                    FLAG,
                    s,
                    "invalid mode: copy/nocopy apply to volumes, not to host paths",
                ));
            }
            Ok(MountRequest::Bind {
                source: PathBuf::from(src),
                target,
                read_only,
                propagation: mode.propagation,
                create_source: true,
                recursive: true,
                relabel: mode.relabel.map(|c| {
                    if c == 'Z' {
                        Relabel::Private
                    } else {
                        Relabel::Shared
                    }
                }),
            })
        }
        Some(name) => {
            validate_volume_name(name).map_err(|e| bad(FLAG, s, e))?;
            if mode.propagation.is_some() {
                return Err(bad(
                    FLAG,
                    s,
                    "invalid mode: mount propagation applies to host paths, not to volumes",
                ));
            }
            Ok(MountRequest::Named {
                name: name.to_string(),
                target,
                read_only,
                no_copy,
            })
        }
        None => {
            if mode.propagation.is_some() {
                return Err(bad(
                    FLAG,
                    s,
                    "invalid mode: mount propagation applies to host paths, not to volumes",
                ));
            }
            Ok(MountRequest::Anonymous {
                target,
                read_only,
                no_copy,
            })
        }
    }
}

/// Merge docker's default tmpfs options with the user's: a user option replaces its
/// opposite (`exec` removes `noexec`), `size=`/`mode=` given twice keep the last.
pub fn merge_tmpfs_options(user: &[String]) -> Vec<String> {
    fn opposite(o: &str) -> Option<&'static str> {
        Some(match o {
            "exec" => "noexec",
            "noexec" => "exec",
            "suid" => "nosuid",
            "nosuid" => "suid",
            "dev" => "nodev",
            "nodev" => "dev",
            "rw" => "ro",
            "ro" => "rw",
            "atime" => "noatime",
            "noatime" => "atime",
            _ => return None,
        })
    }
    let mut out: Vec<String> = defaults::TMPFS_DEFAULT_OPTIONS
        .iter()
        .map(|s| s.to_string())
        .collect();
    for o in user {
        if let Some(opp) = opposite(o) {
            out.retain(|x| x != opp);
        }
        if let Some((k, _)) = o.split_once('=') {
            out.retain(|x| x.split_once('=').map(|(xk, _)| xk) != Some(k));
        }
        if !out.contains(o) {
            out.push(o.clone());
        }
    }
    out
}

/// `--tmpfs /path[:opts]` (opts as for mount(8) tmpfs, e.g. `rw,size=64m,mode=1770`).
pub fn parse_tmpfs(s: &str) -> Result<TmpfsMount, OptionsError> {
    const FLAG: &str = "--tmpfs";
    let (path, opts) = match s.split_once(':') {
        Some((p, o)) => (p, o),
        None => (s, ""),
    };
    let target = clean_target(FLAG, s, path)?;
    let user: Vec<String> = opts
        .split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect();
    for o in &user {
        if let Some(v) = o.strip_prefix("size=") {
            // the kernel accepts k/m/g and %; check the obvious mistakes early
            let num = v.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G', '%']);
            if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(FLAG, s, format!("invalid tmpfs size: {v}")));
            }
        }
        if let Some(v) = o.strip_prefix("mode=") {
            if u32::from_str_radix(v, 8).is_err() {
                return Err(bad(
                    FLAG,
                    s,
                    format!("invalid tmpfs mode: {v} (expected octal, e.g. 1777)"),
                ));
            }
        }
    }
    Ok(TmpfsMount {
        target,
        options: merge_tmpfs_options(&user),
    })
}

/// Files under /proc that lxcfs emulates: the only mount targets inside /proc that
/// runc (and so docker) accepts.
const LXCFS_PROC_TARGETS: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// runc's `checkProcMount`, which makes docker refuse to start such a container:
/// nothing may be mounted over /proc but a procfs (a bind of one, `source_is_procfs`),
/// and nothing inside /proc but lxcfs's files. A tmpfs over /proc or /proc/sys would
/// hide the masked and read-only paths the runtime set up. `source` names the mount
/// in the message (`tmpfs`, the host path, the volume). `target` is cleaned.
pub fn check_proc_mount(source: &str, target: &str, source_is_procfs: bool) -> Result<(), String> {
    let target = clean_path(Path::new(target));
    let Ok(rel) = target.strip_prefix("/proc") else {
        return Ok(());
    };
    let why = if rel.as_os_str().is_empty() {
        if source_is_procfs {
            return Ok(());
        }
        "is not of type proc"
    } else if LXCFS_PROC_TARGETS.iter().any(|t| Path::new(t) == target) {
        return Ok(());
    } else {
        "is inside /proc"
    };
    let target = target.display();
    Err(format!(
        "error mounting {source:?} to rootfs at \"{target}\": \"{target}\" cannot be mounted because it {why}"
    ))
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "t" => Some(true),
        "0" | "false" | "f" => Some(false),
        _ => None,
    }
}

/// `--mount type=bind|volume|tmpfs,source=,target=,readonly,...` (docker's keys:
/// `type`, `source|src`, `target|destination|dst`, `readonly|ro[=bool]`,
/// `bind-propagation`, `bind-recursive`, `volume-nocopy[=bool]`, `tmpfs-size`,
/// `tmpfs-mode`, `consistency`). Default type: volume.
pub fn parse_mount(s: &str) -> Result<MountRequest, OptionsError> {
    let mut fields = MountFields::new();
    for field in s.split(',') {
        fields.set(s, field)?;
    }
    fields.into_request(s)
}

const MOUNT_FLAG: &str = "--mount";

/// The fields of a `--mount` value as given, before they are checked against its type.
struct MountFields {
    typ: String,
    source: Option<String>,
    target: Option<String>,
    read_only: bool,
    propagation: Option<Propagation>,
    recursive: bool,
    no_copy: bool,
    tmpfs_size: Option<i64>,
    tmpfs_mode: Option<u32>,
    /// The last option of each type given, to refuse mixing it with another type.
    seen_bind_opt: Option<String>,
    seen_volume_opt: Option<String>,
    seen_tmpfs_opt: Option<String>,
}

/// The value of `key=value` field `field` of `--mount` value `s`.
fn mount_value<'a>(s: &str, field: &str, value: Option<&'a str>) -> Result<&'a str, OptionsError> {
    value.ok_or_else(|| {
        bad(
            MOUNT_FLAG,
            s,
            format!("invalid field '{field}' must be a key=value pair"),
        )
    })
}

/// A boolean field of `--mount` value `s`: `key` alone is true.
fn mount_bool(s: &str, key: &str, value: Option<&str>) -> Result<bool, OptionsError> {
    match value {
        None => Ok(true),
        Some(v) => {
            parse_bool(v).ok_or_else(|| bad(MOUNT_FLAG, s, format!("invalid value for {key}: {v}")))
        }
    }
}

impl MountFields {
    fn new() -> MountFields {
        MountFields {
            typ: "volume".to_string(),
            source: None,
            target: None,
            read_only: false,
            propagation: None,
            recursive: true,
            no_copy: false,
            tmpfs_size: None,
            tmpfs_mode: None,
            seen_bind_opt: None,
            seen_volume_opt: None,
            seen_tmpfs_opt: None,
        }
    }

    /// Takes one `key[=value]` field of `--mount` value `s`.
    fn set(&mut self, s: &str, field: &str) -> Result<(), OptionsError> {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        let need = |v: Option<&str>| mount_value(s, field, v).map(str::to_string);
        match key.as_str() {
            "type" => self.typ = need(value)?.to_ascii_lowercase(),
            "source" | "src" => self.source = Some(need(value)?),
            "target" | "destination" | "dst" => self.target = Some(need(value)?),
            "readonly" | "ro" => self.read_only = mount_bool(s, &key, value)?,
            "consistency" => {
                need(value)?;
            }
            "bind-propagation" | "bind-recursive" | "bind-nonrecursive" => {
                self.set_bind_option(s, field, &key, value)?;
                self.seen_bind_opt = Some(key.clone());
            }
            "volume-nocopy" => {
                self.no_copy = mount_bool(s, &key, value)?;
                self.seen_volume_opt = Some(key.clone());
            }
            "volume-driver" | "volume-opt" | "volume-label" | "volume-subpath" => {
                return Err(OptionsError::Unsupported {
                    option: format!("--mount {key}"),
                    hint: "coracle's volumes use the local driver only; remove this option".into(),
                })
            }
            "tmpfs-size" | "tmpfs-mode" => {
                self.set_tmpfs_option(s, field, &key, value)?;
                self.seen_tmpfs_opt = Some(key.clone());
            }
            _ => {
                return Err(bad(
                    MOUNT_FLAG,
                    s,
                    format!("unexpected key '{key}' in '{field}'"),
                ));
            }
        }
        Ok(())
    }

    /// `bind-propagation`, `bind-recursive` or `bind-nonrecursive`.
    fn set_bind_option(
        &mut self,
        s: &str,
        field: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), OptionsError> {
        match key {
            "bind-propagation" => {
                let v = mount_value(s, field, value)?;
                self.propagation = Some(Propagation::parse(&v.to_ascii_lowercase()).ok_or_else(
                    || bad(MOUNT_FLAG, s, format!("invalid value for {key}: {v} (use one of shared, rshared, slave, rslave, private, rprivate)")),
                )?);
            }
            "bind-recursive" => {
                let v = mount_value(s, field, value)?;
                self.recursive = match v {
                    "enabled" => true,
                    "disabled" => false,
                    _ => {
                        return Err(bad(
                            MOUNT_FLAG,
                            s,
                            format!(
                            "invalid value for {key}: {v} (coracle supports enabled and disabled)"
                        ),
                        ))
                    }
                };
            }
            _ => self.recursive = !mount_bool(s, key, value)?,
        }
        Ok(())
    }

    /// `tmpfs-size` or `tmpfs-mode`.
    fn set_tmpfs_option(
        &mut self,
        s: &str,
        field: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), OptionsError> {
        let v = mount_value(s, field, value)?;
        let invalid = || bad(MOUNT_FLAG, s, format!("invalid value for {key}: {v}"));
        if key == "tmpfs-size" {
            self.tmpfs_size = Some(parse_ram_in_bytes(v).map_err(|_| invalid())?);
        } else {
            self.tmpfs_mode = Some(u32::from_str_radix(v, 8).map_err(|_| invalid())?);
        }
        Ok(())
    }

    /// The mount, once its target and the options of its type are checked.
    fn into_request(self, s: &str) -> Result<MountRequest, OptionsError> {
        let target = self
            .target
            .as_deref()
            .ok_or_else(|| bad(MOUNT_FLAG, s, "target is required"))?;
        let target = clean_target(MOUNT_FLAG, s, target)?;
        match self.typ.as_str() {
            "bind" => {
                self.refuse_mixed(s, &self.seen_volume_opt, "volume-*")?;
                self.refuse_mixed(s, &self.seen_tmpfs_opt, "tmpfs-*")?;
                self.into_bind(s, target)
            }
            "volume" => {
                self.refuse_mixed(s, &self.seen_bind_opt, "bind-*")?;
                self.refuse_mixed(s, &self.seen_tmpfs_opt, "tmpfs-*")?;
                self.into_volume(s, target)
            }
            "tmpfs" => {
                self.refuse_mixed(s, &self.seen_bind_opt, "bind-*")?;
                self.refuse_mixed(s, &self.seen_volume_opt, "volume-*")?;
                self.into_tmpfs(s, target)
            }
            other => Err(bad(
                MOUNT_FLAG,
                s,
                format!("invalid mount type '{other}': coracle supports bind, volume and tmpfs"),
            )),
        }
    }

    /// Refuses an option of another mount type (`kind`) than this one's.
    fn refuse_mixed(&self, s: &str, opt: &Option<String>, kind: &str) -> Result<(), OptionsError> {
        match opt {
            Some(o) => Err(bad(
                MOUNT_FLAG,
                s,
                format!(
                    "cannot mix '{o}' with mount type '{}' ({kind} options only)",
                    self.typ
                ),
            )),
            None => Ok(()),
        }
    }

    fn into_bind(self, s: &str, target: String) -> Result<MountRequest, OptionsError> {
        let source = self.source.filter(|s| !s.is_empty()).ok_or_else(|| {
            bad(
                MOUNT_FLAG,
                s,
                "invalid mount config for type \"bind\": field Source must not be empty",
            )
        })?;
        if !is_host_path(&source) {
            return Err(bad(
                MOUNT_FLAG,
                s,
                format!("invalid mount config for type \"bind\": source '{source}' must be an absolute path or start with ./ or ../"),
            ));
        }
        Ok(MountRequest::Bind {
            source: PathBuf::from(source),
            target,
            read_only: self.read_only,
            propagation: self.propagation,
            create_source: false,
            recursive: self.recursive,
            relabel: None,
        })
    }

    fn into_volume(self, s: &str, target: String) -> Result<MountRequest, OptionsError> {
        let (read_only, no_copy) = (self.read_only, self.no_copy);
        match self.source.filter(|s| !s.is_empty()) {
            Some(name) => {
                validate_volume_name(&name).map_err(|e| bad(MOUNT_FLAG, s, e))?;
                Ok(MountRequest::Named {
                    name,
                    target,
                    read_only,
                    no_copy,
                })
            }
            None => Ok(MountRequest::Anonymous {
                target,
                read_only,
                no_copy,
            }),
        }
    }

    fn into_tmpfs(self, s: &str, target: String) -> Result<MountRequest, OptionsError> {
        if self.source.is_some_and(|s| !s.is_empty()) {
            return Err(bad(
                MOUNT_FLAG,
                s,
                "invalid mount config for type \"tmpfs\": field Source must not be specified",
            ));
        }
        let mut user = Vec::new();
        if self.read_only {
            user.push("ro".to_string());
        }
        if let Some(sz) = self.tmpfs_size {
            user.push(format!("size={sz}"));
        }
        if let Some(m) = self.tmpfs_mode {
            user.push(format!("mode={m:o}"));
        }
        Ok(MountRequest::Tmpfs(TmpfsMount {
            target,
            options: merge_tmpfs_options(&user),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_over_proc_are_refused_as_runc_does() {
        for t in [
            "/proc",
            "/proc/",
            "/proc/sys",
            "/proc/sys/kernel",
            "/proc/1",
            "/x/../proc/sys",
        ] {
            let err = check_proc_mount("tmpfs", t, false).unwrap_err();
            assert!(
                err.starts_with("error mounting \"tmpfs\" to rootfs at \"/proc"),
                "{err}"
            );
        }
        assert_eq!(
            check_proc_mount("tmpfs", "/proc", false).unwrap_err(),
            "error mounting \"tmpfs\" to rootfs at \"/proc\": \"/proc\" cannot be mounted because it is not of type proc"
        );
        assert_eq!(
            check_proc_mount("tmpfs", "/proc/sys", false).unwrap_err(),
            "error mounting \"tmpfs\" to rootfs at \"/proc/sys\": \"/proc/sys\" cannot be mounted because it is inside /proc"
        );
        // a procfs bound over /proc, lxcfs's files, and everything outside /proc pass
        assert!(check_proc_mount("/proc", "/proc", true).is_ok());
        assert!(check_proc_mount("/var/lib/lxcfs/proc/meminfo", "/proc/meminfo", false).is_ok());
        assert!(check_proc_mount("/proc", "/proc/sys", true).is_err());
        for t in ["/processes", "/procfs", "/data/proc", "/sys"] {
            assert!(check_proc_mount("tmpfs", t, false).is_ok(), "{t}");
        }
    }

    fn bind(src: &str, dst: &str, ro: bool) -> MountRequest {
        MountRequest::Bind {
            source: PathBuf::from(src),
            target: dst.into(),
            read_only: ro,
            propagation: None,
            create_source: true,
            recursive: true,
            relabel: None,
        }
    }

    #[test]
    fn volume_relabel_modes() {
        let MountRequest::Bind { relabel, .. } = parse_volume("/h:/c:z").unwrap() else {
            panic!("bind")
        };
        assert_eq!(relabel, Some(Relabel::Shared));
        let MountRequest::Bind {
            relabel, read_only, ..
        } = parse_volume("/h:/c:ro,Z").unwrap()
        else {
            panic!("bind")
        };
        assert_eq!((relabel, read_only), (Some(Relabel::Private), true));
        assert!(parse_volume("/h:/c:z,Z").is_err());
    }

    #[test]
    fn volume_forms() {
        assert_eq!(
            parse_volume("/host:/ctr").unwrap(),
            bind("/host", "/ctr", false)
        );
        assert_eq!(
            parse_volume("/host:/ctr:ro").unwrap(),
            bind("/host", "/ctr", true)
        );
        assert_eq!(
            parse_volume("./site:/usr/share/nginx/html/").unwrap(),
            bind("./site", "/usr/share/nginx/html", false)
        );
        assert_eq!(
            parse_volume("../x:/x:rw").unwrap(),
            bind("../x", "/x", false)
        );
        assert_eq!(
            parse_volume("data:/var/lib/data").unwrap(),
            MountRequest::Named {
                name: "data".into(),
                target: "/var/lib/data".into(),
                read_only: false,
                no_copy: false
            }
        );
        assert_eq!(
            parse_volume("data:/d:ro,nocopy").unwrap(),
            MountRequest::Named {
                name: "data".into(),
                target: "/d".into(),
                read_only: true,
                no_copy: true
            }
        );
        assert_eq!(
            parse_volume("/data").unwrap(),
            MountRequest::Anonymous {
                target: "/data".into(),
                read_only: false,
                no_copy: false
            }
        );
        assert!(
            parse_volume("/data:ro").is_err(),
            "docker rejects a mode on an anonymous volume"
        );
        match parse_volume("/h:/c:rshared,Z").unwrap() {
            MountRequest::Bind { propagation, .. } => {
                assert_eq!(propagation, Some(Propagation::Rshared))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn volume_errors() {
        let e = parse_volume("a/b:/x").unwrap_err().to_string();
        assert!(e.contains("cannot contain '/'"), "{e}");
        assert!(
            e.contains("absolute path or one starting with ./ or ../"),
            "{e}"
        );
        assert_eq!(
            parse_volume(":/x").unwrap_err().to_string(),
            "invalid argument \":/x\" for \"-v, --volume\" flag: invalid spec: :/x: empty section between colons"
        );
        assert!(parse_volume("/h:relative")
            .unwrap_err()
            .to_string()
            .contains("must be absolute"));
        assert!(parse_volume("/h:/")
            .unwrap_err()
            .to_string()
            .contains("can't be '/'"));
        assert!(parse_volume("/h:/c:rx")
            .unwrap_err()
            .to_string()
            .contains("invalid mode: rx"));
        assert!(parse_volume("/h:/c:ro,rw").is_err());
        assert!(parse_volume("v:/c:shared").is_err());
        assert!(parse_volume("/a:/b:ro:x").is_err());
        assert!(
            parse_volume("x:/c").is_err(),
            "one-character names are invalid in docker"
        );
        assert!(parse_volume("-x:/c").is_err());
    }

    #[test]
    fn absolutize_relative_binds() {
        let m = parse_volume("./site/../www:/w")
            .unwrap()
            .absolutize(Path::new("/home/u/proj"));
        assert_eq!(m, bind("/home/u/proj/www", "/w", false));
        let m = parse_volume("/abs:/w").unwrap().absolutize(Path::new("/x"));
        assert_eq!(m, bind("/abs", "/w", false));
    }

    #[test]
    fn tmpfs_forms() {
        let t = parse_tmpfs("/tmp").unwrap();
        assert_eq!(t.target, "/tmp");
        assert_eq!(t.options, vec!["noexec", "nosuid", "nodev"]);
        let t = parse_tmpfs("/run:rw,exec,size=64m,mode=1770").unwrap();
        assert_eq!(
            t.options,
            vec!["nosuid", "nodev", "rw", "exec", "size=64m", "mode=1770"]
        );
        assert!(parse_tmpfs("tmp").is_err());
        assert!(parse_tmpfs("/t:size=12x").is_err());
        assert!(parse_tmpfs("/t:mode=999").is_err());
    }

    #[test]
    fn mount_forms() {
        assert_eq!(
            parse_mount("type=bind,source=/a,target=/b,readonly").unwrap(),
            MountRequest::Bind {
                source: "/a".into(),
                target: "/b".into(),
                read_only: true,
                propagation: None,
                create_source: false,
                recursive: true,
                relabel: None
            }
        );
        assert_eq!(
            parse_mount("type=bind,src=/a,dst=/b,bind-propagation=rslave,ro=false").unwrap(),
            MountRequest::Bind {
                source: "/a".into(),
                target: "/b".into(),
                read_only: false,
                propagation: Some(Propagation::Rslave),
                create_source: false,
                recursive: true,
                relabel: None
            }
        );
        assert_eq!(
            parse_mount("source=vol1,target=/d,volume-nocopy").unwrap(),
            MountRequest::Named {
                name: "vol1".into(),
                target: "/d".into(),
                read_only: false,
                no_copy: true
            }
        );
        assert_eq!(
            parse_mount("type=volume,target=/d").unwrap(),
            MountRequest::Anonymous {
                target: "/d".into(),
                read_only: false,
                no_copy: false
            }
        );
        assert_eq!(
            parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770").unwrap(),
            MountRequest::Tmpfs(TmpfsMount {
                target: "/t".into(),
                options: vec![
                    "noexec".into(),
                    "nosuid".into(),
                    "nodev".into(),
                    "size=1048576".into(),
                    "mode=1770".into()
                ]
            })
        );
    }

    #[test]
    fn mount_errors() {
        assert_eq!(
            parse_mount("type=bind").unwrap_err().to_string(),
            "invalid argument \"type=bind\" for \"--mount\" flag: target is required"
        );
        assert_eq!(
            parse_mount("type=bind,source=/a,target=/b,readonly=maybe").unwrap_err().to_string(),
            "invalid argument \"type=bind,source=/a,target=/b,readonly=maybe\" for \"--mount\" flag: invalid value for readonly: maybe"
        );
        assert!(parse_mount("type=tmpfs,target=/b,tmpfs-size=12x")
            .unwrap_err()
            .to_string()
            .ends_with("invalid value for tmpfs-size: 12x"));
        assert!(parse_mount("type=foo,target=/x").is_err());
        assert!(parse_mount("type=bind,target=/x")
            .unwrap_err()
            .to_string()
            .contains("Source must not be empty"));
        assert!(parse_mount("type=bind,source=rel,target=/x").is_err());
        assert!(parse_mount("type=tmpfs,source=/a,target=/x").is_err());
        assert!(parse_mount("type=bind,source=/a,target=/x,volume-nocopy")
            .unwrap_err()
            .to_string()
            .contains("cannot mix"));
        assert!(parse_mount("type=volume,source=a/b,target=/x").is_err());
        assert!(parse_mount("type=bind,source=/a,target=/x,bogus=1")
            .unwrap_err()
            .to_string()
            .contains("unexpected key 'bogus'"));
        assert!(parse_mount("target").is_err());
    }
}
