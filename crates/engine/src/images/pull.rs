//! The pull pipeline: resolve the manifest for this platform, then fetch every missing
//! layer in parallel (bounded) while unpacking it in the same pass (the compressed
//! bytes are teed into a decompress+untar thread), verify both the blob digest and the
//! uncompressed diff ID, commit each layer directory by rename, and only then record
//! the image. An interrupted pull leaves temp files that the next start collects.

use crate::store::LockMode;
use crate::{EngineError, Images};
use bytes::Bytes;
use coracle_core::{chain_id, Digest, ImageReference, Platform};
use coracle_image::{
    BlobPhase, BlobProgress, ContentStore, Descriptor, ImageConfig, ImageError, RegistryClient,
    RegistryError, Resolved,
};
use coracle_rootfs::{LayerStore, UnpackLimits, UnpackOptions, WhiteoutMode};
use coracle_state::{ImageLayer, NewImage};
use std::io::Read;
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Default: this host's platform.
    pub platform: Option<Platform>,
    /// `Some(false)` allows plain HTTP and unverified TLS for this pull.
    pub tls_verify: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullStatus {
    /// New content was fetched, or the tag now points at another image.
    Downloaded,
    UpToDate,
}

#[derive(Debug, Clone)]
pub struct PullOutcome {
    pub reference: ImageReference,
    pub id: Digest,
    /// The digest docker prints: of the manifest list when there was one.
    pub digest: Digest,
    pub status: PullStatus,
}

#[derive(Debug, Clone)]
pub enum LayerEvent {
    Waiting,
    AlreadyExists,
    Downloading { done: u64, total: u64 },
    Retrying { attempt: u32, reason: String },
    Extracting,
    Complete,
}

/// Where pull reports what it does; the CLI renders it like docker.
pub trait PullProgress: Send + Sync {
    fn resolved(&self, reference: &ImageReference, layers: &[Digest]);
    fn layer(&self, blob: &Digest, event: LayerEvent);
}

/// Compressed bytes in flight between the download and the unpack thread; small,
/// so a slow disk slows the download instead of filling memory.
const TEE_CHUNKS: usize = 64;

