//! Images: pull, push, save and load, search, inspect and unpack (the modules below).
//! Here: local image management: list, tag, remove, prune.

pub(crate) mod archive;
pub(crate) mod auth;
pub(crate) mod image_filters;
pub(crate) mod inspect;
pub(crate) mod lookup;
pub(crate) mod pull;
pub(crate) mod push;
pub(crate) mod search;
pub(crate) mod unpack;

use crate::images::lookup::{familiar, familiar_key};
use crate::store::LockMode;
use crate::{Engine, EngineError, Images};
use coracle_core::{Digest, ImageReference};
use coracle_state::ImageRecord;
use std::collections::BTreeSet;

/// One image as `images` lists it; the CLI makes a row per tag.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageSummary {
    pub id: Digest,
    /// Familiar `repo:tag` names.
    pub repo_tags: Vec<String>,
    /// Familiar `repo@digest` names.
    pub repo_digests: Vec<String>,
    pub created: Option<String>,
    pub size: u64,
}

impl From<&ImageRecord> for ImageSummary {
    fn from(r: &ImageRecord) -> Self {
        ImageSummary {
            id: r.id.clone(),
            repo_tags: r.tags.iter().map(|t| familiar_key(t)).collect(),
            repo_digests: r.repo_digests.iter().map(|t| familiar_key(t)).collect(),
            created: r.created.clone(),
            size: r.size(),
        }
    }
}

/// What `rmi` did, in docker's order and words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveEvent {
    Untagged(String),
    Deleted(Digest),
}

#[derive(Debug, Default)]
pub struct PruneReport {
    pub events: Vec<RemoveEvent>,
    pub reclaimed: u64,
}

impl Engine {
    pub(crate) fn image_summaries(&self) -> Result<Vec<ImageSummary>, EngineError> {
        Ok(self.db.images()?.iter().map(ImageSummary::from).collect())
    }
}

impl Images<'_> {
    /// `tag SOURCE TARGET`: TARGET gets `latest` when it names no tag.
    pub fn tag(&mut self, source: &str, target: &str) -> Result<(), EngineError> {
        let id = self.find_image_id(source)?;
        let target_ref = ImageReference::parse(target)?;
        if target_ref.digest().is_some() {
            return Err(EngineError::InvalidArgument(format!(
                "refusing to create a tag with a digest reference: {target}"
            )));
        }
        let name = target_ref
            .tagged_name()
            .expect("parse adds a tag when there is no digest");
        self.db.set_tag(&name, &id)?;
        Ok(())
    }

    /// `rmi [-f] IMAGE`, with docker's untag-versus-delete rules: a name removes that
    /// tag and deletes the image only when it was the last one; an id deletes the
    /// image, and needs `force` when it is tagged in several repositories.
    pub fn remove_image(
        &mut self,
        input: &str,
        force: bool,
    ) -> Result<Vec<RemoveEvent>, EngineError> {
        let _lock = self.paths.lock(LockMode::Exclusive)?;
        let id = self.find_image_id(input)?;
        let record = self
            .db
            .image(&id)?
            .ok_or_else(|| EngineError::NoSuchImage(input.to_string()))?;
        let mut events = Vec::new();
        let by_name = ImageReference::parse(input).ok().and_then(|r| {
            let key = match r.digest() {
                Some(d) => format!("{}@{}", r.name(), d),
                None => r.tagged_name()?,
            };
            (record.tags.contains(&key) || record.repo_digests.contains(&key)).then_some((r, key))
        });
        if let Some((reference, key)) = by_name {
            let last_tag = record.tags.iter().all(|t| *t == key);
            let user = self.db.containers_using(&record.id)?.into_iter().next();
            if let (true, Some(user), false) = (last_tag, &user, force) {
                return Err(EngineError::Conflict(format!(
                    "conflict: unable to remove repository reference \"{input}\" (must force) - container {} is using its referenced image {}",
                    &user[..12.min(user.len())],
                    record.id.short()
                )));
            }
            if reference.digest().is_some() {
                self.db.remove_repo_digest(&key)?;
            } else {
                self.db.remove_tag(&key)?;
            }
            events.push(RemoveEvent::Untagged(familiar(&reference)));
            // Other names remain, or (forced) containers still need the image.
            if !last_tag || user.is_some() {
                return Ok(events);
            }
            // Last tag gone: docker also drops the repo's digests and deletes the image.
            for d in record.repo_digests.iter().filter(|d| **d != key) {
                self.db.remove_repo_digest(d)?;
                events.push(RemoveEvent::Untagged(familiar_key(d)));
            }
        } else {
            let repos: BTreeSet<&str> = record
                .tags
                .iter()
                .map(|t| t.rsplit_once(':').map(|(n, _)| n).unwrap_or(t))
                .collect();
            if repos.len() > 1 && !force {
                return Err(EngineError::Conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    record.id.short()
                )));
            }
            let users = self.db.containers_using(&record.id)?;
            if let Some(user) = users.first() {
                return Err(EngineError::Conflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is being used by container {}",
                    record.id.short(),
                    &user[..12.min(user.len())]
                )));
            }
            for t in &record.tags {
                events.push(RemoveEvent::Untagged(familiar_key(t)));
            }
            for d in &record.repo_digests {
                events.push(RemoveEvent::Untagged(familiar_key(d)));
            }
        }
        events.extend(self.delete_image_record(&record)?);
        Ok(events)
    }
}

