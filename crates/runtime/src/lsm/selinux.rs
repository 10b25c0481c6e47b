//! SELinux as docker does it (opencontainers/selinux `label.InitLabels`): a container
//! runs as `system_u:system_r:container_t:s0:cX,cY` and its files are labelled
//! `system_u:object_r:container_file_t:s0:cX,cY`, with an MCS pair of its own so that
//! containers cannot reach each other's files; `--security-opt label=...` changes the
//! parts or disables labelling.

use super::{under, LsmError};
use std::collections::HashSet;
use std::path::Path;

const DEFAULT_PROCESS: &str = "system_u:system_r:container_t:s0";
const DEFAULT_FILE: &str = "system_u:object_r:container_file_t:s0";

/// Enabled when selinuxfs is mounted at /sys/fs/selinux (its `enforce` file exists and
/// mountinfo lists it) and the calling process has a real context (go-selinux's
/// `GetEnabled`: "kernel" means no policy is loaded).
pub fn enabled(root: &Path) -> bool {
    if !under(root, "/sys/fs/selinux/enforce").is_file() {
        return false;
    }
    let mounted = std::fs::read_to_string(under(root, "/proc/self/mountinfo"))
        .is_ok_and(|m| m.lines().any(mountinfo_is_selinuxfs));
    let context = std::fs::read_to_string(under(root, "/proc/self/attr/current"))
        .map(|c| c.trim_end_matches(['\n', '\0']).to_string())
        .unwrap_or_default();
    mounted && !context.is_empty() && context != "kernel"
}

/// A mountinfo line's filesystem type (after the ` - ` separator) is selinuxfs.
fn mountinfo_is_selinuxfs(line: &str) -> bool {
    line.split_once(" - ")
        .is_some_and(|(_, rest)| rest.split_whitespace().next() == Some("selinuxfs"))
}

/// The labels of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    /// `process.selinuxLabel`.
    pub process: String,
    /// `linux.mountLabel`.
    pub mount: String,
}

/// The policy's container contexts (`lxc_contexts` of the configured policy type),
/// docker's defaults where the file does not say.
pub fn default_contexts(root: &Path) -> (String, String) {
    let config = std::fs::read_to_string(under(root, "/etc/selinux/config")).unwrap_or_default();
    let policy = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("SELINUXTYPE="))
        .map(|t| t.trim().to_string())
        .unwrap_or_else(|| "targeted".to_string());
    let lxc = std::fs::read_to_string(
        under(root, "/etc/selinux")
            .join(&policy)
            .join("contexts/lxc_contexts"),
    )
    .unwrap_or_default();
    let value = |key: &str| {
        lxc.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
        })
    };
    (
        value("process").unwrap_or_else(|| DEFAULT_PROCESS.to_string()),
        value("file").unwrap_or_else(|| DEFAULT_FILE.to_string()),
    )
}

/// An MCS level `s0:cX,cY` (X < Y < 1024) from 4 random bytes, or None when it is in
/// `used` (the caller draws again).
pub fn mcs_level(random: [u8; 4], used: &HashSet<String>) -> Option<String> {
    let a = u32::from(u16::from_le_bytes([random[0], random[1]])) % 1024;
    let b = u32::from(u16::from_le_bytes([random[2], random[3]])) % 1024;
    if a == b {
        return None;
    }
    let level = format!("s0:c{},c{}", a.min(b), a.max(b));
    (!used.contains(&level)).then_some(level)
}

/// `user:role:type:level` with `key` replaced (the level may itself hold colons).
fn with_part(context: &str, key: &str, value: &str) -> String {
    let mut parts: Vec<String> = context.splitn(4, ':').map(str::to_string).collect();
    parts.resize(4, String::new());
    let i = match key {
        "user" => 0,
        "role" => 1,
        "type" => 2,
        _ => 3,
    };
    parts[i] = value.to_string();
    parts.join(":")
}