impl Images<'_> {
    pub fn pull(
        &mut self,
        input: &str,
        opts: &PullOptions,
        progress: &dyn PullProgress,
    ) -> Result<PullOutcome, EngineError> {
        let reference = ImageReference::parse(input)?;
        let platform = opts.platform.clone().unwrap_or_else(Platform::host);
        let _lock = self.paths.lock(LockMode::Shared)?;
        let (runtime, client) = self.registry_client(opts.tls_verify)?;
        tracing::debug!(%reference, "resolving the manifest");
        let resolved = runtime.block_on(client.resolve(&reference, &platform))?;
        tracing::debug!(
            %reference,
            manifest = %resolved.manifest_digest,
            layers = resolved.manifest.layers.len(),
            "resolved"
        );
        let config = ImageConfig::parse(&resolved.config_bytes)?;
        let layers = &resolved.manifest.layers;
        if config.diff_ids.len() != layers.len() {
            return Err(EngineError::InvalidArgument(format!(
                "image {reference}: the manifest lists {} layers but the config has {} diff IDs",
                layers.len(),
                config.diff_ids.len()
            )));
        }
        let id = resolved.manifest.config.digest.clone();
        let chains = chain_id(&config.diff_ids);
        progress.resolved(
            &reference,
            &layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>(),
        );

        let have_image =
            self.db.image(&id)?.is_some() && chains.iter().all(|c| self.layers.contains(c));
        if have_image {
            for l in layers {
                progress.layer(&l.digest, LayerEvent::AlreadyExists);
            }
        } else {
            let fetch = Fetch {
                runtime: &runtime,
                client,
                reference: &reference,
                resolved: &resolved,
                config: &config,
                chains: &chains,
            };
            self.fetch_image(fetch, progress)?;
        }
        let (digest, status) = self.record_pulled(&reference, &id, &resolved, have_image)?;
        Ok(PullOutcome {
            reference,
            id,
            digest,
            status,
        })
    }

    /// Fetches and unpacks the missing layers, stores the manifest and config, and
    /// records the image.
    fn fetch_image(
        &mut self,
        fetch: Fetch<'_>,
        progress: &dyn PullProgress,
    ) -> Result<(), EngineError> {
        let Fetch {
            runtime,
            client,
            reference,
            resolved,
            config,
            chains,
        } = fetch;
        let id = &resolved.manifest.config.digest;
        let jobs: Vec<LayerJob> = resolved
            .manifest
            .layers
            .iter()
            .zip(&config.diff_ids)
            .zip(chains)
            .map(|((desc, diff_id), chain)| LayerJob {
                desc: desc.clone(),
                diff_id: diff_id.clone(),
                chain_id: chain.clone(),
                known_size: self.db.layer_size(chain).ok().flatten(),
            })
            .collect();
        let ctx = Arc::new(FetchContext {
            client,
            reference: reference.clone(),
            content: self.content.clone(),
            layers: self.layers.clone(),
            limits: unpack_limits(&self.registry_config.get()?.limits),
        });
        let limit = self.registry_config.get()?.max_concurrent_downloads.max(1);
        let root = self.paths.root.clone();
        let no_space = |e: EngineError| e.or_no_space(format!("pull {reference}"), &root);
        let image_layers = runtime
            .block_on(fetch_layers(ctx, jobs, limit, progress))
            .map_err(no_space)?;
        self.content
            .write_bytes(&resolved.manifest_digest, &resolved.manifest_bytes)
            .map_err(|e| no_space(e.into()))?;
        self.content
            .write_bytes(id, &resolved.config_bytes)
            .map_err(|e| no_space(e.into()))?;
        sync_store(&self.paths.root)?;
        self.db.put_image(&NewImage {
            id: id.clone(),
            manifest_digest: resolved.manifest_digest.clone(),
            manifest: resolved.manifest_bytes.to_vec(),
            manifest_type: resolved.manifest.media_type.clone(),
            config: resolved.config_bytes.to_vec(),
            created: config.created.clone(),
            os: config.os.clone(),
            architecture: config.architecture.clone(),
            variant: config.variant.clone(),
            layers: image_layers,
        })?;
        Ok(())
    }

    /// Records the pulled image's repo digest and tag; returns the digest docker
    /// prints and whether anything changed.
    fn record_pulled(
        &mut self,
        reference: &ImageReference,
        id: &Digest,
        resolved: &Resolved,
        have_image: bool,
    ) -> Result<(Digest, PullStatus), EngineError> {
        let digest = resolved
            .index_digest
            .clone()
            .unwrap_or_else(|| resolved.manifest_digest.clone());
        self.db
            .add_repo_digest(&format!("{}@{}", reference.name(), digest), id)?;
        let mut status = if have_image {
            PullStatus::UpToDate
        } else {
            PullStatus::Downloaded
        };
        if let Some(name) = reference.tagged_name() {
            let before = self.db.image_by_tag(&name)?;
            self.db.set_tag(&name, id)?;
            if before.as_ref() != Some(id) {
                status = PullStatus::Downloaded;
            }
        }
        Ok((digest, status))
    }
}

/// What a pull resolved, for fetching what is missing.
struct Fetch<'a> {
    runtime: &'a tokio::runtime::Runtime,
    client: RegistryClient,
    reference: &'a ImageReference,
    resolved: &'a Resolved,
    config: &'a ImageConfig,
    chains: &'a [Digest],
}

struct LayerJob {
    desc: Descriptor,
    diff_id: Digest,
    chain_id: Digest,
    known_size: Option<u64>,
}

