//! The JSON documents of an image: manifests (Docker v2 schema 2 and OCI), manifest
//! lists / OCI indexes, and the image config, with the media types that name them and
//! the layer compression a media type implies. We parse to read; the raw bytes are
//! what gets stored and hashed, so unknown fields need not survive re-serialising.

use coracle_core::{Digest, ErrorKind, Platform};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_NONDIST_TAR: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_NONDIST_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_NONDIST_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

/// Every manifest type we can read, for the `Accept` header.
pub const ACCEPTED_MANIFEST_TYPES: &[&str] = &[
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_MANIFEST,
    OCI_INDEX,
];

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{what}: invalid JSON: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{what}: Docker Image manifest version 2, schema 1 is no longer supported; \
         push the image again with a current docker or buildah (schema 2 / OCI)"
    )]
    Schema1 { what: String },
    #[error("{what}: unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType { what: String, media_type: String },
    #[error("{what}: unsupported layer media type {media_type:?}")]
    UnsupportedLayer { what: String, media_type: String },
    /// Over [`MAX_MANIFEST_SIZE`], [`MAX_CONFIG_SIZE`] or [`MAX_ARCHIVE_INDEX_SIZE`]:
    /// refused before it is read into memory.
    #[error("{what} is too large ({size}): the limit on {limit_of} is {}; refusing it", human_size(*limit))]
    TooLarge {
        what: String,
        /// How we know, e.g. "Content-Length 2147483648 bytes" or "more than 4 MiB sent".
        size: String,
        limit: u64,
        /// e.g. "manifests and indexes".
        limit_of: &'static str,
    },
}

/// Largest manifest or index accepted, from a registry or an archive: containerd's
/// limit for what it resolves from a registry. Real manifests are a few KiB (128
/// layers take about 32 KiB); the rest is room for annotations.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Largest image config accepted. Real configs are a few KiB, a few hundred KiB with a
/// long history or many labels; containerd reads them whole without a limit of its
/// own. 8 MiB is twice the manifest limit and bounds memory the same way.
pub const MAX_CONFIG_SIZE: u64 = 8 << 20;
/// Largest top-level JSON of an archive (`manifest.json`, `index.json`): they list
/// every image saved together; containerd's importer allows 20 MiB (CVE-2023-25153).
pub const MAX_ARCHIVE_INDEX_SIZE: u64 = 20 << 20;

/// `4194304` -> `4 MiB`, `1536` -> `1.5 KiB`, `100` -> `100 bytes`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} bytes"),
        _ if v.fract() == 0.0 => format!("{v:.0} {}", UNITS[unit]),
        _ => format!("{v:.1} {}", UNITS[unit]),
    }
}

impl ManifestError {
    /// A document we cannot use is the image's fault, not a transient one:
    /// InvalidArgument.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: None,
            annotations: None,
            platform: None,
        }
    }
}

/// A single-platform image manifest (Docker schema 2 or OCI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    /// Filled from the Content-Type or by sniffing when the body has none.
    #[serde(default)]
    pub media_type: String,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest list or OCI index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// What a manifest document turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(ImageIndex),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    schema_version: Option<u32>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    layers: Option<serde_json::Value>,
    #[serde(default)]
    fs_layers: Option<serde_json::Value>,
}

