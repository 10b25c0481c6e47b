use coracle_core::ErrorKind;
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
