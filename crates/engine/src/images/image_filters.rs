//! Image filters dockerd applies: `image prune`'s `until=`, `label=`, `label!=`,
//! `dangling=`, and `images`' `dangling=`, `reference=`, `before=`/`since=`/`label=`.

use crate::filters::Filters;
use crate::{Engine, EngineError, ImageSummary, Images};
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

/// What `images` shows: its `--filter` values and its `REPOSITORY[:TAG]` argument.
#[derive(Debug, Default, Clone)]
pub struct ImageListFilter {
    dangling: Option<bool>,
    /// `reference=` values and the argument: `repo` or `repo:tag`, `*` wildcards.
    references: Vec<String>,
    /// `before=`, `since=`, `label=`, `label!=`: these need the image records.
    records: Filters,
}

impl ImageListFilter {
    /// `filters` as given to `--filter` (`key=value`), and the positional reference.
    pub fn parse(filters: &[String], reference: Option<&str>) -> Result<Self, EngineError> {
        let mut out = ImageListFilter {
            references: reference.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        };
        for f in filters {
            match f.split_once('=') {
                Some((k @ ("before" | "since" | "label" | "label!"), v)) => out.records.add(k, v),
                Some(("dangling", v)) => {
                    out.dangling = Some(match v {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => {
                            return Err(EngineError::InvalidArgument(format!(
                                "invalid filter {f:?}: dangling takes true or false"
                            )))
                        }
                    })
                }
                Some(("reference", v)) => out.references.push(v.to_string()),
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter {f:?}: supported filters are dangling, reference, before, since, label and label!"
                    )))
                }
            }
        }
        Ok(out)
    }

    /// Whether the image's name `repository`:`tag` (see [`split_tag`]) is shown.
    pub fn keeps_name(&self, repository: &str, tag: &str) -> bool {
        self.references.is_empty()
            || self
                .references
                .iter()
                .any(|p| matches_reference(p, repository, tag))
    }
}

/// A name's repository and tag (`<none>` when it has none); a registry's port is not a
/// tag.
pub fn split_tag(name: &str) -> (String, String) {
    let slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    match name[slash..].rfind(':') {
        Some(i) => (
            name[..slash + i].to_string(),
            name[slash + i + 1..].to_string(),
        ),
        None => (name.to_string(), "<none>".into()),
    }
}

/// `repo`, `repo:tag`, with `*` matching any run of characters, as docker's
/// reference filter.
fn matches_reference(pattern: &str, repository: &str, tag: &str) -> bool {
    let (p_repo, p_tag) = split_tag(pattern);
    glob(&p_repo, repository) && (p_tag == "<none>" || glob(&p_tag, tag))
}

fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(after) = text.strip_prefix(head) else {
                return false;
            };
            (0..=after.len())
                .filter(|&i| after.is_char_boundary(i))
                .any(|i| glob(rest, &after[i..]))
        }
    }
}

impl Images<'_> {
    /// `images`: the images `filter` keeps, before [`ImageListFilter::keeps_name`]
    /// picks among their names.
    pub fn list_images(&self, filter: &ImageListFilter) -> Result<Vec<ImageSummary>, EngineError> {
        let images = self.image_summaries()?;
        let kept = if filter.records.is_empty() {
            None
        } else {
            Some(self.filter_images(&filter.records)?)
        };
        Ok(images
            .into_iter()
            .filter(|image| kept.as_ref().is_none_or(|k| k.contains(&image.id)))
            .filter(|image| {
                filter
                    .dangling
                    .is_none_or(|d| image.repo_tags.is_empty() == d)
            })
            .collect())
    }
}

impl Engine {
    /// Ids of the images `before=`, `since=` and `label=`/`label!=` keep.
    fn filter_images(&self, filters: &Filters) -> Result<Vec<coracle_core::Digest>, EngineError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_patterns() {
        assert!(matches_reference("alpine", "alpine", "3"));
        assert!(matches_reference("alpine:3", "alpine", "3"));
        assert!(!matches_reference("alpine:4", "alpine", "3"));
        assert!(matches_reference("local*/x", "localhost:5000/x", "v1"));
        assert!(!matches_reference("busy*", "alpine", "latest"));
    }

    #[test]
    fn splits_tags_after_ports() {
        assert_eq!(
            split_tag("localhost:5000/x:v1"),
            ("localhost:5000/x".into(), "v1".into())
        );
        assert_eq!(split_tag("alpine"), ("alpine".into(), "<none>".into()));
    }

    #[test]
    fn list_filters_parse_with_dockers_messages() {
        let f = ImageListFilter::parse(&["reference=alp*".into()], Some("busybox")).unwrap();
        assert!(f.keeps_name("alpine", "3") && f.keeps_name("busybox", "latest"));
        assert!(!f.keeps_name("debian", "12"));
        let e = ImageListFilter::parse(&["dangling=maybe".into()], None).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid filter "dangling=maybe": dangling takes true or false"#
        );
        assert!(ImageListFilter::parse(&["nope=1".into()], None).is_err());
    }
}
