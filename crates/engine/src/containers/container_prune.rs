//! `container prune`: remove every stopped container (created or exited) that the
//! filters select (`until=`, `label=`, `label!=`), as dockerd's `ContainerPrune`.

use crate::container_config::StoredConfig;
use crate::filters::Filters;
use crate::{Containers, EngineError};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ContainerPruneReport {
    /// Full ids, in the order removed.
    pub deleted: Vec<String>,
    /// Bytes of the removed containers' writable layers.
    pub space_reclaimed: u64,
    /// Containers that could not be removed (id, why); dockerd logs and skips them.
    pub failed: Vec<(String, String)>,
}

impl Containers<'_> {
    pub fn prune_containers(
        &mut self,
        filters: &Filters,
    ) -> Result<ContainerPruneReport, EngineError> {
        filters.validate(&["label", "label!", "until"])?;
        let until = filters.until()?;
        let mut report = ContainerPruneReport::default();
        for c in self.container_records()? {
            if c.is_active() {
                continue;
            }
            let stored = StoredConfig::parse(&c.config);
            if let Some(until) = until {
                let created = chrono::DateTime::parse_from_rfc3339(&stored.created)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .ok()
                    .or_else(|| chrono::DateTime::from_timestamp(c.created_at, 0));
                if created.is_some_and(|t| t > until) {
                    continue;
                }
            }
            let labels = &stored.config.labels;
            if !filters.match_kv_list("label", labels)
                || (filters.contains("label!") && filters.match_kv_list("label!", labels))
            {
                continue;
            }
            let (size, _) = self.container_sizes(&c);
            match self.remove_container(&c.id, false, false) {
                Ok(()) => {
                    report.space_reclaimed += size;
                    report.deleted.push(c.id);
                }
                Err(e) => report.failed.push((c.id, e.to_string())),
            }
        }
        Ok(report)
    }
}