impl Engine {
    /// Delete the record, then the layers and blobs nothing references any more.
    /// The database goes first: a crash after it leaves only unreferenced files,
    /// which prune and the next delete collect.
    fn delete_image_record(
        &mut self,
        record: &ImageRecord,
    ) -> Result<Vec<RemoveEvent>, EngineError> {
        let freed = self.db.delete_image(&record.id)?;
        let mut events = vec![RemoveEvent::Deleted(record.id.clone())];
        for chain in freed {
            self.layers.remove(&chain)?;
            events.push(RemoveEvent::Deleted(chain));
        }
        self.remove_unreferenced_blobs()?;
        Ok(events)
    }

    /// Removes blobs no image refers to; returns them with their sizes.
    fn remove_unreferenced_blobs(&mut self) -> Result<Vec<(Digest, u64)>, EngineError> {
        let keep: BTreeSet<Digest> = self.db.referenced_blobs()?.into_iter().collect();
        let mut removed = Vec::new();
        for blob in self.content.list()? {
            if !keep.contains(&blob) {
                let size = self.content.size(&blob).unwrap_or(0);
                if self.content.remove(&blob)? {
                    removed.push((blob, size));
                }
            }
        }
        Ok(removed)
    }
}

impl Images<'_> {
    /// `image prune [-a] [--filter]`: dangling (untagged) images, or with `all` every
    /// image no container uses, that the filters select (`until=`, `label=`,
    /// `label!=`, `dangling=`). Also collects layer dirs no record points at.
    pub fn prune_images(
        &mut self,
        all: bool,
        filters: &crate::Filters,
    ) -> Result<PruneReport, EngineError> {
        let select = crate::images::image_filters::PruneSelector::new(all, filters)?;
        let _lock = self.paths.lock(LockMode::Exclusive)?;
        let referenced_before: BTreeSet<Digest> = self.db.referenced_blobs()?.into_iter().collect();
        let mut report = PruneReport::default();
        for record in self.db.images()? {
            if !select.selects(&record) {
                continue;
            }
            if !self.db.containers_using(&record.id)?.is_empty() {
                continue;
            }
            for t in record.tags.iter().chain(&record.repo_digests) {
                report.events.push(RemoveEvent::Untagged(familiar_key(t)));
            }
            let events = self.delete_image_record(&record)?;
            // Only layers no other image shares free space.
            report.reclaimed += record
                .layers
                .iter()
                .filter(|l| events.contains(&RemoveEvent::Deleted(l.chain_id.clone())))
                .map(|l| l.size)
                .sum::<u64>();
            report.events.extend(events);
        }
        report.reclaimed += self.remove_leftovers(&referenced_before)?;
        Ok(report)
    }
}

impl Engine {
    /// What no record points at: layer dirs and blobs a killed pull committed, its
    /// partial downloads, and what dead processes left that this engine collected when
    /// it opened. Returns their bytes (blobs of the images just deleted are not
    /// counted again: their layers were).
    fn remove_leftovers(
        &mut self,
        referenced_before: &BTreeSet<Digest>,
    ) -> Result<u64, EngineError> {
        let mut freed = std::mem::take(&mut self.collected);
        let recorded: BTreeSet<Digest> = self.db.layer_ids()?.into_iter().collect();
        for chain in self.layers.list()? {
            if !recorded.contains(&chain) {
                freed += crate::images::unpack::tree_size(&self.layers.path(&chain)).unwrap_or(0);
                self.layers.remove(&chain)?;
            }
        }
        for (blob, size) in self.remove_unreferenced_blobs()? {
            if !referenced_before.contains(&blob) {
                freed += size;
            }
        }
        freed += self.content.gc_incomplete(None)?.bytes;
        Ok(freed)
    }
}
