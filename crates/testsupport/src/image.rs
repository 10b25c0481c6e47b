//! Fixture images: configs, manifests, indexes; push over HTTP; OCI layouts.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use coracle_core::Digest;
use serde_json::{json, Value};

use crate::client::RegistryClient;
use crate::error::{Error, Result};
use crate::layer::Layer;

pub mod media {
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const IN_TOTO: &str = "application/vnd.in-toto+json";
}

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    None,
    #[default]
    Gzip,
    Zstd,
}

impl Compression {
    pub fn compress(self, tar: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => tar.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(tar).expect("gzip");
                e.finish().expect("gzip")
            }
            Compression::Zstd => zstd::encode_all(tar, 3).expect("zstd"),
        }
    }
}

/// Manifest flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Docker v2 schema 2 (manifest list for indexes).
    Docker,
    /// OCI image manifest (OCI index for indexes).
    #[default]
    Oci,
}

impl Format {
    fn layer_media_type(self, c: Compression) -> &'static str {
        match (self, c) {
            (Format::Docker, Compression::None) => media::DOCKER_LAYER,
            (Format::Docker, Compression::Gzip) => media::DOCKER_LAYER_GZIP,
            (_, Compression::Zstd) => media::OCI_LAYER_ZSTD,
            (Format::Oci, Compression::None) => media::OCI_LAYER,
            (Format::Oci, Compression::Gzip) => media::OCI_LAYER_GZIP,
        }
    }
    pub fn manifest_media_type(self) -> &'static str {
        match self {
            Format::Docker => media::DOCKER_MANIFEST,
            Format::Oci => media::OCI_MANIFEST,
        }
    }
    pub fn index_media_type(self) -> &'static str {
        match self {
            Format::Docker => media::DOCKER_MANIFEST_LIST,
            Format::Oci => media::OCI_INDEX,
        }
    }
    fn config_media_type(self) -> &'static str {
        match self {
            Format::Docker => media::DOCKER_CONFIG,
            Format::Oci => media::OCI_CONFIG,
        }
    }
}

/// Bytes with their digest and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub digest: Digest,
    pub data: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, data: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_string(),
            digest: Digest::sha256_of(&data),
            data,
        }
    }

    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// `{mediaType, digest, size}`
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest.to_string(), "size": self.data.len()})
    }
}

/// GOARCH of this machine.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "arm" => "arm",
        other => other,
    }
}

/// Builds one image. Fields are public; the methods are shortcuts.
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    /// Uncompressed layer tars, bottom first.
    pub layers: Vec<Vec<u8>>,
    pub compression: Compression,
    pub format: Format,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: String,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
    /// `VOLUME` paths.
    pub volumes: Vec<String>,
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    pub created: String,
    /// Leave `mediaType` out of the manifest body (OCI only: distribution 2.8 refuses a
    /// Docker schema 2 manifest without it). Clients must use the Content-Type.
    pub omit_media_type: bool,
    /// Extra annotations on the manifest (OCI).
    pub annotations: BTreeMap<String, String>,
}

impl Default for ImageBuilder {
    fn default() -> ImageBuilder {
        ImageBuilder {
            layers: Vec::new(),
            compression: Compression::Gzip,
            format: Format::Oci,
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cmd: None,
            entrypoint: None,
            working_dir: String::new(),
            user: String::new(),
            labels: BTreeMap::new(),
            exposed_ports: Vec::new(),
            volumes: Vec::new(),
            architecture: host_arch().into(),
            os: "linux".into(),
            variant: None,
            created: "2024-01-01T00:00:00Z".into(),
            omit_media_type: false,
            annotations: BTreeMap::new(),
        }
    }
}

