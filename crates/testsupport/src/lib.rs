//! Test harness for Coracle's black-box integration tests (run as root).
//!
//! - [`Registry`]: Debian's `docker-registry` on a free loopback port, with no auth,
//!   htpasswd basic auth, or token auth through an in-process [`TokenIssuer`].
//! - [`FaultProxy`]: a reverse proxy injecting [`Fault`]s into blob GETs.
//! - [`Layer`], [`ImageBuilder`], [`IndexBuilder`], [`Fixture`], [`malicious_layer`]:
//!   fixture images, pushed with [`push`] or written with [`write_oci_layout`].
//! - [`Coracle`]: runs the binary with an isolated store (and, after
//!   [`Coracle::isolate_network`], inside its own [`NetNs`]); [`tree_snapshot`] and
//!   [`umoci_unpack`] to compare unpacked trees.
//!
//! Everything is synchronous (std threads) and talks only to 127.0.0.1.

mod client;
mod coracle;
mod error;
mod fixture;
mod http;
mod image;
mod layer;
mod netns;
mod proxy;
mod registry;
mod root;
mod token;
mod tree;

pub use client::{parse_challenge, HttpResponse, RegistryClient, MANIFEST_ACCEPT};
pub use coracle::{coracle_bin, mounts_under, Coracle, Output};
pub use error::{Error, Result};
pub use fixture::{Fixture, CAP_NET_BIND_SERVICE_XATTR};
pub use image::{
    busybox_builder, busybox_image, host_arch, media, push, push_with, write_oci_layout, Artifact,
    Blob, Compression, Format, Image, ImageBuilder, Index, IndexBuilder,
};
pub use layer::{
    busybox_path, malicious_layer, raw_header, raw_tar, Entry, EntryKind, Layer, Malicious,
    RawEntry, DEFAULT_MTIME,
};
pub use netns::{http_get, NetNs};
pub use proxy::{BlobRequest, Fault, FaultHandle, FaultProxy};
pub use registry::{free_port, registry_bin, Registry, RegistryAuth};
pub use root::{is_root, skip_unless_root};
pub use token::{TokenIssuer, TOKEN_ISSUER, TOKEN_SERVICE};
pub use tree::{
    diff_snapshots, skopeo_copy_to_oci, tree_snapshot, tree_snapshot_with, umoci_unpack, EntryInfo,
    Kind, SnapshotOptions,
};
