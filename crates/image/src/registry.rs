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
//! - its errors carry the HTTP status but not the headers. Blob GETs (layers and
//!   configs) are therefore our own requests ([`blobs`]), with the token from its auth
//!   flow, so a 429's `Retry-After` and a resumed download's 206/`Content-Range` are
//!   seen. Manifests still go through it: a 429 there gets the exponential backoff.
//!
//! Manifests, configs and layers share one retry policy ([`RegistryClient::with_retries`]):
//! connection errors, timeouts, 5xx and 429 are retried `retries` times (from the
//! registry config) with backoff; corrupt content is refetched once from scratch.

use crate::auth::{normalize_registry, Credentials, DockerConfig};
use crate::config::RegistryConfig;
use crate::content::{ContentError, ContentStore, Ingest};
use crate::manifest::{self, human_size, Descriptor, ImageManifest, Manifest, ManifestError};
use crate::{ImageError, Result};
use bytes::Bytes;
use coracle_core::{Digest, ErrorKind, ImageReference, Platform};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;

mod blobs;
mod search;
mod tags;

pub use search::SearchResult;

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
    #[error("repository {repository} not found: {message}")]
    RepositoryUnknown { repository: String, message: String },
    #[error("{registry} does not support search: {message}")]
    SearchUnsupported { registry: String, message: String },
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
    /// The registry sent bytes that are not the blob (digest or size mismatch), also
    /// when fetched again.
    #[error("{what} {blob} from {registry}: {detail}")]
    CorruptBlob {
        /// "blob" or "config blob".
        what: &'static str,
        blob: Digest,
        registry: String,
        detail: String,
    },
    #[error("cannot set up the HTTP client: {message}")]
    HttpClient { message: String },
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
            RegistryError::ManifestUnknown { .. }
            | RegistryError::NoMatchingManifest { .. }
            | RegistryError::RepositoryUnknown { .. } => ErrorKind::NotFound,
            RegistryError::Unauthorized { .. }
            | RegistryError::Unsupported { .. }
            | RegistryError::SearchUnsupported { .. } => ErrorKind::InvalidArgument,
            RegistryError::Unavailable { .. } | RegistryError::BlobFailed { .. } => {
                ErrorKind::Unavailable
            }
            RegistryError::Protocol { .. }
            | RegistryError::DigestMismatch { .. }
            | RegistryError::CorruptBlob { .. }
            | RegistryError::HttpClient { .. }
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
    /// "http" (insecure or loopback) or "https", as oci-client's client for `host`.
    scheme: &'static str,
    reference: Reference,
    client: oci_client::Client,
    auth: RegistryAuth,
}

/// How one failed attempt should be handled.
enum Failure {
    /// Try again (after `retry_after` if the server said, else the backoff),
    /// resuming where we were.
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The bytes were wrong: start again from scratch (once).
    Corrupt(String),
    /// Retrying cannot help.
    Fatal(ImageError),
}

impl Failure {
    fn transient(reason: String) -> Failure {
        Failure::Transient {
            reason,
            retry_after: None,
        }
    }

    fn reason(&self) -> String {
        match self {
            Failure::Transient { reason, .. } | Failure::Corrupt(reason) => reason.clone(),
            Failure::Fatal(e) => e.to_string(),
        }
    }
}

/// What [`RegistryClient::with_retries`] ends with when it stops trying.
struct GaveUp {
    /// The last attempt's failure.
    failure: Failure,
    attempts: u32,
}

fn not_its_digest(actual: &Digest) -> String {
    format!("content does not match its digest (got {actual})")
}

fn too_long(size: u64, got: u64) -> String {
    format!("content is longer than its size of {size} bytes (got {got} bytes or more)")
}