struct FetchContext {
    client: RegistryClient,
    reference: ImageReference,
    content: ContentStore,
    layers: LayerStore,
    limits: UnpackLimits,
}

/// The `[limits]` of the registry config as the unpacker takes them.
pub(crate) fn unpack_limits(l: &coracle_image::LayerLimits) -> UnpackLimits {
    UnpackLimits {
        max_size: l.max_layer_size,
        max_ratio: l.max_layer_ratio,
        ratio_grace: l.layer_ratio_grace,
    }
}

/// The job's layer when the store already has it unpacked (reported as such).
fn unpacked_layer(
    ctx: &FetchContext,
    job: &LayerJob,
    progress: &dyn PullProgress,
) -> Result<Option<ImageLayer>, EngineError> {
    if !ctx.layers.contains(&job.chain_id) {
        return Ok(None);
    }
    progress.layer(&job.desc.digest, LayerEvent::AlreadyExists);
    let size = match job.known_size {
        Some(s) => s,
        None => crate::images::unpack::tree_size(&ctx.layers.path(&job.chain_id))?,
    };
    Ok(Some(image_layer(job, size)))
}

async fn fetch_layers(
    ctx: Arc<FetchContext>,
    jobs: Vec<LayerJob>,
    limit: usize,
    progress: &dyn PullProgress,
) -> Result<Vec<ImageLayer>, EngineError> {
    let semaphore = Arc::new(Semaphore::new(limit));
    let futures = jobs.into_iter().map(|job| {
        let ctx = ctx.clone();
        let semaphore = semaphore.clone();
        async move {
            if let Some(layer) = unpacked_layer(&ctx, &job, progress)? {
                return Ok(layer);
            }
            progress.layer(&job.desc.digest, LayerEvent::Waiting);
            // Locks in one order only: layer, then (inside the fetch) its blob; a blob's
            // holder waits for no lock, so concurrent pulls cannot deadlock.
            let _layer_lock = wait_for_layer_lock(&ctx.layers, &job.chain_id).await?;
            // Another process may have unpacked it while we waited.
            if let Some(layer) = unpacked_layer(&ctx, &job, progress)? {
                return Ok(layer);
            }
            let _permit = semaphore
                .acquire()
                .await
                .expect("semaphore is never closed");
            let size = fetch_layer(&ctx, &job, progress).await?;
            progress.layer(&job.desc.digest, LayerEvent::Complete);
            Ok::<_, EngineError>(image_layer(&job, size))
        }
    });
    // Polled together on this task: progress borrows stay valid and the downloads
    // still overlap (each awaits network I/O and its unpack thread).
    futures_util::future::try_join_all(futures).await
}

/// Polls for the lock of layer `chain_id` (its holder may be another process).
async fn wait_for_layer_lock(
    layers: &LayerStore,
    chain_id: &Digest,
) -> Result<coracle_rootfs::LayerLock, EngineError> {
    let mut pause = std::time::Duration::from_millis(20);
    loop {
        if let Some(lock) = layers.try_lock(chain_id)? {
            return Ok(lock);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(250));
    }
}

fn image_layer(job: &LayerJob, size: u64) -> ImageLayer {
    ImageLayer {
        chain_id: job.chain_id.clone(),
        diff_id: job.diff_id.clone(),
        blob_digest: job.desc.digest.clone(),
        blob_size: job.desc.size,
        media_type: job.desc.media_type.clone(),
        size,
    }
}

