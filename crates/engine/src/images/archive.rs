//! `save` and `load`: between the store and image archives. Loading verifies every
//! blob (the archive reader checks digests and diff IDs), stores the blobs, unpacks
//! missing layers, and records the image only once all of it is in place.

use crate::images::lookup::familiar_key;
use crate::store::LockMode;
use crate::{Engine, EngineError, Images};
use coracle_core::{chain_id, Digest, ImageReference};
use coracle_image::{
    ArchiveImage, ArchiveLayer, Compression, ImageConfig, LoadedImage, LoadedLayer,
};
use coracle_rootfs::{UnpackOptions, WhiteoutMode};
use coracle_state::{ImageLayer, NewImage};
use serde_json::json;
use std::io::Write;
use std::path::Path;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

impl Images<'_> {
    /// Write the named images as one docker-archive. Names keep their tag in the
    /// archive; an image given by id is saved without tags, as docker does.
    pub fn save_images(&self, inputs: &[String], out: &mut dyn Write) -> Result<(), EngineError> {
        let mut images: Vec<ArchiveImage> = Vec::new();
        for input in inputs {
            let record = self.find_image(input)?;
            let tag = ImageReference::parse(input)
                .ok()
                .and_then(|r| r.tagged_name())
                .filter(|t| record.tags.contains(t))
                .map(|t| familiar_key(&t));
            if let Some(existing) = images.iter_mut().find(|i| i.config_digest == record.id) {
                existing.repo_tags.extend(tag);
                continue;
            }
            images.push(ArchiveImage {
                config_digest: record.id.clone(),
                config_bytes: record.config.clone(),
                repo_tags: tag.into_iter().collect(),
                layers: record
                    .layers
                    .iter()
                    .map(|l| ArchiveLayer {
                        diff_id: l.diff_id.clone(),
                        blob_path: self.content.path(&l.blob_digest),
                    })
                    .collect(),
            });
        }
        coracle_image::write_docker_archive(out, &images)?;
        Ok(())
    }

    /// Load every image of an archive (docker-archive, oci-archive, OCI layout
    /// directory). Returns docker's lines: `Loaded image: NAME` or `Loaded image ID: ID`.
    pub fn load_images(&mut self, path: &Path) -> Result<Vec<String>, EngineError> {
        let _lock = self.paths.lock(LockMode::Shared)?;
        let limits = &self.registry_config.get()?.limits;
        let archive = coracle_image::read_archive_with(path, &self.paths.tmp(), limits)?;
        let mut lines = Vec::new();
        for image in &archive.images {
            let id = self.import(image)?;
            if image.repo_tags.is_empty() {
                lines.push(format!("Loaded image ID: {id}"));
            }
            for tag in &image.repo_tags {
                let reference = ImageReference::parse(tag)?;
                let Some(name) = reference.tagged_name() else {
                    continue;
                };
                self.db.set_tag(&name, &id)?;
                lines.push(format!("Loaded image: {}", familiar_key(&name)));
            }
        }
        Ok(lines)
    }
}

impl Engine {
    fn import(&mut self, image: &LoadedImage) -> Result<Digest, EngineError> {
        let config = ImageConfig::parse(&image.config_bytes)?;
        if config.diff_ids.len() != image.layers.len() {
            return Err(EngineError::InvalidArgument(format!(
                "image {}: the archive has {} layers but the config lists {} diff IDs",
                image.config_digest,
                image.layers.len(),
                config.diff_ids.len()
            )));
        }
        let chains = chain_id(&config.diff_ids);
        let mut layers = Vec::with_capacity(image.layers.len());
        for (layer, chain) in image.layers.iter().zip(&chains) {
            let size = self.import_layer(layer, chain)?;
            layers.push(ImageLayer {
                chain_id: chain.clone(),
                diff_id: layer.diff_id.clone(),
                blob_digest: layer.blob_digest.clone(),
                blob_size: layer.size,
                media_type: layer.media_type.clone(),
                size,
            });
        }
        let (manifest_type, manifest) = match &image.manifest {
            Some((t, bytes)) => (t.clone(), bytes.clone()),
            None => (OCI_MANIFEST.to_string(), oci_manifest(image)),
        };
        let manifest_digest = self.content.put_bytes(&manifest)?;
        self.content
            .write_bytes(&image.config_digest, &image.config_bytes)?;
        crate::images::pull::sync_store(&self.paths.root)?;
        self.db.put_image(&NewImage {
            id: image.config_digest.clone(),
            manifest_digest,
            manifest,
            manifest_type,
            config: image.config_bytes.clone(),
            created: config.created.clone(),
            os: config.os.clone(),
            architecture: config.architecture.clone(),
            variant: config.variant.clone(),
            layers,
        })?;
        Ok(image.config_digest.clone())
    }

    /// Store the layer's blob and unpack it unless already there; returns the
    /// unpacked size.
    fn import_layer(&mut self, layer: &LoadedLayer, chain: &Digest) -> Result<u64, EngineError> {
        let stored_here = !self.content.contains(&layer.blob_digest);
        if stored_here {
            let mut ingest = self.content.begin(&layer.blob_digest, Some(layer.size))?;
            let mut file = layer.open()?;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = std::io::Read::read(&mut file, &mut buf)
                    .map_err(EngineError::io("read", &layer.path))?;
                if n == 0 {
                    break;
                }
                ingest.write(&buf[..n])?;
            }
            ingest.commit()?;
        }
        if self.layers.contains(chain) {
            return Ok(match self.db.layer_size(chain)? {
                Some(s) => s,
                None => crate::images::unpack::tree_size(&self.layers.path(chain))?,
            });
        }
        let writer = self.layers.begin(chain)?;
        let blob = self.content.open_blob(&layer.blob_digest)?;
        let opts = UnpackOptions {
            rootless: !rustix::process::geteuid().is_root(),
            limits: crate::images::pull::unpack_limits(&self.registry_config.get()?.limits),
            compressed_size: Some(layer.size),
            ..UnpackOptions::new(WhiteoutMode::Overlay, layer.blob_digest.to_string())
        };
        let tar = coracle_rootfs::decompress(blob)
            .map_err(EngineError::io("decompress layer", &layer.path))?;
        let stats = match coracle_rootfs::unpack_layer(tar, writer.dir(), &opts) {
            Ok(stats) => stats,
            Err(e) => {
                // A blob whose content is refused is not kept (the layer's temp dir
                // goes with `writer`).
                if stored_here {
                    let _ = self.content.remove(&layer.blob_digest);
                }
                return Err(e.into());
            }
        };
        if stats.diff_id != layer.diff_id {
            return Err(EngineError::InvalidArgument(format!(
                "layer {}: its content has digest {} but the image config says {}; the archive is corrupt",
                layer.blob_digest, stats.diff_id, layer.diff_id
            )));
        }
        writer.commit()?;
        Ok(stats.size)
    }
}

/// A manifest for an archive that carried none (docker-archive): OCI types, the
/// layers as stored.
fn oci_manifest(image: &LoadedImage) -> Vec<u8> {
    let layers: Vec<_> = image
        .layers
        .iter()
        .map(|l| {
            let media_type = Compression::from_media_type(&l.media_type)
                .unwrap_or(Compression::None)
                .oci_media_type();
            json!({"mediaType": media_type, "digest": l.blob_digest.to_string(), "size": l.size})
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": image.config_digest.to_string(), "size": image.config_bytes.len()},
        "layers": layers,
    });
    serde_json::to_vec(&manifest).expect("JSON values serialise")
}
