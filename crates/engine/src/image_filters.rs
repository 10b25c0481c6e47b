//! Image filters dockerd applies: `image prune`'s `until=`, `label=`, `label!=`,
//! `dangling=`, and `images`' `before=`/`since=`/`label=`.

use crate::filters::Filters;
use crate::{Engine, EngineError};
use coracle_state::ImageRecord;
use std::collections::BTreeMap;

/// The image config's `config.Labels`.
pub(crate) fn image_labels(r: &ImageRecord) -> BTreeMap<String, String> {
    serde_json::from_slice::<serde_json::Value>(&r.config)
        .ok()
        .and_then(|v| serde_json::from_value(v["config"]["Labels"].clone()).ok())
        .unwrap_or_default()
}

/// When the image was created (its config's `created`), else when it was added.
fn created(r: &ImageRecord) -> chrono::DateTime<chrono::Utc> {
    r.created
        .as_deref()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|| chrono::DateTime::from_timestamp(r.added_at, 0))
        .unwrap_or_default()
}

/// `label=` (each must hold) and `label!=` (none may hold).
fn labels_match(f: &Filters, labels: &BTreeMap<String, String>) -> bool {
    f.match_kv_list("label", labels) && !(f.contains("label!") && f.match_kv_list("label!", labels))
}

/// What `image prune` filters select: returns whether dangling-only (no `-a`, no
/// `dangling=false`) and a predicate over images.
pub(crate) struct PruneSelector {
    pub dangling_only: bool,
    until: Option<chrono::DateTime<chrono::Utc>>,
    filters: Filters,
}

impl PruneSelector {
    pub(crate) fn new(all: bool, filters: &Filters) -> Result<PruneSelector, EngineError> {
        filters.validate(&["dangling", "label", "label!", "until"])?;
        let dangling = filters.get_bool("dangling")?;
        Ok(PruneSelector {
            dangling_only: dangling.unwrap_or(!all),
            until: filters.until()?,
            filters: filters.clone(),
        })
    }

    pub(crate) fn selects(&self, r: &ImageRecord) -> bool {
        if self.dangling_only && !r.tags.is_empty() {
            return false;
        }
        if self.until.is_some_and(|u| created(r) > u) {
            return false;
        }
        labels_match(&self.filters, &image_labels(r))
    }
}

impl Engine {
    /// Ids of the images `images --filter` keeps for `before=`, `since=` and
    /// `label=`/`label!=` (the CLI applies dangling= and reference= on rows).
    pub fn filter_images(
        &self,
        filters: &Filters,
    ) -> Result<Vec<coracle_core::Digest>, EngineError> {
        let records = self.db.images()?;
        let mut bounds = Vec::new();
        for key in ["before", "since"] {
            for v in filters.get(key) {
                let id = self.find_image_id(v)?;
                if let Some(r) = records.iter().find(|r| r.id == id) {
                    bounds.push((key, created(r)));
                }
            }
        }
        Ok(records
            .iter()
            .filter(|r| {
                let t = created(r);
                bounds
                    .iter()
                    .all(|(k, b)| if *k == "before" { t < *b } else { t > *b })
                    && labels_match(filters, &image_labels(r))
            })
            .map(|r| r.id.clone())
            .collect())
    }
}
