//! Linux security modules, as docker uses them: AppArmor (the default profile, loaded
//! through `apparmor_parser`) and SELinux (process and mount labels with a private MCS
//! pair). Detection reads files under a root path (`/` for the host) so that tests can
//! fake `/sys` and `/proc` on a tempdir.

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
}

impl LsmError {
    pub fn kind(&self) -> coracle_core::ErrorKind {
        match self {
            LsmError::Io { .. } | LsmError::ProfileLoad { .. } => {
                coracle_core::ErrorKind::Unavailable
            }
            LsmError::BadLabelOption(_) => coracle_core::ErrorKind::InvalidArgument,
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