impl ImageBuilder {
    pub fn new() -> ImageBuilder {
        ImageBuilder::default()
    }
    pub fn layer(mut self, layer: &Layer) -> Self {
        self.layers.push(layer.to_tar());
        self
    }
    /// An already made uncompressed tar (e.g. [`crate::malicious_layer`]).
    pub fn raw_layer(mut self, tar: Vec<u8>) -> Self {
        self.layers.push(tar);
        self
    }
    pub fn compression(mut self, c: Compression) -> Self {
        self.compression = c;
        self
    }
    pub fn format(mut self, f: Format) -> Self {
        self.format = f;
        self
    }
    /// Replaces the whole Env list.
    pub fn env(mut self, env: &[&str]) -> Self {
        self.env = env.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn cmd(mut self, cmd: &[&str]) -> Self {
        self.cmd = Some(cmd.iter().map(|s| s.to_string()).collect());
        self
    }
    pub fn entrypoint(mut self, ep: &[&str]) -> Self {
        self.entrypoint = Some(ep.iter().map(|s| s.to_string()).collect());
        self
    }
    pub fn working_dir(mut self, d: &str) -> Self {
        self.working_dir = d.into();
        self
    }
    pub fn user(mut self, u: &str) -> Self {
        self.user = u.into();
        self
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.insert(k.into(), v.into());
        self
    }
    /// `"80/tcp"`
    pub fn expose(mut self, port: &str) -> Self {
        self.exposed_ports.push(port.into());
        self
    }
    /// A `VOLUME` path.
    pub fn volume(mut self, path: &str) -> Self {
        self.volumes.push(path.into());
        self
    }
    pub fn platform(mut self, os: &str, arch: &str, variant: Option<&str>) -> Self {
        self.os = os.into();
        self.architecture = arch.into();
        self.variant = variant.map(|v| v.to_string());
        self
    }
    pub fn created(mut self, c: &str) -> Self {
        self.created = c.into();
        self
    }
    pub fn omit_media_type(mut self, omit: bool) -> Self {
        self.omit_media_type = omit;
        self
    }
    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        self.annotations.insert(k.into(), v.into());
        self
    }

    /// The image config JSON (as it will be stored).
    pub fn config_json(&self, diff_ids: &[Digest]) -> Value {
        let mut config = serde_json::Map::new();
        config.insert("Env".into(), json!(self.env));
        if let Some(c) = &self.cmd {
            config.insert("Cmd".into(), json!(c));
        }
        if let Some(e) = &self.entrypoint {
            config.insert("Entrypoint".into(), json!(e));
        }
        if !self.working_dir.is_empty() {
            config.insert("WorkingDir".into(), json!(self.working_dir));
        }
        if !self.user.is_empty() {
            config.insert("User".into(), json!(self.user));
        }
        if !self.labels.is_empty() {
            config.insert("Labels".into(), json!(self.labels));
        }
        if !self.exposed_ports.is_empty() {
            let ports: serde_json::Map<String, Value> = self
                .exposed_ports
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            config.insert("ExposedPorts".into(), Value::Object(ports));
        }
        if !self.volumes.is_empty() {
            let volumes: serde_json::Map<String, Value> = self
                .volumes
                .iter()
                .map(|p| (p.clone(), json!({})))
                .collect();
            config.insert("Volumes".into(), Value::Object(volumes));
        }
        let mut v = json!({
            "architecture": self.architecture,
            "os": self.os,
            "created": self.created,
            "config": config,
            "rootfs": {
                "type": "layers",
                "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            },
            "history": diff_ids.iter().enumerate().map(|(i, _)| json!({
                "created": self.created,
                "created_by": format!("coracle-testsupport layer {i}"),
            })).collect::<Vec<_>>(),
        });
        if let Some(variant) = &self.variant {
            v["variant"] = json!(variant);
        }
        v
    }

    pub fn build(&self) -> Image {
        let diff_ids: Vec<Digest> = self.layers.iter().map(|t| Digest::sha256_of(t)).collect();
        let layer_mt = self.format.layer_media_type(self.compression);
        let layers: Vec<Blob> = self
            .layers
            .iter()
            .map(|t| Blob::new(layer_mt, self.compression.compress(t)))
            .collect();
        let config = Blob::new(
            self.format.config_media_type(),
            serde_json::to_vec(&self.config_json(&diff_ids)).expect("config json"),
        );
        let manifest_mt = self.format.manifest_media_type();
        let mut m = serde_json::Map::new();
        m.insert("schemaVersion".into(), json!(2));
        if !self.omit_media_type {
            m.insert("mediaType".into(), json!(manifest_mt));
        }
        m.insert("config".into(), config.descriptor());
        m.insert(
            "layers".into(),
            Value::Array(layers.iter().map(|l| l.descriptor()).collect()),
        );
        if !self.annotations.is_empty() {
            m.insert("annotations".into(), json!(self.annotations));
        }
        let manifest = Blob::new(
            manifest_mt,
            serde_json::to_vec_pretty(&Value::Object(m)).expect("manifest json"),
        );
        let mut platform = json!({"architecture": self.architecture, "os": self.os});
        if let Some(variant) = &self.variant {
            platform["variant"] = json!(variant);
        }
        Image {
            manifest,
            config,
            layers,
            diff_ids,
            uncompressed: self.layers.clone(),
            platform,
        }
    }
}

/// A built image: every blob and the manifest, ready to push or write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Manifest bytes; `media_type` is what to send as Content-Type.
    pub manifest: Blob,
    pub config: Blob,
    /// Compressed layer blobs, bottom first.
    pub layers: Vec<Blob>,
    pub diff_ids: Vec<Digest>,
    /// Uncompressed layer tars, bottom first.
    pub uncompressed: Vec<Vec<u8>>,
    /// `{"architecture", "os", "variant"?}` for index entries.
    pub platform: Value,
}

