//! Images rebuilt from the content store: every image manifest among the blobs whose
//! config blob is there and whose layers are all unpacked is recorded again. Tags and
//! repo digests are kept only in the database: they come back only from what could be
//! read of the damaged one.

use super::{Lost, RecoveredImage, RepairReport};
use crate::{Engine, EngineError};
use coracle_core::digest::chain_id;
use coracle_core::Digest;
use coracle_image::manifest::{MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE};
use coracle_image::{parse_manifest, ImageConfig, ImageManifest, Manifest};
use coracle_state::{ImageLayer, NewImage, Salvaged};
use std::collections::BTreeMap;

impl Engine {
    /// Records every complete image found among the blobs; returns each image's layer
    /// chain (bottom first) by image id, from which containers find their image.
    pub(super) fn rebuild_images(
        &mut self,
        salvaged: &Salvaged,
        report: &mut RepairReport,
    ) -> Result<BTreeMap<Digest, Vec<Digest>>, EngineError> {
        let mut chains = BTreeMap::new();
        for digest in self.content.list()? {
            let Some((bytes, manifest)) = self.image_manifest(&digest) else {
                continue;
            };
            let id = manifest.config.digest.clone();
            if chains.contains_key(&id) {
                continue; // another manifest of an image already recorded
            }
            match self.record_image(&digest, bytes, manifest) {
                Ok(chain) => {
                    chains.insert(id.clone(), chain);
                }
                Err(why) => report.lost.push(Lost {
                    what: format!("image {} (manifest {digest})", short_id(&id)),
                    why,
                }),
            }
        }
        for (name, id) in &salvaged.tags {
            if chains.contains_key(id) {
                self.db.set_tag(name, id)?;
            }
        }
        for (name, id) in &salvaged.repo_digests {
            if chains.contains_key(id) {
                self.db.add_repo_digest(name, id)?;
            }
        }
        for id in chains.keys() {
            let tags = self.db.image(id)?.map(|i| i.tags).unwrap_or_default();
            report.images.push(RecoveredImage {
                id: id.clone(),
                tags,
            });
        }
        Ok(chains)
    }

    /// The blob as an image manifest, if it is one (layers and configs are skipped
    /// by size and first byte before anything is parsed).
    fn image_manifest(&self, digest: &Digest) -> Option<(Vec<u8>, ImageManifest)> {
        if self.content.size(digest).ok()? > MAX_MANIFEST_SIZE {
            return None;
        }
        let bytes = self.content.read_bytes(digest).ok()?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return None;
        }
        match parse_manifest(&bytes, None, &digest.to_string()) {
            Ok(Manifest::Image(m)) => Some((bytes, m)),
            _ => None,
        }
    }

    /// Records the image of `manifest` if its config and every layer are in the
    /// store; returns its chain IDs, or why it cannot be recorded.
    fn record_image(
        &mut self,
        digest: &Digest,
        bytes: Vec<u8>,
        manifest: ImageManifest,
    ) -> Result<Vec<Digest>, String> {
        let id = &manifest.config.digest;
        let config_bytes = match self.content.size(id) {
            Ok(size) if size <= MAX_CONFIG_SIZE => self
                .content
                .read_bytes(id)
                .map_err(|e| format!("its config: {e}"))?,
            Ok(size) => return Err(format!("its config is too large ({size} bytes)")),
            Err(_) => return Err(format!("its config blob {id} is not in the store")),
        };
        let config = ImageConfig::parse(&config_bytes).map_err(|e| format!("its config: {e}"))?;
        if config.diff_ids.len() != manifest.layers.len() {
            return Err(format!(
                "the manifest lists {} layers but the config has {} diff IDs",
                manifest.layers.len(),
                config.diff_ids.len()
            ));
        }
        let chains = chain_id(&config.diff_ids);
        let mut layers = Vec::with_capacity(chains.len());
        for ((desc, diff_id), chain) in manifest.layers.iter().zip(&config.diff_ids).zip(&chains) {
            if !self.layers.contains(chain) {
                return Err(format!(
                    "its layer {} is not unpacked in the store",
                    desc.digest
                ));
            }
            let size = crate::images::unpack::tree_size(&self.layers.path(chain))
                .map_err(|e| e.to_string())?;
            layers.push(ImageLayer {
                chain_id: chain.clone(),
                diff_id: diff_id.clone(),
                blob_digest: desc.digest.clone(),
                blob_size: desc.size,
                media_type: desc.media_type.clone(),
                size,
            });
        }
        self.db
            .put_image(&NewImage {
                id: id.clone(),
                manifest_digest: digest.clone(),
                manifest: bytes,
                manifest_type: manifest.media_type.clone(),
                config: config_bytes,
                created: config.created.clone(),
                os: config.os.clone(),
                architecture: config.architecture.clone(),
                variant: config.variant.clone(),
                layers,
            })
            .map_err(|e| e.to_string())?;
        Ok(chains)
    }
}

/// docker's short image id: 12 hex digits.
pub(super) fn short_id(id: &Digest) -> String {
    id.hex()[..12.min(id.hex().len())].to_string()
}
