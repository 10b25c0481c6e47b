//! Talking to registries: resolve a reference to a platform's manifest and config,
//! stream blobs into the content store (verified, resumable, teed to an unpacker), and
//! push images. The protocol itself (Docker Hub bearer tokens, basic auth, ranged
//! pulls, foreign-layer URLs, uploads) is `oci-client`'s; this module adds what docker
//! users expect around it: our references, credentials from `~/.docker/config.json`,
//! insecure/loopback plain HTTP, mirrors with fallback, platform choice, retries.
//!
//! Two limits of `oci-client` shape this code, and are deliberate:
//! - `pull_manifest_raw` does not expose the response's Content-Type, so a manifest
//!   without `mediaType` is typed by its shape (`manifests` => index, `layers` =>
//!   image manifest; see [`crate::manifest::parse_manifest`]).
//! - its errors carry the HTTP status but not the headers, so a 429's `Retry-After`
//!   cannot be read; 429 is retried with the same capped exponential backoff as 5xx.

use crate::auth::{normalize_registry, Credentials, DockerConfig};
use crate::config::RegistryConfig;
use crate::content::{ContentError, ContentStore, Ingest};
use crate::manifest::{self, Descriptor, ImageManifest, Manifest, ACCEPTED_MANIFEST_TYPES};
use crate::{ImageError, Result};
use bytes::Bytes;
use coracle_core::{Digest, ErrorKind, ImageReference, Platform};
use futures_util::StreamExt;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol, LayerDescriptor};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Longest we wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A stalled connection is given up after this long without data.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const USER_AGENT: &str = concat!("coracle/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("manifest for {reference} not found: manifest unknown: {message}")]
    ManifestUnknown { reference: String, message: String },
    #[error(
        "pull access denied for {repository} on {registry}, repository does not exist or may require 'docker login': {message}"
    )]
    Unauthorized {
        registry: String,
        repository: String,
        message: String,
    },
    #[error("registry {registry} is unavailable: {message}")]
    Unavailable { registry: String, message: String },
    #[error("registry {registry}: {what}: {message}")]
    Protocol {
        registry: String,
        what: String,
        message: String,
    },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("no matching manifest for {platform} in the manifest list entries: {available}")]
    NoMatchingManifest { platform: String, available: String },
    #[error("{reference}: {message}")]
    Unsupported { reference: String, message: String },
    #[error("blob {blob} from {registry}: {message} (after {attempts} attempts)")]
    BlobFailed {
        blob: Digest,
        registry: String,
        attempts: u32,
        message: String,
    },
    #[error("blob {blob}: the consumer of the download stream went away")]
    TeeClosed { blob: Digest },
    #[error("blob {blob}: {path}: {source}")]
    BlobIo {
        blob: Digest,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RegistryError {
    /// Mapping: manifest unknown and "no manifest for this platform" -> NotFound;
    /// denied/unauthorized -> InvalidArgument (fix the name or log in); network,
    /// 5xx, 429 and exhausted retries -> Unavailable; digest mismatches, protocol
    /// violations and local I/O -> Internal; schema 1 and other unsupported content ->
    /// InvalidArgument.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RegistryError::ManifestUnknown { .. } | RegistryError::NoMatchingManifest { .. } => {
                ErrorKind::NotFound
            }
            RegistryError::Unauthorized { .. } | RegistryError::Unsupported { .. } => {
                ErrorKind::InvalidArgument
            }
            RegistryError::Unavailable { .. } | RegistryError::BlobFailed { .. } => {
                ErrorKind::Unavailable
            }
            RegistryError::Protocol { .. }
            | RegistryError::DigestMismatch { .. }
            | RegistryError::TeeClosed { .. }
            | RegistryError::BlobIo { .. } => ErrorKind::Internal,
        }
    }
}