impl Image {
    pub fn digest(&self) -> &Digest {
        &self.manifest.digest
    }
    pub fn config_json(&self) -> Value {
        serde_json::from_slice(&self.config.data).expect("config json")
    }
}

/// Builds an index (OCI) or manifest list (Docker) of several platform images, with an
/// optional attestation entry per image (like buildx).
#[derive(Debug, Clone, Default)]
pub struct IndexBuilder {
    pub images: Vec<Image>,
    pub format: Format,
    /// Add an attestation manifest (`unknown/unknown`) for the first image.
    pub attestation: bool,
    pub omit_media_type: bool,
}

impl IndexBuilder {
    pub fn new(format: Format) -> IndexBuilder {
        IndexBuilder {
            format,
            ..IndexBuilder::default()
        }
    }
    pub fn image(mut self, image: Image) -> Self {
        self.images.push(image);
        self
    }
    pub fn attestation(mut self, yes: bool) -> Self {
        self.attestation = yes;
        self
    }
    pub fn omit_media_type(mut self, omit: bool) -> Self {
        self.omit_media_type = omit;
        self
    }

    pub fn build(&self) -> Index {
        let mut manifests: Vec<Value> = Vec::new();
        for img in &self.images {
            let mut d = img.manifest.descriptor();
            d["platform"] = img.platform.clone();
            manifests.push(d);
        }
        let mut attestations = Vec::new();
        if self.attestation {
            if let Some(first) = self.images.first() {
                let statement = json!({
                    "_type": "https://in-toto.io/Statement/v0.1",
                    "predicateType": "https://spdx.dev/Document",
                    "subject": [{"name": "fixture", "digest": {"sha256": first.digest().hex()}}],
                    "predicate": {"spdxVersion": "SPDX-2.3"},
                });
                let layer = Blob::new(media::IN_TOTO, serde_json::to_vec(&statement).unwrap());
                let config = Blob::new(
                    media::OCI_CONFIG,
                    serde_json::to_vec(&json!({"architecture": "unknown", "os": "unknown", "config": {}, "rootfs": {"type": "layers", "diff_ids": [layer.digest.to_string()]}})).unwrap(),
                );
                let mut ldesc = layer.descriptor();
                ldesc["annotations"] =
                    json!({"in-toto.io/predicate-type": "https://spdx.dev/Document"});
                let manifest = Blob::new(
                    media::OCI_MANIFEST,
                    serde_json::to_vec_pretty(&json!({
                        "schemaVersion": 2,
                        "mediaType": media::OCI_MANIFEST,
                        "config": config.descriptor(),
                        "layers": [ldesc],
                    }))
                    .unwrap(),
                );
                let mut d = manifest.descriptor();
                d["platform"] = json!({"architecture": "unknown", "os": "unknown"});
                d["annotations"] = json!({
                    "vnd.docker.reference.digest": first.digest().to_string(),
                    "vnd.docker.reference.type": "attestation-manifest",
                });
                manifests.push(d);
                attestations.push(Image {
                    manifest,
                    config,
                    layers: vec![layer],
                    diff_ids: vec![],
                    uncompressed: vec![],
                    platform: json!({"architecture": "unknown", "os": "unknown"}),
                });
            }
        }
        let mt = self.format.index_media_type();
        let mut m = serde_json::Map::new();
        m.insert("schemaVersion".into(), json!(2));
        if !self.omit_media_type {
            m.insert("mediaType".into(), json!(mt));
        }
        m.insert("manifests".into(), Value::Array(manifests));
        Index {
            manifest: Blob::new(mt, serde_json::to_vec_pretty(&Value::Object(m)).unwrap()),
            images: self.images.clone(),
            attestations,
        }
    }
}

