use coracle_core::ErrorKind;
use coracle_runtime::runtime::RuntimeError;
use std::path::PathBuf;

/// Everything the engine's operations can fail with. Lower crates' errors pass through
/// with their own kind; the engine adds the docker-level meaning (no such image,
/// conflicts) on top.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// The container could not be started; `code` is docker's exit code for it (125,
    /// or 126/127 when its command cannot be executed).
    #[error("{message}")]
    StartFailed { code: i32, message: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The store belongs to another user (or cannot even be looked at).
    #[error("permission denied: {}", store_permission(path, owner.as_deref()))]
    StorePermission {
        path: PathBuf,
        owner: Option<String>,
    },
    /// A write into the store ran out of room (ENOSPC or EDQUOT) during `what`.
    #[error("{what}: no space left on device: the store {} is full ({detail}); free space (coracle image prune -a, coracle system prune) or use a store with more room (--root)", store.display())]
    NoSpace {
        what: String,
        store: PathBuf,
        detail: String,
    },
    #[error(transparent)]
    State(#[from] coracle_state::StateError),
    #[error(transparent)]
    Reference(#[from] coracle_core::ReferenceError),
    #[error(transparent)]
    Platform(#[from] coracle_core::PlatformError),
    #[error(transparent)]
    Image(#[from] coracle_image::ImageError),
    #[error(transparent)]
    Unpack(#[from] coracle_rootfs::UnpackError),
    #[error(transparent)]
    LayerStore(#[from] coracle_rootfs::StoreError),
    #[error(transparent)]
    Snapshot(#[from] coracle_rootfs::SnapshotError),
    #[error(transparent)]
    Resolve(#[from] coracle_rootfs::ResolveError),
    #[error(transparent)]
    Volume(#[from] coracle_rootfs::VolumeError),
    #[error(transparent)]
    Options(#[from] coracle_model::OptionsError),
    #[error(transparent)]
    Spec(#[from] coracle_runtime::spec::SpecError),
    #[error(transparent)]
    Net(#[from] coracle_net::NetError),
    #[error(transparent)]
    Lsm(#[from] coracle_runtime::lsm::LsmError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A runtime operation on a container failed; `context` names it in docker's
    /// words ("Cannot pause container ID").
    #[error("{context}: {source}")]
    RuntimeOp {
        context: String,
        #[source]
        source: RuntimeError,
    },
    #[error(transparent)]
    Monitor(#[from] coracle_runtime::monitor::MonitorError),
    /// Something coracle stored itself (a file in the container's directory, a
    /// document in the database) does not read back: the store is damaged, which is
    /// not the caller's doing.
    #[error("{what}: {source}")]
    Corrupt {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Teardown(#[from] TeardownError),
}

impl EngineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::NoSuchImage(_)
            | EngineError::NoSuchContainer(_)
            | EngineError::NoSuchNetwork(_) => ErrorKind::NotFound,
            EngineError::Conflict(_) => ErrorKind::Conflict,
            EngineError::InvalidArgument(_) | EngineError::StorePermission { .. } => {
                ErrorKind::InvalidArgument
            }
            EngineError::NoSpace { .. } => ErrorKind::Unavailable,
            EngineError::StartFailed { code: 125, .. } => ErrorKind::Internal,
            EngineError::StartFailed { .. } => ErrorKind::InvalidArgument,
            EngineError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied => ErrorKind::InvalidArgument,
                _ => ErrorKind::Internal,
            },
            EngineError::State(e) => e.kind(),
            EngineError::Net(e) => e.kind(),
            EngineError::Reference(e) => e.kind(),
            EngineError::Platform(e) => e.kind(),
            EngineError::Image(e) => e.kind(),
            EngineError::Unpack(e) => e.kind(),
            EngineError::LayerStore(e) => e.kind(),
            EngineError::Snapshot(e) => e.kind(),
            EngineError::Resolve(e) => e.kind(),
            EngineError::Volume(e) => e.kind(),
            EngineError::Options(e) => e.kind(),
            EngineError::Spec(e) => e.kind(),
            EngineError::Lsm(e) => e.kind(),
            EngineError::Runtime(e) | EngineError::RuntimeOp { source: e, .. } => e.kind(),
            EngineError::Monitor(e) => e.kind(),
            EngineError::Corrupt { .. } => ErrorKind::Internal,
            EngineError::Teardown(e) => e.kind(),
        }
    }

    /// `self` as [`EngineError::NoSpace`] when an ENOSPC/EDQUOT is among its causes.
    pub(crate) fn or_no_space(
        self,
        what: impl Into<String>,
        store: &std::path::Path,
    ) -> EngineError {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&self);
        let mut full = false;
        while let Some(c) = cause {
            if let Some(io) = c.downcast_ref::<std::io::Error>() {
                full |= matches!(io.raw_os_error(), Some(28 | 122));
            }
            cause = c.source();
        }
        if !full || matches!(self, EngineError::NoSpace { .. }) {
            return self;
        }
        EngineError::NoSpace {
            what: what.into(),
            store: store.to_path_buf(),
            detail: self.to_string(),
        }
    }

    /// [`EngineError::Corrupt`] for `what` (a path, or what the value is).
    pub(crate) fn corrupt<E>(what: impl std::fmt::Display) -> impl FnOnce(E) -> EngineError
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let what = what.to_string();
        move |e| EngineError::Corrupt {
            what,
            source: e.into(),
        }
    }

    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> EngineError {
        let path = path.into();
        move |source| EngineError::Io { what, path, source }
    }
}

fn store_permission(path: &std::path::Path, owner: Option<&str>) -> String {
    match owner {
        Some(o) => format!("this store belongs to {o} ({})", path.display()),
        None => format!(
            "cannot access the store {}; use a store of your own (--root)",
            path.display()
        ),
    }
}

/// A step of tearing a container down (its network, root filesystem mount) that
/// failed. Teardown goes on past a failed step so that everything else is still
/// released; the failures are collected and reported together.
#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    /// The host end of a veth could not be deleted.
    #[error("remove {host_if}: {source}")]
    Veth {
        host_if: String,
        #[source]
        source: coracle_net::NetError,
    },
    #[error(transparent)]
    Net(#[from] coracle_net::NetError),
    #[error(transparent)]
    State(#[from] coracle_state::StateError),
    #[error(transparent)]
    Unmount(#[from] coracle_rootfs::SnapshotError),
    /// Taking the network lock or syncing the firewall.
    #[error(transparent)]
    Engine(Box<EngineError>),
}

impl From<EngineError> for TeardownError {
    fn from(e: EngineError) -> TeardownError {
        TeardownError::Engine(Box::new(e))
    }
}

impl TeardownError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            TeardownError::Veth { source, .. } | TeardownError::Net(source) => source.kind(),
            TeardownError::State(e) => e.kind(),
            TeardownError::Unmount(e) => e.kind(),
            TeardownError::Engine(e) => e.kind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;

    #[test]
    fn a_damaged_container_json_is_internal_and_keeps_its_message() {
        let tmp = tempfile::tempdir().unwrap();
        let e = Engine::open(tmp.path().join("store")).unwrap();
        let dir = e.containers_dir().join("ab".repeat(32));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("container.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = e.container_config(&"ab".repeat(32)).unwrap_err();
        assert!(matches!(err, EngineError::Corrupt { .. }), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::Internal);
        let json_err = serde_json::from_str::<serde_json::Value>("{not json").unwrap_err();
        assert_eq!(err.to_string(), format!("{}: {json_err}", path.display()));
    }

    #[test]
    fn lower_crates_errors_keep_their_text_and_kind() {
        let prctl = EngineError::from(coracle_runtime::monitor::MonitorError::Sys {
            call: "prctl(PR_SET_CHILD_SUBREAPER)",
            source: nix::Error::EPERM,
        });
        assert_eq!(prctl.kind(), ErrorKind::Internal);
        assert_eq!(
            prctl.to_string(),
            format!("prctl(PR_SET_CHILD_SUBREAPER): {}", nix::Error::EPERM)
        );
        let failed = || RuntimeError::NotFound {
            id: "c1".into(),
            runtime: "runc".into(),
        };
        let op = EngineError::RuntimeOp {
            context: "Cannot pause container c1".into(),
            source: failed(),
        };
        assert_eq!(
            op.to_string(),
            format!("Cannot pause container c1: {}", failed())
        );
        assert_eq!(op.kind(), failed().kind());
        let teardown =
            EngineError::from(TeardownError::from(EngineError::NoSuchNetwork("n".into())));
        assert_eq!(teardown.to_string(), "network n not found");
        assert_eq!(teardown.kind(), ErrorKind::NotFound);
    }
}
