//! Coracle's image handling: the content store (blobs by digest), registry access
//! (config, credentials, resolve/fetch/push through `oci-client`), manifest and image
//! config types, and `save`/`load` archives. Only this crate talks to registries.
//!
//! Every module has its own error enum; public functions return [`ImageError`], which
//! wraps them (so callers need one `From` and can still match the precise error).

pub mod archive;
pub mod auth;
pub mod config;
pub mod content;
pub mod manifest;
pub mod registry;

pub use archive::{
    read_archive, read_archive_with, write_docker_archive, ArchiveError, ArchiveImage,
    ArchiveLayer, LoadedArchive, LoadedImage, LoadedLayer,
};
pub use auth::{AuthError, Credentials, DockerConfig};
pub use config::{ConfigError, LayerLimits, RegistryConfig};
pub use content::{BlobLock, Collected, ContentError, ContentStore, Ingest};
pub use manifest::{
    parse_manifest, Compression, Descriptor, ImageConfig, ImageIndex, ImageManifest, Manifest,
    ManifestError,
};
pub use registry::{
    BlobPhase, BlobProgress, PushPhase, PushProgress, RegistryClient, RegistryError, Resolved,
    SearchResult,
};

use coracle_core::ErrorKind;

/// Any error of this crate; each variant is one module's error enum.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

impl ImageError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImageError::Content(e) => e.kind(),
            ImageError::Config(e) => e.kind(),
            ImageError::Auth(e) => e.kind(),
            ImageError::Manifest(e) => e.kind(),
            ImageError::Registry(e) => e.kind(),
            ImageError::Archive(e) => e.kind(),
        }
    }
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;