/// A built index / manifest list with its child images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub manifest: Blob,
    pub images: Vec<Image>,
    pub attestations: Vec<Image>,
}

impl Index {
    pub fn digest(&self) -> &Digest {
        &self.manifest.digest
    }
}

/// Something that can be pushed or written to an OCI layout.
pub trait Artifact {
    /// The top-level manifest (tagged).
    fn top(&self) -> &Blob;
    /// Non-manifest blobs (configs and layers).
    fn blobs(&self) -> Vec<&Blob>;
    /// Child manifests to push before the top one.
    fn children(&self) -> Vec<&Blob>;
}

impl Artifact for Image {
    fn top(&self) -> &Blob {
        &self.manifest
    }
    fn blobs(&self) -> Vec<&Blob> {
        std::iter::once(&self.config)
            .chain(self.layers.iter())
            .collect()
    }
    fn children(&self) -> Vec<&Blob> {
        Vec::new()
    }
}

impl Artifact for Index {
    fn top(&self) -> &Blob {
        &self.manifest
    }
    fn blobs(&self) -> Vec<&Blob> {
        self.images
            .iter()
            .chain(self.attestations.iter())
            .flat_map(|i| i.blobs())
            .collect()
    }
    fn children(&self) -> Vec<&Blob> {
        self.images
            .iter()
            .chain(self.attestations.iter())
            .map(|i| &i.manifest)
            .collect()
    }
}

/// Pushes `artifact` to `host` (`127.0.0.1:PORT`) as `repo:tag` over plain HTTP;
/// answers 401 with basic auth or the token flow. Returns the top manifest's digest.
pub fn push(
    host: &str,
    repo: &str,
    tag: &str,
    artifact: &dyn Artifact,
    auth: Option<(&str, &str)>,
) -> Result<Digest> {
    let client = RegistryClient::new(host, auth);
    push_with(&client, repo, tag, artifact)
}

/// [`push`] with an existing client (reuses its tokens).
pub fn push_with(
    client: &RegistryClient,
    repo: &str,
    tag: &str,
    artifact: &dyn Artifact,
) -> Result<Digest> {
    for b in artifact.blobs() {
        client.push_blob(repo, &b.data)?;
    }
    for m in artifact.children() {
        client.push_manifest(repo, &m.digest.to_string(), &m.media_type, &m.data)?;
    }
    let top = artifact.top();
    let d = client.push_manifest(repo, tag, &top.media_type, &top.data)?;
    if d != top.digest {
        return Err(Error::new("pushed digest mismatch"));
    }
    Ok(d)
}

/// Writes (or adds to) an OCI image layout at `dir`: `oci-layout`, `blobs/sha256/*` and
/// `index.json` with an `org.opencontainers.image.ref.name` annotation = `tag`.
pub fn write_oci_layout(dir: &Path, artifact: &dyn Artifact, tag: &str) -> Result<()> {
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs)?;
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let top = artifact.top();
    for b in artifact
        .blobs()
        .into_iter()
        .chain(artifact.children())
        .chain(std::iter::once(top))
    {
        fs::write(blobs.join(b.digest.hex()), &b.data)?;
    }
    let index_path = dir.join("index.json");
    let mut index: Value = match fs::read(&index_path) {
        Ok(data) => serde_json::from_slice(&data)?,
        Err(_) => json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": []}),
    };
    let mut d = top.descriptor();
    d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let manifests = index["manifests"]
        .as_array_mut()
        .ok_or_else(|| Error::new("index.json without manifests"))?;
    manifests.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != json!(tag));
    manifests.push(d);
    fs::write(&index_path, serde_json::to_vec_pretty(&index)?)?;
    Ok(())
}

/// The busybox image: one busybox layer, `Cmd ["sh"]`, gzip, OCI.
pub fn busybox_image() -> Image {
    busybox_builder().build()
}

/// The busybox image's builder, to change format, compression or config.
pub fn busybox_builder() -> ImageBuilder {
    ImageBuilder::new().layer(&Layer::busybox()).cmd(&["sh"])
}