/// A registry client for one command: caches one HTTP client (and its tokens) per
/// registry host. Cheap to share behind `&`.
pub struct RegistryClient {
    config: RegistryConfig,
    tls_verify: Option<bool>,
    docker: DockerConfig,
    clients: Mutex<HashMap<String, oci_client::Client>>,
    auths: Mutex<HashMap<String, RegistryAuth>>,
    /// For blob GETs (see [`blobs`]).
    http: reqwest::Client,
    /// Pull tokens by (host, repository): `None` when the registry wants none.
    tokens: tokio::sync::Mutex<HashMap<(String, String), Option<String>>>,
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
        let http = blobs::http_client(tls_verify == Some(false)).map_err(|e| {
            RegistryError::HttpClient {
                message: blobs::error_chain(&e),
            }
        })?;
        Ok(RegistryClient {
            config: config.clone(),
            tls_verify,
            docker,
            clients: Mutex::new(HashMap::new()),
            auths: Mutex::new(HashMap::new()),
            http,
            tokens: tokio::sync::Mutex::new(HashMap::new()),
            backoff_base: Duration::from_millis(500),
        })
    }

    /// "http" or "https" for `host`, as [`Self::new_oci_client`] decides.
    fn scheme(&self, host: &str) -> &'static str {
        if self.config.is_insecure(host, self.tls_verify) {
            "http"
        } else {
            "https"
        }
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
            scheme: self.scheme(&host),
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
                scheme: self.scheme(mirror),
                host: mirror.clone(),
                reference,
            });
        }
        out.push(self.origin(r)?);
        Ok(out)
    }

    /// Resolve `reference` to the manifest and config for `platform`, trying mirrors
    /// first and falling back to the registry. A mirror gets one attempt (falling back
    /// is the retry); the registry itself gets the configured retries.
    pub async fn resolve(
        &self,
        reference: &ImageReference,
        platform: &Platform,
    ) -> Result<Resolved> {
        let sources = self.sources(reference)?;
        let last = sources.len() - 1;
        for (i, source) in sources.into_iter().enumerate() {
            let retries = if i < last { 0 } else { self.config.retries };
            match self
                .resolve_from(&source, reference, platform, retries)
                .await
            {
                Ok(r) => return Ok(r),
                // A mirror that fails (down, or without the image) is skipped.
                Err(_) if i < last => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("sources always end with the origin")
    }

    /// Run `attempt` until it succeeds: a transient failure is retried up to
    /// `retries` times, after the server's `Retry-After` (capped at 60 s) or else
    /// the exponential backoff; corrupt content is retried once from scratch when
    /// `restart_corrupt` (the attempt itself throws away what it had); a fatal
    /// failure ends it. `on_retry(state, attempt, reason)` is told before each new
    /// attempt. `state` (a download's partial content) is moved through every
    /// attempt and handed back: the futures stay `Send` without higher-ranked
    /// closures.
    async fn with_retries<S, T, F>(
        &self,
        retries: u32,
        restart_corrupt: bool,
        mut state: S,
        mut attempt: impl FnMut(S) -> F,
        mut on_retry: impl FnMut(&S, u32, &str),
    ) -> (S, std::result::Result<T, GaveUp>)
    where
        F: std::future::Future<Output = (S, std::result::Result<T, Failure>)>,
    {
        let mut attempts = 0u32;
        let mut retried = 0u32;
        let mut restarted = false;
        loop {
            attempts += 1;
            let (next, outcome) = attempt(state).await;
            state = next;
            let failure = match outcome {
                Ok(v) => return (state, Ok(v)),
                Err(f) => f,
            };
            let wait = match &failure {
                Failure::Transient { retry_after, .. } if retried < retries => {
                    retried += 1;
                    Some(
                        retry_after
                            .map(|d| d.min(blobs::MAX_RETRY_AFTER))
                            .unwrap_or_else(|| self.backoff(retried)),
                    )
                }
                Failure::Corrupt(_) if restart_corrupt && !restarted => {
                    restarted = true;
                    Some(Duration::ZERO)
                }
                _ => None,
            };
            let Some(wait) = wait else {
                return (state, Err(GaveUp { failure, attempts }));
            };
            on_retry(&state, attempts, &failure.reason());
            tokio::time::sleep(wait).await;
        }
    }

    /// A manifest by tag or digest, verified against `expected`, retried like blobs.
    async fn pull_manifest(
        &self,
        source: &Source,
        oref: &Reference,
        reference: &ImageReference,
        expected: Option<&Digest>,
        retries: u32,
    ) -> Result<(Bytes, Digest)> {
        let what = format!("manifest for {reference}");
        let attempt = |()| async move {
            let outcome = self
                .manifest_attempt(source, oref, reference, expected)
                .await;
            ((), outcome)
        };
        let ((), outcome) = self
            .with_retries(retries, true, (), attempt, |_, _, _| {})
            .await;
        outcome.map_err(|g| match g.failure {
            Failure::Fatal(e) => e,
            Failure::Corrupt(detail) => RegistryError::Protocol {
                registry: source.host.clone(),
                what,
                message: detail,
            }
            .into(),
            Failure::Transient { reason, .. } => RegistryError::Unavailable {
                registry: source.host.clone(),
                message: format!("{what}: {reason} (after {} attempts)", g.attempts),
            }
            .into(),
        })
    }

    async fn manifest_attempt(
        &self,
        source: &Source,
        oref: &Reference,
        reference: &ImageReference,
        expected: Option<&Digest>,
    ) -> std::result::Result<(Bytes, Digest), Failure> {
        let body = self.get_manifest(source, oref, reference).await?;
        let bytes = body.bytes;
        let digest_of = |d: &Digest| {
            let mut h = d.hasher();
            h.update(&bytes);
            h.finish()
        };
        // The registry's Docker-Content-Digest, when it sent one it is sure of, must
        // describe these bytes (as oci-client checked).
        if let Some(header) = body.digest_header.and_then(|h| h.parse::<Digest>().ok()) {
            let actual = digest_of(&header);
            if actual != header {
                return Err(Failure::Corrupt(format!(
                    "content does not match its Docker-Content-Digest {header} (got {actual})"
                )));
            }
        }
        let actual = match expected {
            Some(d) => digest_of(d),
            None => Digest::sha256_of(&bytes),
        };
        match expected {
            Some(d) if *d != actual => Err(Failure::Corrupt(format!(
                "content does not match its digest {d} (got {actual})"
            ))),
            _ => Ok((bytes, actual)),
        }
    }

    async fn resolve_from(
        &self,
        source: &Source,
        reference: &ImageReference,
        platform: &Platform,
        retries: u32,
    ) -> Result<Resolved> {
        let what = format!("manifest for {reference}");
        let (bytes, digest) = self
            .pull_manifest(
                source,
                &source.reference,
                reference,
                reference.digest(),
                retries,
            )
            .await?;
        let parsed = manifest::parse_manifest(&bytes, None, &what)?;
        let (manifest_bytes, manifest_digest, index_digest, manifest) = match parsed {
            Manifest::Image(m) => (bytes, digest, None, m),
            Manifest::Index(index) => {
                let entry = select_platform(&index.manifests, platform)?;
                if entry.size > manifest::MAX_MANIFEST_SIZE {
                    return Err(ManifestError::TooLarge {
                        what: format!("manifest {} ({platform}) of {reference}", entry.digest),
                        size: format!("the index declares {}", human_size(entry.size)),
                        limit: manifest::MAX_MANIFEST_SIZE,
                        limit_of: "manifests and indexes",
                    }
                    .into());
                }
                let child_ref = source.reference.clone_with_digest(entry.digest.to_string());
                let (child, child_digest) = self
                    .pull_manifest(source, &child_ref, reference, Some(&entry.digest), retries)
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
            .fetch_config(source, reference, &manifest.config, retries)
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

    /// The config blob: into memory, size and digest verified, retried (resuming
    /// with Range) like a layer.
    async fn fetch_config(
        &self,
        source: &Source,
        reference: &ImageReference,
        desc: &Descriptor,
        retries: u32,
    ) -> Result<Bytes> {
        // The read is bounded by the declared size; the declared size by this.
        if desc.size > manifest::MAX_CONFIG_SIZE {
            return Err(ManifestError::TooLarge {
                what: format!("config blob {} of {reference}", desc.digest),
                size: format!("the manifest declares {}", human_size(desc.size)),
                limit: manifest::MAX_CONFIG_SIZE,
                limit_of: "image configs",
            }
            .into());
        }
        let attempt = |mut buf: Vec<u8>| async move {
            let outcome = self.config_attempt(source, reference, desc, &mut buf).await;
            (buf, outcome)
        };
        let buf = Vec::with_capacity(desc.size.min(1 << 20) as usize);
        let (_, outcome) = self
            .with_retries(retries, true, buf, attempt, |_, _, _| {})
            .await;
        outcome.map_err(|g| self.gave_up(g, "config blob", &desc.digest, source))
    }

    /// One GET of the rest of the config (from what `buf` has); corrupt content
    /// leaves `buf` empty for a restart.
    async fn config_attempt(
        &self,
        source: &Source,
        reference: &ImageReference,
        desc: &Descriptor,
        buf: &mut Vec<u8>,
    ) -> std::result::Result<Bytes, Failure> {
        let mut body = self
            .open_blob(source, reference, desc, buf.len() as u64)
            .await?;
        loop {
            let chunk = match body.next().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                // Broken after the last byte: the digest decides.
                Err(_) if buf.len() as u64 == desc.size => break,
                Err(f) => return Err(f),
            };
            let got = (buf.len() + chunk.len()) as u64;
            if got > desc.size {
                buf.clear();
                return Err(Failure::Corrupt(too_long(desc.size, got)));
            }
            buf.extend_from_slice(&chunk);
        }
        if (buf.len() as u64) < desc.size {
            return Err(Failure::transient(format!(
                "connection closed after {} of {} bytes",
                buf.len(),
                desc.size
            )));
        }
        let mut h = desc.digest.hasher();
        h.update(buf);
        let actual = h.finish();
        if actual != desc.digest {
            buf.clear();
            return Err(Failure::Corrupt(not_its_digest(&actual)));
        }
        Ok(Bytes::from(std::mem::take(buf)))
    }

    /// The error for a blob (`what`: "blob", "config blob") we stopped trying.
    fn gave_up(&self, g: GaveUp, what: &'static str, blob: &Digest, source: &Source) -> ImageError {
        match g.failure {
            Failure::Fatal(e) => e,
            Failure::Corrupt(detail) => RegistryError::CorruptBlob {
                what,
                blob: blob.clone(),
                registry: source.host.clone(),
                detail,
            }
            .into(),
            Failure::Transient { reason, .. } => RegistryError::BlobFailed {
                blob: blob.clone(),
                registry: source.host.clone(),
                attempts: g.attempts,
                message: reason,
            }
            .into(),
        }
    }

    /// Download one blob into the content store, verifying size and digest while
    /// streaming. Every byte is also sent to `tee` once, in order (awaiting each send,
    /// so a slow consumer slows the download). Transient failures are retried with
    /// backoff (or after the server's `Retry-After`), resuming with a Range request;
    /// a digest mismatch is retried once from scratch when no tee is attached (bytes
    /// already handed to a consumer cannot be taken back), then fails with nothing
    /// left in the store. Mirrors get one attempt each, then the registry itself.
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
                send_file_to(&store.path(&desc.digest), &desc.digest, None, tx).await?;
            }
            return Ok(store.path(&desc.digest));
        }
        // Held until this returns: other processes wanting this blob wait for it.
        let lock = wait_for_blob_lock(store, &desc.digest, &report).await?;
        if store.contains(&desc.digest) {
            // Another process downloaded it while we waited.
            report(desc.size, BlobPhase::Done);
            if let Some(tx) = &tee {
                send_file_to(&store.path(&desc.digest), &desc.digest, None, tx).await?;
            }
            return Ok(store.path(&desc.digest));
        }
        let sources = self.sources(reference)?;
        let first = store.begin_resumable(&lock, desc.size)?;
        if first.written() > 0 {
            // A dead process's partial download: its bytes were never unpacked here.
            if let Some(tx) = &tee {
                let (path, n) = (first.temp_path(), first.written());
                send_file_to(path, &desc.digest, Some(n), tx).await?;
            }
        }
        report(first.written(), BlobPhase::Downloading);
        // `None` after a failed commit consumed it: the next attempt begins anew.
        let mut ingest = Some(first);
        let report = &report;
        let tee = tee.as_ref();
        for (i, source) in sources.iter().enumerate() {
            let last = i + 1 == sources.len();
            let retries = if last { self.config.retries } else { 0 };
            let attempt = |mut ingest: Option<Ingest>| async move {
                let outcome = self
                    .layer_attempt(source, reference, desc, store, &mut ingest, report, tee)
                    .await;
                (ingest, outcome)
            };
            let on_retry = |ingest: &Option<Ingest>, attempt: u32, reason: &str| {
                report(
                    ingest.as_ref().map_or(0, Ingest::written),
                    BlobPhase::Retrying {
                        attempt,
                        reason: reason.to_string(),
                    },
                )
            };
            let (state, outcome) = self
                .with_retries(retries, tee.is_none(), ingest, attempt, on_retry)
                .await;
            ingest = state;
            let gave_up = match outcome {
                Ok(path) => return Ok(path),
                Err(g) => g,
            };
            // Corrupt content is final: bytes already teed cannot be taken back, and
            // without a tee it has already been fetched twice.
            if last || matches!(gave_up.failure, Failure::Corrupt(_)) {
                return Err(self.gave_up(gave_up, "blob", &desc.digest, source));
            }
            report(
                ingest.as_ref().map_or(0, Ingest::written),
                BlobPhase::Retrying {
                    attempt: gave_up.attempts,
                    reason: format!("{}: {}", source.host, gave_up.failure.reason()),
                },
            );
        }
        unreachable!("sources always end with the origin")
    }

    /// One attempt at a layer: download the rest of it, then commit it to the store.
    #[allow(clippy::too_many_arguments)]
    async fn layer_attempt(
        &self,
        source: &Source,
        reference: &ImageReference,
        desc: &Descriptor,
        store: &ContentStore,
        ingest: &mut Option<Ingest>,
        report: &(dyn Fn(u64, BlobPhase) + Send + Sync),
        tee: Option<&tokio::sync::mpsc::Sender<Bytes>>,
    ) -> std::result::Result<PathBuf, Failure> {
        let current = match ingest {
            Some(current) => current,
            None => ingest.insert(
                store
                    .begin(&desc.digest, Some(desc.size))
                    .map_err(Failure::Fatal)?,
            ),
        };
        // All bytes may be here already (a partial adopted whole, or a server whose
        // Content-Length overstated the body): the digest decides, not another GET.
        if current.written() < desc.size {
            self.download_once(source, reference, desc, current, report, tee)
                .await?;
        }
        let written = current.written();
        match ingest.take().expect("ingest present").commit() {
            Ok(path) => {
                report(written, BlobPhase::Done);
                Ok(path)
            }
            Err(ImageError::Content(ContentError::DigestMismatch { actual, .. })) => {
                Err(Failure::Corrupt(not_its_digest(&actual)))
            }
            Err(ImageError::Content(e @ ContentError::SizeMismatch { .. })) => {
                Err(Failure::Corrupt(e.to_string()))
            }
            Err(e) => Err(Failure::Fatal(e)),
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        (self.backoff_base * factor).min(MAX_BACKOFF)
    }

    /// One GET of the rest of the blob (from what `ingest` has), streamed into
    /// `ingest` and `tee`. Corrupt content leaves `ingest` empty for a restart.
    async fn download_once(
        &self,
        source: &Source,
        reference: &ImageReference,
        desc: &Descriptor,
        ingest: &mut Ingest,
        report: &(dyn Fn(u64, BlobPhase) + Send + Sync),
        tee: Option<&tokio::sync::mpsc::Sender<Bytes>>,
    ) -> std::result::Result<(), Failure> {
        let mut body = self
            .open_blob(source, reference, desc, ingest.written())
            .await?;
        loop {
            let chunk = match body.next().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                // The connection broke after the last byte (a Content-Length larger
                // than the blob): what we have is checked by its digest.
                Err(_) if ingest.written() == desc.size => break,
                Err(f) => return Err(f),
            };
            match ingest.write(&chunk) {
                Ok(()) => {}
                Err(ImageError::Content(ContentError::SizeMismatch { actual, .. })) => {
                    ingest.reset().map_err(Failure::Fatal)?;
                    return Err(Failure::Corrupt(too_long(desc.size, actual)));
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
            return Err(Failure::transient(format!(
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
    if let OciDistributionError::RequestError(r) = &e {
        if r.status().is_none() {
            return Failure::transient(blobs::error_chain(r));
        }
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
        Failure::transient(e.to_string())
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

/// Wait (polling: the holder is another process, or another layer of this pull) for
/// the ingest lock of `digest`; reports `Waiting` while someone else holds it.
async fn wait_for_blob_lock(
    store: &ContentStore,
    digest: &Digest,
    report: &(dyn Fn(u64, BlobPhase) + Send + Sync),
) -> Result<crate::content::BlobLock> {
    let mut pause = Duration::from_millis(20);
    let mut told = false;
    loop {
        if let Some(lock) = store.try_lock(digest)? {
            return Ok(lock);
        }
        if !told {
            report(0, BlobPhase::Waiting);
            told = true;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Replay a stored blob (its first `limit` bytes, or all) to a tee consumer.
async fn send_file_to(
    path: &Path,
    blob: &Digest,
    limit: Option<u64>,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) -> Result<()> {
    let io = |source| RegistryError::BlobIo {
        blob: blob.clone(),
        path: path.to_path_buf(),
        source,
    };
    let mut file = tokio::fs::File::open(path).await.map_err(io)?;
    let mut left = limit.unwrap_or(u64::MAX);
    while left > 0 {
        let mut buf = vec![0u8; (256 << 10).min(left) as usize];
        let n = file.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            return Ok(());
        }
        left -= n as u64;
        buf.truncate(n);
        tx.send(Bytes::from(buf))
            .await
            .map_err(|_| RegistryError::TeeClosed { blob: blob.clone() })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