/// Parse a manifest, deciding its type from the body's `mediaType`, else from the
/// HTTP Content-Type, else by shape (`manifests` => index, `layers` => image
/// manifest), because some registries omit `mediaType` in OCI documents. `what`
/// names the document in errors.
pub fn parse_manifest(
    bytes: &[u8],
    content_type: Option<&str>,
    what: &str,
) -> Result<Manifest, ManifestError> {
    let json = |source| ManifestError::Json {
        what: what.to_string(),
        source,
    };
    let probe: Probe = serde_json::from_slice(bytes).map_err(json)?;
    let content_type = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");
    let media_type = match (probe.media_type.as_deref(), content_type) {
        (Some(m), _) if !m.is_empty() => m.to_string(),
        (_, Some(c)) => c.to_string(),
        _ if probe.schema_version == Some(1) || probe.fs_layers.is_some() => {
            DOCKER_SCHEMA1.to_string()
        }
        _ if probe.manifests.is_some() => OCI_INDEX.to_string(),
        _ if probe.layers.is_some() => OCI_MANIFEST.to_string(),
        _ => {
            return Err(ManifestError::UnsupportedMediaType {
                what: what.to_string(),
                media_type: String::new(),
            })
        }
    };
    match media_type.as_str() {
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Err(ManifestError::Schema1 {
            what: what.to_string(),
        }),
        _ if probe.schema_version == Some(1) => Err(ManifestError::Schema1 {
            what: what.to_string(),
        }),
        DOCKER_MANIFEST_LIST | OCI_INDEX => {
            let mut index: ImageIndex = serde_json::from_slice(bytes).map_err(json)?;
            index.media_type = media_type;
            Ok(Manifest::Index(index))
        }
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let mut m: ImageManifest = serde_json::from_slice(bytes).map_err(json)?;
            m.media_type = media_type;
            for l in &m.layers {
                if Compression::from_media_type(&l.media_type).is_none() {
                    return Err(ManifestError::UnsupportedLayer {
                        what: what.to_string(),
                        media_type: l.media_type.clone(),
                    });
                }
            }
            Ok(Manifest::Image(m))
        }
        other => Err(ManifestError::UnsupportedMediaType {
            what: what.to_string(),
            media_type: other.to_string(),
        }),
    }
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From a layer media type; `None` when it is not a layer type we know.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        match media_type {
            DOCKER_LAYER_GZIP
            | DOCKER_FOREIGN_LAYER_GZIP
            | OCI_LAYER_GZIP
            | OCI_LAYER_NONDIST_GZIP => Some(Compression::Gzip),
            DOCKER_LAYER_TAR | OCI_LAYER_TAR | OCI_LAYER_NONDIST_TAR => Some(Compression::None),
            OCI_LAYER_ZSTD | OCI_LAYER_NONDIST_ZSTD => Some(Compression::Zstd),
            other if other.ends_with("+gzip") || other.ends_with(".tar.gzip") => {
                Some(Compression::Gzip)
            }
            other if other.ends_with("+zstd") => Some(Compression::Zstd),
            other if other.ends_with(".tar") => Some(Compression::None),
            _ => None,
        }
    }

    /// From the first bytes of a blob (gzip `1f 8b`, zstd `28 b5 2f fd`).
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The OCI layer media type for this compression.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => OCI_LAYER_TAR,
            Compression::Gzip => OCI_LAYER_GZIP,
            Compression::Zstd => OCI_LAYER_ZSTD,
        }
    }
}

/// Foreign (Windows base) or nondistributable layers: fetched from their `urls`,
/// never pushed.
pub fn is_foreign_layer(media_type: &str) -> bool {
    media_type == DOCKER_FOREIGN_LAYER_GZIP || media_type.contains(".nondistributable.")
}

/// The part of the image config a container runs with (`config` in the JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
}

/// Docker's HEALTHCHECK; durations in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_layer: Option<bool>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    author: Option<String>,
    #[serde(default)]
    config: Option<ContainerConfig>,
    #[serde(default)]
    rootfs: Option<RawRootfs>,
    #[serde(default)]
    history: Vec<History>,
}

#[derive(Deserialize)]
struct RawRootfs {
    #[serde(default)]
    diff_ids: Vec<Digest>,
}