/// What a reference resolved to for one platform.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Digest of the platform's image manifest.
    pub manifest_digest: Digest,
    /// Digest of the manifest list / index, when the reference named one (docker
    /// records this as the RepoDigest).
    pub index_digest: Option<Digest>,
    pub manifest_bytes: Bytes,
    pub manifest: ImageManifest,
    pub config_bytes: Bytes,
    /// The platform the config declares.
    pub platform: Platform,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobPhase {
    Waiting,
    Downloading,
    Retrying { attempt: u32, reason: String },
    Done,
    AlreadyExists,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobProgress {
    pub digest: Digest,
    pub downloaded: u64,
    pub total: u64,
    pub phase: BlobPhase,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushPhase {
    Preparing,
    Pushing,
    Pushed,
    /// docker prints "Layer already exists".
    AlreadyExists,
    /// Foreign layers are never pushed.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushProgress {
    pub digest: Digest,
    pub pushed: u64,
    pub total: u64,
    pub phase: PushPhase,
}

/// One place requests for a reference can go: a mirror or the registry itself.
#[derive(Clone)]
struct Source {
    /// host[:port] requests go to.
    host: String,
    reference: Reference,
    client: oci_client::Client,
    auth: RegistryAuth,
}

/// How one failed attempt should be handled.
enum Failure {
    /// Try again (after a pause), resuming where we were.
    Transient(String),
    /// The bytes were wrong: start again from scratch (once).
    Corrupt(String),
    /// Retrying cannot help.
    Fatal(ImageError),
}

/// A registry client for one command: caches one HTTP client (and its tokens) per
/// registry host. Cheap to share behind `&`.
pub struct RegistryClient {
    config: RegistryConfig,
    tls_verify: Option<bool>,
    docker: DockerConfig,
    clients: Mutex<HashMap<String, oci_client::Client>>,
    auths: Mutex<HashMap<String, RegistryAuth>>,
    backoff_base: Duration,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("config", &self.config)
            .field("tls_verify", &self.tls_verify)
            .finish()
    }
}

impl RegistryClient {
    /// Credentials come from `$DOCKER_CONFIG` / `~/.docker/config.json`.
    /// `tls_verify: Some(false)` allows plain HTTP to every registry.
    pub fn new(config: &RegistryConfig, tls_verify: Option<bool>) -> Result<RegistryClient> {
        Self::with_docker_config(config, tls_verify, DockerConfig::from_env())
    }

    pub fn with_docker_config(
        config: &RegistryConfig,
        tls_verify: Option<bool>,
        docker: DockerConfig,
    ) -> Result<RegistryClient> {
        Ok(RegistryClient {
            config: config.clone(),
            tls_verify,
            docker,
            clients: Mutex::new(HashMap::new()),
            auths: Mutex::new(HashMap::new()),
            backoff_base: Duration::from_millis(500),
        })
    }

    /// The first pause between retries (doubling each time, capped at 30 s).
    pub fn with_backoff_base(mut self, base: Duration) -> RegistryClient {
        self.backoff_base = base;
        self
    }

    fn new_oci_client(&self, host: &str) -> oci_client::Client {
        let insecure = self.config.is_insecure(host, self.tls_verify);
        let config = ClientConfig {
            protocol: if insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: self.tls_verify == Some(false),
            // One streamed PUT per blob: no whole-blob buffer, one request.
            use_monolithic_push: true,
            platform_resolver: None,
            read_timeout: Some(READ_TIMEOUT),
            connect_timeout: Some(CONNECT_TIMEOUT),
            user_agent: USER_AGENT,
            ..Default::default()
        };
        oci_client::Client::new(config)
    }

    fn oci_client(&self, host: &str) -> oci_client::Client {
        let mut clients = self.clients.lock().expect("client cache lock");
        clients
            .entry(host.to_string())
            .or_insert_with(|| self.new_oci_client(host))
            .clone()
    }

    fn auth_for(&self, registry: &str) -> Result<RegistryAuth> {
        let key = normalize_registry(registry);
        if let Some(a) = self.auths.lock().expect("auth cache lock").get(&key) {
            return Ok(a.clone());
        }
        let auth = match self.docker.get(&key)? {
            Some(c) => to_registry_auth(&c),
            None => RegistryAuth::Anonymous,
        };
        self.auths
            .lock()
            .expect("auth cache lock")
            .insert(key, auth.clone());
        Ok(auth)
    }

    fn origin(&self, r: &ImageReference) -> Result<Source> {
        let reference = to_oci_reference(r);
        let host = reference.resolve_registry().to_string();
        Ok(Source {
            client: self.oci_client(&host),
            auth: self.auth_for(r.registry())?,
            host,
            reference,
        })
    }

    /// Mirrors (in configured order) then the registry itself.
    fn sources(&self, r: &ImageReference) -> Result<Vec<Source>> {
        let mut out = Vec::new();
        for mirror in self.config.mirrors_for(r.registry()) {
            let mut reference = to_oci_reference(r);
            reference.set_mirror_registry(mirror.clone());
            out.push(Source {
                client: self.oci_client(mirror),
                auth: self.auth_for(mirror)?,
                host: mirror.clone(),
                reference,
            });
        }
        out.push(self.origin(r)?);
        Ok(out)
    }

    /// Resolve `reference` to the manifest and config for `platform`, trying mirrors
    /// first and falling back to the registry.
    pub async fn resolve(
        &self,
        reference: &ImageReference,
        platform: &Platform,
    ) -> Result<Resolved> {
        let sources = self.sources(reference)?;
        let last = sources.len() - 1;
        for (i, source) in sources.into_iter().enumerate() {
            match self.resolve_from(&source, reference, platform).await {
                Ok(r) => return Ok(r),
                // A mirror that fails (down, or without the image) is skipped.
                Err(_) if i < last => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("sources always end with the origin")
    }

    async fn pull_manifest(
        &self,
        source: &Source,
        oref: &Reference,
        reference: &ImageReference,
        expected: Option<&Digest>,
    ) -> Result<(Bytes, Digest)> {
        let (bytes, _header_digest) = source
            .client
            .pull_manifest_raw(oref, &source.auth, ACCEPTED_MANIFEST_TYPES)
            .await
            .map_err(|e| map_oci_error(e, &source.host, reference, "manifest"))?;
        // oci-client checked the body against Docker-Content-Digest and the digest in
        // the reference; check our expectation again in our own terms.
        let actual = match expected {
            Some(d) => {
                let mut h = d.hasher();
                h.update(&bytes);
                h.finish()
            }
            None => Digest::sha256_of(&bytes),
        };
        if let Some(d) = expected {
            if *d != actual {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest for {reference}"),
                    expected: d.clone(),
                    actual,
                }
                .into());
            }
        }
        Ok((bytes, actual))
    }

    async fn resolve_from(
        &self,
        source: &Source,
        reference: &ImageReference,
        platform: &Platform,
    ) -> Result<Resolved> {
        let what = format!("manifest for {reference}");
        let (bytes, digest) = self
            .pull_manifest(source, &source.reference, reference, reference.digest())
            .await?;
        let parsed = manifest::parse_manifest(&bytes, None, &what)?;
        let (manifest_bytes, manifest_digest, index_digest, manifest) = match parsed {
            Manifest::Image(m) => (bytes, digest, None, m),
            Manifest::Index(index) => {
                let entry = select_platform(&index.manifests, platform)?;
                let child_ref = source.reference.clone_with_digest(entry.digest.to_string());
                let (child, child_digest) = self
                    .pull_manifest(source, &child_ref, reference, Some(&entry.digest))
                    .await?;
                let child_what = format!("{what} ({platform}, {})", entry.digest);
                match manifest::parse_manifest(&child, Some(&entry.media_type), &child_what)? {
                    Manifest::Image(m) => (child, child_digest, Some(digest), m),
                    Manifest::Index(_) => {
                        return Err(RegistryError::Unsupported {
                            reference: reference.to_string(),
                            message: format!(
                                "the manifest list entry for {platform} is itself a manifest list"
                            ),
                        }
                        .into())
                    }
                }
            }
        };
        let config_bytes = self
            .fetch_small_blob(source, reference, &manifest.config)
            .await?;
        let config = manifest::ImageConfig::parse(&config_bytes)?;
        Ok(Resolved {
            manifest_digest,
            index_digest,
            manifest_bytes,
            manifest,
            config_bytes,
            platform: config.platform(),
        })
    }

    /// A config blob: into memory, verified.
    async fn fetch_small_blob(
        &self,
        source: &Source,
        reference: &ImageReference,
        desc: &Descriptor,
    ) -> Result<Bytes> {
        let digest = desc.digest.to_string();
        let layer = LayerDescriptor {
            digest: &digest,
            urls: &desc.urls,
        };
        let mut out: Vec<u8> = Vec::with_capacity(desc.size as usize);
        source
            .client
            .pull_blob(&source.reference, &layer, &mut out)
            .await
            .map_err(|e| map_oci_error(e, &source.host, reference, &format!("config {digest}")))?;
        let mut h = desc.digest.hasher();
        h.update(&out);
        let actual = h.finish();
        if actual != desc.digest || out.len() as u64 != desc.size {
            return Err(RegistryError::DigestMismatch {
                what: format!("config blob of {reference} ({} bytes)", out.len()),
                expected: desc.digest.clone(),
                actual,
            }
            .into());
        }
        Ok(Bytes::from(out))
    }

    /// Download one blob into the content store, verifying size and digest while
    /// streaming. Every byte is also sent to `tee` once, in order (awaiting each send,
    /// so a slow consumer slows the download). Transient failures are retried with
    /// backoff, resuming with a Range request; a digest mismatch is retried once from
    /// scratch when no tee is attached (bytes already handed to a consumer cannot be
    /// taken back), then fails with nothing left in the store.
    pub async fn fetch_blob(
        &self,
        reference: &ImageReference,
        desc: &Descriptor,
        store: &ContentStore,
        progress: &(dyn Fn(BlobProgress) + Send + Sync),
        tee: Option<tokio::sync::mpsc::Sender<Bytes>>,
    ) -> Result<PathBuf> {
        let report = |downloaded: u64, phase: BlobPhase| {
            progress(BlobProgress {
                digest: desc.digest.clone(),
                downloaded,
                total: desc.size,
                phase,
            })
        };
        if store.contains(&desc.digest) {
            report(desc.size, BlobPhase::AlreadyExists);
            if let Some(tx) = &tee {
                send_file_to(&store.path(&desc.digest), &desc.digest, tx).await?;
            }
            return Ok(store.path(&desc.digest));
        }
        let sources = self.sources(reference)?;
        let mut src = 0;
        let mut attempts = 0u32;
        let mut restarted = false;
        let mut ingest = store.begin(&desc.digest, Some(desc.size))?;
        report(0, BlobPhase::Downloading);
        loop {
            let source = &sources[src];
            let outcome = match self
                .download_once(source, reference, desc, &mut ingest, &report, tee.as_ref())
                .await
            {
                Ok(()) => {
                    let written = ingest.written();
                    match ingest.commit() {
                        Ok(path) => {
                            report(written, BlobPhase::Done);
                            return Ok(path);
                        }
                        Err(ImageError::Content(
                            e @ (ContentError::DigestMismatch { .. }
                            | ContentError::SizeMismatch { .. }),
                        )) => {
                            ingest = store.begin(&desc.digest, Some(desc.size))?;
                            Failure::Corrupt(e.to_string())
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(f) => f,
            };
            let attempt_no = attempts + 1;
            let fail = |message: String| -> ImageError {
                RegistryError::BlobFailed {
                    blob: desc.digest.clone(),
                    registry: source.host.clone(),
                    attempts: attempt_no,
                    message,
                }
                .into()
            };
            match outcome {
                Failure::Corrupt(reason) => {
                    if restarted || tee.is_some() {
                        return Err(fail(reason));
                    }
                    restarted = true;
                    ingest.reset()?;
                    report(
                        0,
                        BlobPhase::Retrying {
                            attempt: attempt_no,
                            reason,
                        },
                    );
                }
                Failure::Fatal(e) => {
                    if src + 1 < sources.len() {
                        src += 1;
                        report(
                            ingest.written(),
                            BlobPhase::Retrying {
                                attempt: attempt_no,
                                reason: e.to_string(),
                            },
                        );
                    } else {
                        return Err(e);
                    }
                }
                Failure::Transient(reason) => {
                    if attempts < self.config.retries {
                        attempts += 1;
                        report(
                            ingest.written(),
                            BlobPhase::Retrying {
                                attempt: attempts,
                                reason: reason.clone(),
                            },
                        );
                        tokio::time::sleep(self.backoff(attempts)).await;
                    } else if src + 1 < sources.len() {
                        src += 1;
                        attempts = 0;
                    } else {
                        return Err(fail(reason));
                    }
                }
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        (self.backoff_base * factor).min(MAX_BACKOFF)
    }

    async fn download_once(
        &self,
        source: &Source,
        reference: &ImageReference,
        desc: &Descriptor,
        ingest: &mut Ingest,
        report: &(dyn Fn(u64, BlobPhase) + Send + Sync),
        tee: Option<&tokio::sync::mpsc::Sender<Bytes>>,
    ) -> std::result::Result<(), Failure> {
        let digest = desc.digest.to_string();
        let layer = LayerDescriptor {
            digest: &digest,
            urls: &desc.urls,
        };
        let what = format!("blob {digest}");
        let classify = |e: OciDistributionError| classify(e, &source.host, reference, &what);
        source
            .client
            .store_auth_if_needed(source.reference.resolve_registry(), &source.auth)
            .await;
        let offset = ingest.written();
        let (stream, mut skip) = if offset == 0 {
            let s = source
                .client
                .pull_blob_stream(&source.reference, &layer)
                .await
                .map_err(classify)?;
            (s, 0)
        } else {
            match source
                .client
                .pull_blob_stream_partial(&source.reference, &layer, offset, None)
                .await
                .map_err(classify)?
            {
                BlobResponse::Partial(s) => (s, 0),
                // The server ignored Range: skip what we already have.
                BlobResponse::Full(s) => (s, offset),
            }
        };
        let mut stream = stream.stream;
        while let Some(chunk) = stream.next().await {
            let mut chunk = chunk.map_err(|e| classify(OciDistributionError::IoError(e)))?;
            if skip > 0 {
                let n = skip.min(chunk.len() as u64);
                chunk = chunk.slice(n as usize..);
                skip -= n;
                if chunk.is_empty() {
                    continue;
                }
            }
            match ingest.write(&chunk) {
                Ok(()) => {}
                Err(ImageError::Content(e @ ContentError::SizeMismatch { .. })) => {
                    return Err(Failure::Corrupt(e.to_string()))
                }
                Err(e) => return Err(Failure::Fatal(e)),
            }
            if let Some(tx) = tee {
                tx.send(chunk).await.map_err(|_| {
                    Failure::Fatal(
                        RegistryError::TeeClosed {
                            blob: desc.digest.clone(),
                        }
                        .into(),
                    )
                })?;
            }
            report(ingest.written(), BlobPhase::Downloading);
        }
        if ingest.written() < desc.size {
            return Err(Failure::Transient(format!(
                "connection closed after {} of {} bytes",
                ingest.written(),
                desc.size
            )));
        }
        Ok(())
    }

    /// Push an image whose blobs are in the store: HEAD each blob and upload the
    /// missing ones (streamed from their files), then PUT the manifest under the
    /// reference's tag (or digest). Returns the manifest's digest.
    #[allow(clippy::too_many_arguments)]
    pub async fn push_image(
        &self,
        reference: &ImageReference,
        manifest_bytes: &[u8],
        media_type: &str,
        config: (&Descriptor, &[u8]),
        layers: &[(Descriptor, PathBuf)],
        progress: &(dyn Fn(PushProgress) + Send + Sync),
    ) -> Result<Digest> {
        let source = self.origin(reference)?;
        let oref = &source.reference;
        let op_err = |what: String| {
            let host = source.host.clone();
            move |e| map_oci_error(e, &host, reference, &what)
        };
        source
            .client
            .auth(oref, &source.auth, RegistryOperation::Push)
            .await
            .map_err(op_err("authenticate for push".into()))?;
        for (desc, path) in layers {
            let report = |pushed: u64, phase: PushPhase| {
                progress(PushProgress {
                    digest: desc.digest.clone(),
                    pushed,
                    total: desc.size,
                    phase,
                })
            };
            if manifest::is_foreign_layer(&desc.media_type) {
                report(0, PushPhase::Skipped);
                continue;
            }
            report(0, PushPhase::Preparing);
            let digest = desc.digest.to_string();
            let exists = source
                .client
                .blob_exists(oref, &digest)
                .await
                .map_err(op_err(format!("check blob {digest}")))?;
            if exists {
                report(desc.size, PushPhase::AlreadyExists);
                continue;
            }
            let counter = Arc::new(AtomicU64::new(0));
            let stream = file_stream(path, desc.digest.clone(), counter.clone()).await?;
            let push = source
                .client
                .push_blob_stream(oref, stream, &digest, Some(desc.size));
            tokio::pin!(push);
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let result = loop {
                tokio::select! {
                    r = &mut push => break r,
                    _ = tick.tick() => report(counter.load(Ordering::Relaxed), PushPhase::Pushing),
                }
            };
            result.map_err(op_err(format!("upload blob {digest}")))?;
            report(desc.size, PushPhase::Pushed);
        }
        let (config_desc, config_bytes) = config;
        let config_digest = config_desc.digest.to_string();
        if !source
            .client
            .blob_exists(oref, &config_digest)
            .await
            .map_err(op_err(format!("check config {config_digest}")))?
        {
            source
                .client
                .push_blob(oref, Bytes::copy_from_slice(config_bytes), &config_digest)
                .await
                .map_err(op_err(format!("upload config {config_digest}")))?;
        }
        let content_type = media_type.parse().map_err(|_| RegistryError::Unsupported {
            reference: reference.to_string(),
            message: format!("invalid manifest media type {media_type:?}"),
        })?;
        source
            .client
            .push_manifest_raw(oref, Bytes::copy_from_slice(manifest_bytes), content_type)
            .await
            .map_err(op_err("upload manifest".into()))?;
        Ok(Digest::sha256_of(manifest_bytes))
    }

    /// Verify credentials for `registry` the way `docker login` does: run the
    /// registry's auth flow with them; a rejection is "unauthorized: incorrect
    /// username or password".
    pub async fn check_login(&self, registry: &str, creds: &Credentials) -> Result<()> {
        let registry = normalize_registry(registry);
        let probe = ImageReference::parse(&format!("{registry}/coracle/login-check"))
            .or_else(|_| ImageReference::parse("coracle/login-check"))
            .expect("static reference parses");
        let reference = to_oci_reference(&probe);
        let host = reference.resolve_registry().to_string();
        // A fresh client: no cached token or stored auth from earlier calls.
        let client = self.new_oci_client(&host);
        let auth = to_registry_auth(creds);
        let unauthorized = || -> ImageError {
            crate::auth::AuthError::Unauthorized {
                registry: registry.clone(),
            }
            .into()
        };
        match client
            .auth(&reference, &auth, RegistryOperation::Pull)
            .await
        {
            // A bearer token was issued for these credentials.
            Ok(Some(_)) => return Ok(()),
            Ok(None) => {}
            Err(OciDistributionError::AuthenticationFailure(_))
            | Err(OciDistributionError::UnauthorizedError { .. }) => return Err(unauthorized()),
            Err(e) => return Err(map_oci_error(e, &host, &probe, "GET /v2/")),
        }
        // Basic auth (or none): oci-client sends credentials without checking them,
        // so make an authenticated request; 401 means they are wrong.
        let empty = Digest::sha256_of(b"").to_string();
        match client.blob_exists(&reference, &empty).await {
            Ok(_) => Ok(()),
            Err(e) => match status_of(&e) {
                Some(401) => Err(unauthorized()),
                _ => Err(map_oci_error(e, &host, &probe, "verify credentials")),
            },
        }
    }
}

fn to_registry_auth(c: &Credentials) -> RegistryAuth {
    if !c.username.is_empty() || !c.password.is_empty() {
        RegistryAuth::Basic(c.username.clone(), c.password.clone())
    } else {
        // An identity (OAuth refresh) token alone: oci-client has no refresh-token
        // grant, so such a login is used anonymously.
        RegistryAuth::Anonymous
    }
}

fn to_oci_reference(r: &ImageReference) -> Reference {
    let registry = r.registry().to_string();
    let repository = r.repository().to_string();
    match (r.tag(), r.digest()) {
        (Some(t), Some(d)) => {
            Reference::with_tag_and_digest(registry, repository, t.to_string(), d.to_string())
        }
        (None, Some(d)) => Reference::with_digest(registry, repository, d.to_string()),
        (Some(t), None) => Reference::with_tag(registry, repository, t.to_string()),
        (None, None) => Reference::with_tag(registry, repository, "latest".to_string()),
    }
}

/// The manifest list entry to use for `platform`: entries for `unknown/unknown`
/// (attestations) are skipped; an exact variant match wins over a variant-less one.
pub fn select_platform<'a>(
    entries: &'a [Descriptor],
    platform: &Platform,
) -> Result<&'a Descriptor> {
    let candidates: Vec<&Descriptor> = entries
        .iter()
        .filter(|e| {
            e.platform
                .as_ref()
                .is_some_and(|p| !p.is_unknown() && platform.matches(p))
        })
        .collect();
    let exact = candidates
        .iter()
        .find(|e| e.platform.as_ref().map(|p| &p.variant) == Some(&platform.variant));
    if let Some(e) = exact.or(candidates.first()) {
        return Ok(e);
    }
    let available: Vec<String> = entries
        .iter()
        .filter_map(|e| e.platform.as_ref())
        .filter(|p| !p.is_unknown())
        .map(|p| p.to_string())
        .collect();
    Err(RegistryError::NoMatchingManifest {
        platform: platform.to_string(),
        available: available.join(", "),
    }
    .into())
}

fn status_of(e: &OciDistributionError) -> Option<u16> {
    match e {
        OciDistributionError::RequestError(r) => r.status().map(|s| s.as_u16()),
        OciDistributionError::ServerError { code, .. } => Some(*code),
        OciDistributionError::UnauthorizedError { .. } => Some(401),
        _ => None,
    }
}

fn is_digest_error(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::DigestError(_) => true,
        OciDistributionError::IoError(io) => io
            .get_ref()
            .is_some_and(|inner| inner.is::<oci_client::errors::DigestError>()),
        _ => false,
    }
}

/// Sort an oci-client error into retry classes (for blob downloads).
fn classify(
    e: OciDistributionError,
    host: &str,
    reference: &ImageReference,
    what: &str,
) -> Failure {
    if is_digest_error(&e) {
        return Failure::Corrupt(e.to_string());
    }
    let transient = match &e {
        OciDistributionError::RequestError(r) => match r.status() {
            Some(s) => s.as_u16() == 429 || s.is_server_error(),
            None => true,
        },
        OciDistributionError::ServerError { code, .. } => *code == 429 || *code >= 500,
        OciDistributionError::IoError(_) => true,
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|x| x.code == OciErrorCode::Toomanyrequests),
        _ => false,
    };
    if transient {
        Failure::Transient(e.to_string())
    } else {
        Failure::Fatal(map_oci_error(e, host, reference, what))
    }
}

/// Turn an oci-client error into ours, naming registry, repository and what failed.
fn map_oci_error(
    e: OciDistributionError,
    host: &str,
    reference: &ImageReference,
    what: &str,
) -> ImageError {
    let message = e.to_string();
    let registry = host.to_string();
    let status = status_of(&e);
    let codes: Vec<&OciErrorCode> = match &e {
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().map(|x| &x.code).collect()
        }
        _ => Vec::new(),
    };
    let has = |c: OciErrorCode| codes.iter().any(|x| **x == c);
    let err = if matches!(e, OciDistributionError::AuthenticationFailure(_))
        || matches!(status, Some(401) | Some(403))
        || has(OciErrorCode::Unauthorized)
        || has(OciErrorCode::Denied)
    {
        RegistryError::Unauthorized {
            registry,
            repository: reference.familiar_name(),
            message,
        }
    } else if has(OciErrorCode::ManifestUnknown)
        || has(OciErrorCode::NameUnknown)
        || has(OciErrorCode::NotFound)
        || has(OciErrorCode::BlobUnknown)
        || matches!(e, OciDistributionError::ImageManifestNotFoundError(_))
        || status == Some(404)
    {
        RegistryError::ManifestUnknown {
            reference: if what == "manifest" {
                reference.to_string()
            } else {
                format!("{reference} ({what})")
            },
            message,
        }
    } else if is_digest_error(&e) {
        RegistryError::Protocol {
            registry,
            what: format!("{what} of {reference}: digest verification failed"),
            message,
        }
    } else if matches!(
        e,
        OciDistributionError::RequestError(_) | OciDistributionError::IoError(_)
    ) || matches!(status, Some(s) if s == 429 || s >= 500)
        || has(OciErrorCode::Toomanyrequests)
    {
        RegistryError::Unavailable {
            registry,
            message: format!("{what} of {reference}: {message}"),
        }
    } else {
        RegistryError::Protocol {
            registry,
            what: format!("{what} of {reference}"),
            message,
        }
    };
    err.into()
}

/// A stream of a file's bytes in 1 MiB chunks, counting what has been read.
async fn file_stream(
    path: &Path,
    blob: Digest,
    counter: Arc<AtomicU64>,
) -> Result<impl futures_util::Stream<Item = oci_client::errors::Result<Bytes>> + Send + 'static> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|source| RegistryError::BlobIo {
            blob,
            path: path.to_path_buf(),
            source,
        })?;
    Ok(futures_util::stream::unfold(
        (file, counter),
        |(mut file, counter)| async move {
            let mut buf = vec![0u8; 1 << 20];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    Some((Ok(Bytes::from(buf)), (file, counter)))
                }
                Err(e) => Some((Err(OciDistributionError::IoError(e)), (file, counter))),
            }
        },
    ))
}

/// Replay a stored blob to a tee consumer.
async fn send_file_to(
    path: &Path,
    blob: &Digest,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) -> Result<()> {
    let io = |source| RegistryError::BlobIo {
        blob: blob.clone(),
        path: path.to_path_buf(),
        source,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(io)?;
    loop {
        let mut buf = vec![0u8; 256 << 10];
        let n = file.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            return Ok(());
        }
        buf.truncate(n);
        tx.send(Bytes::from(buf))
            .await
            .map_err(|_| RegistryError::TeeClosed { blob: blob.clone() })?;
    }
}

#[cfg(test)]
mod tests;