/// Download (unless the blob is stored already) and unpack one layer; returns the
/// unpacked size.
async fn fetch_layer(
    ctx: &FetchContext,
    job: &LayerJob,
    progress: &dyn PullProgress,
) -> Result<u64, EngineError> {
    let writer = ctx.layers.begin(&job.chain_id)?;
    let dest = writer.dir().to_path_buf();
    let opts = UnpackOptions {
        rootless: !rustix::process::geteuid().is_root(),
        limits: ctx.limits,
        compressed_size: Some(job.desc.size),
        ..UnpackOptions::new(WhiteoutMode::Overlay, job.desc.digest.to_string())
    };
    let stored = ctx.content.contains(&job.desc.digest);
    tracing::debug!(
        layer = %job.desc.digest,
        size = job.desc.size,
        download = !stored,
        "unpacking layer"
    );
    let stats = if stored {
        let file = ctx.content.open_blob(&job.desc.digest)?;
        let unpack_opts = opts.clone();
        progress.layer(&job.desc.digest, LayerEvent::Extracting);
        tokio::task::spawn_blocking(move || unpack(Box::new(file), &dest, &unpack_opts))
            .await
            .expect("unpack thread panicked")?
    } else {
        let (tx, rx) = mpsc::channel::<Bytes>(TEE_CHUNKS);
        let unpack_opts = opts.clone();
        let unpacker = tokio::task::spawn_blocking(move || {
            let reader = ChannelReader {
                rx,
                current: Bytes::new(),
            };
            unpack(Box::new(reader), &dest, &unpack_opts)
        });
        let report = |p: BlobProgress| report_blob(progress, &job.desc.digest, p);
        let fetched = ctx
            .client
            .fetch_blob(&ctx.reference, &job.desc, &ctx.content, &report, Some(tx))
            .await;
        progress.layer(&job.desc.digest, LayerEvent::Extracting);
        let unpacked = unpacker.await.expect("unpack thread panicked");
        match (fetched, unpacked) {
            (Ok(_), Ok(stats)) => stats,
            // The unpacker refused the content and stopped reading: its error is
            // the reason, the download only saw its reader go away.
            (Err(ImageError::Registry(RegistryError::TeeClosed { .. })), Err(e)) => return Err(e),
            (Ok(_), Err(e)) => {
                // A verified blob whose content is refused is not kept either.
                let _ = ctx.content.remove(&job.desc.digest);
                return Err(e);
            }
            // Otherwise the download's error explains an unpack failure (truncated
            // stream), not the other way round.
            (Err(e), _) => return Err(e.into()),
        }
    };
    if stats.diff_id != job.diff_id {
        return Err(EngineError::InvalidArgument(format!(
            "layer {}: its uncompressed content has digest {} but the image config says {}; the image is corrupt or was tampered with",
            job.desc.digest, stats.diff_id, job.diff_id
        )));
    }
    writer.commit()?;
    Ok(stats.size)
}

fn unpack(
    reader: Box<dyn Read + Send>,
    dest: &std::path::Path,
    opts: &UnpackOptions,
) -> Result<coracle_rootfs::UnpackStats, EngineError> {
    let tar =
        coracle_rootfs::decompress(reader).map_err(EngineError::io("decompress layer", dest))?;
    Ok(coracle_rootfs::unpack_layer(tar, dest, opts)?)
}

fn report_blob(progress: &dyn PullProgress, digest: &Digest, p: BlobProgress) {
    let event = match p.phase {
        BlobPhase::Waiting => LayerEvent::Waiting,
        BlobPhase::AlreadyExists => LayerEvent::AlreadyExists,
        BlobPhase::Downloading | BlobPhase::Done => LayerEvent::Downloading {
            done: p.downloaded,
            total: p.total,
        },
        BlobPhase::Retrying { attempt, reason } => LayerEvent::Retrying { attempt, reason },
    };
    progress.layer(digest, event);
}

/// A blocking `Read` over the chunks the download task sends.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// One `syncfs` for the whole store before the image is recorded: the records must
/// never point at files a power cut could leave empty, and one flush is far cheaper
/// than an fsync per extracted file.
pub(crate) fn sync_store(root: &std::path::Path) -> Result<(), EngineError> {
    let dir = std::fs::File::open(root).map_err(EngineError::io("open store", root))?;
    rustix::fs::syncfs(&dir).map_err(|e| EngineError::io("syncfs store", root)(e.into()))
}