/// The image config (the blob the image ID is the digest of), read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    /// RFC 3339, as written by the builder.
    pub created: Option<String>,
    pub author: Option<String>,
    pub config: ContainerConfig,
    /// Uncompressed layer digests, bottom first (`rootfs.diff_ids`).
    pub diff_ids: Vec<Digest>,
    pub history: Vec<History>,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8]) -> crate::Result<ImageConfig> {
        let raw: RawConfig =
            serde_json::from_slice(bytes).map_err(|source| ManifestError::Json {
                what: format!("image config {}", Digest::sha256_of(bytes)),
                source,
            })?;
        Ok(ImageConfig {
            architecture: raw.architecture,
            os: raw.os,
            variant: raw.variant.filter(|v| !v.is_empty()),
            created: raw.created,
            author: raw.author,
            config: raw.config.unwrap_or_default(),
            diff_ids: raw.rootfs.map(|r| r.diff_ids).unwrap_or_default(),
            history: raw.history,
        })
    }

    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn manifest_json(media_type: Option<&str>) -> String {
        let mt = media_type
            .map(|m| format!(r#""mediaType":"{m}","#))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion":2,{mt}"config":{{"mediaType":"{OCI_CONFIG}","digest":"{D}","size":2}},
            "layers":[{{"mediaType":"{OCI_LAYER_GZIP}","digest":"{D}","size":10}}]}}"#
        )
    }

    #[test]
    fn detects_types() {
        let m = parse_manifest(manifest_json(Some(DOCKER_MANIFEST)).as_bytes(), None, "m").unwrap();
        assert!(matches!(m, Manifest::Image(ref i) if i.media_type == DOCKER_MANIFEST));
        // No mediaType: Content-Type decides, else the shape.
        let m = parse_manifest(
            manifest_json(None).as_bytes(),
            Some("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8"),
            "m",
        )
        .unwrap();
        assert!(matches!(m, Manifest::Image(ref i) if i.media_type == DOCKER_MANIFEST));
        let m = parse_manifest(manifest_json(None).as_bytes(), None, "m").unwrap();
        let Manifest::Image(img) = m else { panic!() };
        assert_eq!(img.media_type, OCI_MANIFEST);
        assert_eq!(img.layers[0].size, 10);
        let idx = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":5,
            "platform":{{"os":"linux","architecture":"arm64","variant":"v8","os.features":[]}}}}]}}"#
        );
        let Manifest::Index(i) = parse_manifest(idx.as_bytes(), None, "i").unwrap() else {
            panic!()
        };
        assert_eq!(i.media_type, OCI_INDEX);
        assert_eq!(
            i.manifests[0].platform.as_ref().unwrap().to_string(),
            "linux/arm64/v8"
        );
    }

    #[test]
    fn rejects_schema1_and_unknown() {
        let s1 = r#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        let err = parse_manifest(s1.as_bytes(), None, "manifest for x:y").unwrap_err();
        assert!(matches!(err, ManifestError::Schema1 { .. }));
        assert!(err.to_string().contains("schema 1"), "{err}");
        let err = parse_manifest(
            manifest_json(Some("application/vnd.example+json")).as_bytes(),
            None,
            "m",
        )
        .unwrap_err();
        assert!(matches!(err, ManifestError::UnsupportedMediaType { .. }));
        assert!(parse_manifest(b"{", None, "m").is_err());
    }

    #[test]
    fn compression_from_media_type() {
        assert_eq!(
            Compression::from_media_type(DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_media_type(OCI_LAYER_ZSTD),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::from_media_type(OCI_LAYER_TAR),
            Some(Compression::None)
        );
        assert_eq!(
            Compression::from_media_type(DOCKER_FOREIGN_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::from_media_type(OCI_LAYER_NONDIST_ZSTD),
            Some(Compression::Zstd)
        );
        assert_eq!(Compression::from_media_type("application/json"), None);
        assert!(is_foreign_layer(DOCKER_FOREIGN_LAYER_GZIP));
        assert!(is_foreign_layer(OCI_LAYER_NONDIST_TAR));
        assert!(!is_foreign_layer(OCI_LAYER_GZIP));
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"usr/"), Compression::None);
    }

    #[test]
    fn image_config() {
        let cfg = format!(
            r#"{{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
            "config":{{"Env":["PATH=/bin"],"Cmd":["sh"],"WorkingDir":"/w","User":"1000",
              "ExposedPorts":{{"80/tcp":{{}}}},"Volumes":{{"/data":{{}}}},"StopSignal":"SIGQUIT",
              "Labels":{{"a":"b"}},"Healthcheck":{{"Test":["CMD","true"],"Interval":1000000000}}}},
            "rootfs":{{"type":"layers","diff_ids":["{D}"]}},
            "history":[{{"created_by":"ADD x"}}]}}"#
        );
        let c = ImageConfig::parse(cfg.as_bytes()).unwrap();
        assert_eq!(c.platform().to_string(), "linux/amd64");
        assert_eq!(c.diff_ids, vec![D.parse().unwrap()]);
        assert_eq!(c.config.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(c.config.working_dir.as_deref(), Some("/w"));
        assert_eq!(c.config.stop_signal.as_deref(), Some("SIGQUIT"));
        assert!(c.config.exposed_ports.unwrap().contains_key("80/tcp"));
        assert_eq!(c.config.healthcheck.unwrap().interval, Some(1_000_000_000));
        assert_eq!(c.history[0].created_by.as_deref(), Some("ADD x"));
        assert!(ImageConfig::parse(b"\"x\"").is_err());
    }
}
