//! `system df`: what images, containers and volumes take on disk, as dockerd's
//! `/system/df` counts it (shared layers once, containers' writable layers, volumes'
//! data), so the CLI can print docker's summary and verbose tables.

use crate::containers::ps::{ContainerSummary, ListOptions};
use crate::{EngineError, ImageSummary, System};
use coracle_core::Digest;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct ImageUsage {
    pub summary: ImageSummary,
    /// Bytes of layers this image shares with another image.
    pub shared_size: u64,
    /// Containers (any state) created from it.
    pub containers: usize,
}

#[derive(Debug, Clone)]
pub struct VolumeUsage {
    pub name: String,
    /// Containers (any state) that mount it.
    pub links: usize,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct DiskUsage {
    /// Sum of every layer once, however many images share it (docker's LayersSize).
    pub layers_size: u64,
    pub images: Vec<ImageUsage>,
    /// With `size_rw` filled in.
    pub containers: Vec<ContainerSummary>,
    pub volumes: Vec<VolumeUsage>,
}

impl System<'_> {
    pub fn disk_usage(&mut self) -> Result<DiskUsage, EngineError> {
        let records = self.db.images()?;
        // How many images use each layer, and its size.
        let mut layer_users: BTreeMap<&Digest, (usize, u64)> = BTreeMap::new();
        for r in &records {
            for l in &r.layers {
                layer_users.entry(&l.chain_id).or_insert((0, l.size)).0 += 1;
            }
        }
        let layers_size = layer_users.values().map(|(_, s)| s).sum();
        let mut images = Vec::with_capacity(records.len());
        for r in &records {
            let shared_size = r
                .layers
                .iter()
                .filter(|l| layer_users.get(&l.chain_id).is_some_and(|(n, _)| *n > 1))
                .map(|l| l.size)
                .sum();
            images.push(ImageUsage {
                summary: ImageSummary::from(r),
                shared_size,
                containers: self.db.containers_using(&r.id)?.len(),
            });
        }
        let containers = self.containers().list_containers(&ListOptions {
            all: true,
            size: true,
            ..Default::default()
        })?;
        let store = self.volume_store()?;
        let mut volumes = Vec::new();
        for v in store.list()? {
            volumes.push(VolumeUsage {
                links: self.volume_users(&v.name)?.len(),
                size: crate::images::unpack::tree_size(&store.path(&v.name)).unwrap_or(0),
                name: v.name,
            });
        }
        Ok(DiskUsage {
            layers_size,
            images,
            containers,
            volumes,
        })
    }
}