/// Checks `--security-opt label=` values (the flag parser's rule).
pub fn validate_option(opt: &str) -> Result<(), LsmError> {
    if coracle_model::valid_label_option(opt) {
        Ok(())
    } else {
        Err(LsmError::BadLabelOption(opt.to_string()))
    }
}

/// The container's labels (None: labelling disabled), from the policy's contexts, a
/// fresh MCS `level` and the `label=` options in order (InitLabels: user, role, type
/// and level change the process label; user and level the mount label too; filetype
/// the mount label's type).
pub fn container_labels(
    contexts: &(String, String),
    level: &str,
    options: &[String],
) -> Result<Option<Labels>, LsmError> {
    let mut process = with_part(&contexts.0, "level", level);
    let mut mount = with_part(&contexts.1, "level", level);
    for opt in options {
        validate_option(opt)?;
        if opt == "disable" {
            return Ok(None);
        }
        let (k, v) = opt.split_once(':').expect("validated");
        if k == "filetype" {
            mount = with_part(&mount, "type", v);
            continue;
        }
        process = with_part(&process, k, v);
        if k == "level" || k == "user" {
            mount = with_part(&mount, k, v);
        }
    }
    Ok(Some(Labels { process, mount }))
}

/// Paths go-selinux refuses to relabel (the system's own directories, and `home`).
fn relabel_refused(path: &Path, home: Option<&Path>) -> bool {
    const SYSTEM: &[&str] = &[
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/etc/passwd",
        "/etc/pki",
        "/etc/shadow",
        "/home",
        "/lib",
        "/lib64",
        "/media",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/var",
        "/var/lib",
        "/var/log",
    ];
    SYSTEM.iter().any(|s| Path::new(s) == path) || home.is_some_and(|h| h == path)
}

/// The label `-v SRC:DST:z|Z` gives the source: the container's mount label, at level
/// `s0` when shared (`z`) so that every container may use it; an error for the
/// system's directories (go-selinux `Relabel`).
pub fn relabel_target(path: &Path, mount_label: &str, shared: bool) -> Result<String, LsmError> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    if relabel_refused(path, home.as_deref()) {
        return Err(LsmError::RelabelRefused(path.to_path_buf()));
    }
    Ok(if shared {
        with_part(mount_label, "level", "s0")
    } else {
        mount_label.to_string()
    })
}

/// Sets `security.selinux` to `label` on `path` and everything under it (symlinks
/// themselves, not their targets), as `chcon -R`.
pub fn relabel(path: &Path, label: &str) -> Result<(), LsmError> {
    let io = |source: std::io::Error| LsmError::Io {
        what: "relabel",
        path: path.to_path_buf(),
        source,
    };
    set_label(path, label).map_err(io)?;
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io)? {
            relabel(&entry.map_err(io)?.path(), label)?;
        }
    }
    Ok(())
}

fn set_label(path: &Path, label: &str) -> std::io::Result<()> {
    use rustix::fs::{lsetxattr, XattrFlags};
    Ok(lsetxattr(
        path,
        "security.selinux",
        label.as_bytes(),
        XattrFlags::empty(),
    )?)
}

