//! Linux security modules, as docker uses them: AppArmor (the default profile, loaded
//! through `apparmor_parser`) and SELinux (process and mount labels with a private MCS
//! pair). Detection reads files under a root path (`/` for the host) so that tests can
//! fake `/sys` and `/proc` on a tempdir.
//!
//! Written and tested on a host with neither module. Unit-tested: detection on fake
//! trees, the profile text (golden, rendered from moby's template), profile choice,
//! label generation, MCS levels, relabel targets and the relabel writes (as plain
//! xattrs). Not exercised against a real kernel module: `apparmor_parser -Kr` loading
//! the profile and the kernel enforcing it (libcontainer 0.7.0 writes
//! `attr/apparmor/exec` for create and exec; crun/runc apply `process.apparmorProfile`
//! themselves), and SELinux labels enforced by crun/runc. The built-in runtime
//! cannot set a process label (libcontainer 0.7.0 has no SELinux support beyond the
//! mount label), so on a host with SELinux enabled it refuses to create a labelled
//! container rather than run it unconfined.

pub mod apparmor;
pub mod selinux;

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LsmError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("AppArmor enabled on system but the {profile} profile could not be loaded: running 'apparmor_parser -Kr' failed: {detail}")]
    ProfileLoad { profile: String, detail: String },
    #[error("bad label option {0:?}, valid options 'disable' or 'user, role, level, type, filetype' followed by ':' and a value")]
    BadLabelOption(String),
    #[error("SELinux relabeling of {} is not allowed", .0.display())]
    RelabelRefused(PathBuf),
}

impl LsmError {
    pub fn kind(&self) -> coracle_core::ErrorKind {
        match self {
            LsmError::Io { .. } | LsmError::ProfileLoad { .. } => {
                coracle_core::ErrorKind::Unavailable
            }
            LsmError::BadLabelOption(_) | LsmError::RelabelRefused(_) => {
                coracle_core::ErrorKind::InvalidArgument
            }
        }
    }
}

/// Which security modules the host has enabled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostLsm {
    pub apparmor: bool,
    pub selinux: bool,
}

impl HostLsm {
    /// Detection under `root` (`/` for the host).
    pub fn detect(root: &Path) -> HostLsm {
        HostLsm {
            apparmor: apparmor::enabled(root),
            selinux: selinux::enabled(root),
        }
    }
}

/// `root` joined with an absolute host path.
fn under(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}