/// The MCS level of a label (`s0:c1,c2` of `u:r:t:s0:c1,c2`).
pub fn level_of(label: &str) -> Option<&str> {
    label.splitn(4, ':').nth(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(enforce: bool, mountinfo: &str, current: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let fs = root.path().join("sys/fs/selinux");
        std::fs::create_dir_all(&fs).unwrap();
        if enforce {
            std::fs::write(fs.join("enforce"), "1").unwrap();
        }
        let p = root.path().join("proc/self/attr");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(root.path().join("proc/self/mountinfo"), mountinfo).unwrap();
        std::fs::write(p.join("current"), current).unwrap();
        root
    }

    const SELINUXFS: &str =
        "24 19 0:22 / /sys/fs/selinux rw,relatime shared:7 - selinuxfs selinuxfs rw\n";
    const NO_SELINUXFS: &str = "24 19 0:22 / /sys rw,relatime shared:7 - sysfs sysfs rw\n";

    #[test]
    fn detection() {
        let ctx = "unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023\0";
        assert!(enabled(fake(true, SELINUXFS, ctx).path()));
        assert!(!enabled(fake(false, SELINUXFS, ctx).path()));
        assert!(!enabled(fake(true, NO_SELINUXFS, ctx).path()));
        assert!(!enabled(fake(true, SELINUXFS, "kernel\0").path()));
        assert!(!enabled(tempfile::tempdir().unwrap().path()));
    }

    #[test]
    fn labels_as_docker_makes_them() {
        let root = tempfile::tempdir().unwrap();
        let contexts = default_contexts(root.path());
        assert_eq!(contexts.0, DEFAULT_PROCESS);
        let l = container_labels(&contexts, "s0:c12,c345", &[])
            .unwrap()
            .unwrap();
        assert_eq!(l.process, "system_u:system_r:container_t:s0:c12,c345");
        assert_eq!(l.mount, "system_u:object_r:container_file_t:s0:c12,c345");
        let opts: Vec<String> = [
            "user:me_u",
            "role:r2",
            "type:spc_t",
            "level:s0:c1,c2",
            "filetype:ft_t",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let l = container_labels(&contexts, "s0:c12,c345", &opts)
            .unwrap()
            .unwrap();
        assert_eq!(l.process, "me_u:r2:spc_t:s0:c1,c2");
        assert_eq!(l.mount, "me_u:object_r:ft_t:s0:c1,c2");
        assert_eq!(
            container_labels(&contexts, "s0:c1,c2", &["disable".into()]).unwrap(),
            None
        );
        for bad in ["nested", "type:", "colour:red", "disable:1"] {
            assert!(
                container_labels(&contexts, "s0:c1,c2", &[bad.into()]).is_err(),
                "{bad}"
            );
        }
        assert_eq!(level_of(&l.process), Some("s0:c1,c2"));
    }

    #[test]
    fn policy_contexts_are_read() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("etc/selinux/mls/contexts");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            root.path().join("etc/selinux/config"),
            "SELINUX=enforcing\nSELINUXTYPE=mls\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("lxc_contexts"),
            "process = \"system_u:system_r:svirt_lxc_net_t:s0\"\nfile = \"system_u:object_r:svirt_sandbox_file_t:s0\"\n",
        )
        .unwrap();
        let (p, f) = default_contexts(root.path());
        assert_eq!(p, "system_u:system_r:svirt_lxc_net_t:s0");
        assert_eq!(f, "system_u:object_r:svirt_sandbox_file_t:s0");
    }

    #[test]
    fn relabel_targets_as_go_selinux() {
        let mount = "system_u:object_r:container_file_t:s0:c1,c2";
        let p = Path::new("/srv/data");
        assert_eq!(relabel_target(p, mount, false).unwrap(), mount);
        assert_eq!(
            relabel_target(p, mount, true).unwrap(),
            "system_u:object_r:container_file_t:s0"
        );
        for refused in ["/", "/usr", "/etc", "/var/lib", "/home"] {
            let err = relabel_target(Path::new(refused), mount, true).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("SELinux relabeling of {refused} is not allowed")
            );
        }
        assert!(relabel_refused(
            Path::new("/home/me"),
            Some(Path::new("/home/me"))
        ));
        assert!(!relabel_refused(Path::new("/usr/local/data"), None));
    }

    #[test]
    fn mcs_pairs_are_ordered_distinct_and_unused() {
        let none = HashSet::new();
        assert_eq!(mcs_level([5, 0, 3, 0], &none).as_deref(), Some("s0:c3,c5"));
        assert_eq!(
            mcs_level([0xff, 0xff, 0, 0], &none).as_deref(),
            Some("s0:c0,c1023")
        );
        assert_eq!(
            mcs_level([7, 0, 7, 4], &none),
            None,
            "7 and 1031 % 1024 = 7"
        );
        let used: HashSet<String> = ["s0:c3,c5".to_string()].into();
        assert_eq!(mcs_level([5, 0, 3, 0], &used), None);
    }
}
