//! docker's rules for which containers `ps` shows (`includeContainerInList`), in
//! its order: `before`/`since` walk the creation order, `-n` stops the walk, and the
//! filters of different keys must all hold.

use super::{Candidate, ListOptions};

/// The outcome of the filters for one container, in docker's order.
pub(super) enum Verdict {
    Include,
    Exclude,
    Stop,
}

pub(super) struct FilterState<'a> {
    pub(super) opts: &'a ListOptions,
    pub(super) before: Option<String>,
    pub(super) since: Option<String>,
    pub(super) ancestors: Option<Vec<String>>,
    pub(super) exited: Vec<i64>,
    pub(super) is_task: Option<bool>,
    /// Containers matched by the `id` filters' prefixes.
    pub(super) ids: Option<Vec<String>>,
    pub(super) included: i64,
}

impl FilterState<'_> {
    pub(super) fn verdict(&mut self, c: &Candidate) -> Verdict {
        let f = &self.opts.filters;
        let r = &c.record;
        if let Some(before) = &self.before {
            if &r.id == before {
                self.before = None;
            }
            return Verdict::Exclude;
        }
        if self.since.as_deref() == Some(r.id.as_str()) {
            return Verdict::Stop;
        }
        if !c.running() && !self.opts.all && self.opts.limit <= 0 {
            return Verdict::Exclude;
        }
        if !f.matches("name", &format!("/{}", r.name)) && !f.matches("name", &r.name) {
            return Verdict::Exclude;
        }
        if let Some(ids) = &self.ids {
            if !ids.contains(&r.id) || !f.matches("id", &r.id) {
                return Verdict::Exclude;
            }
        }
        // No swarm: no container is a task.
        if self.is_task == Some(true) {
            return Verdict::Exclude;
        }
        if !f.match_kv_list("label", &c.labels) {
            return Verdict::Exclude;
        }
        // Linux has one isolation, recorded as "".
        if f.contains("isolation") && !f.matches("isolation", "") {
            return Verdict::Exclude;
        }
        if self.opts.limit > 0 && self.included == self.opts.limit {
            return Verdict::Stop;
        }
        if !self.exited.is_empty() {
            let code = r.exit_code.unwrap_or(0);
            let stopped_after_start = !c.running() && r.started_at.is_some();
            if !(stopped_after_start && self.exited.contains(&code)) {
                return Verdict::Exclude;
            }
        }
        if !f.matches("status", r.state.as_str()) {
            return Verdict::Exclude;
        }
        if !f.exact_match("health", &c.health) {
            return Verdict::Exclude;
        }
        if f.contains("volume") {
            let hit = f.get("volume").any(|v| {
                c.mounts.iter().any(|m| {
                    m.destination == v
                        || (if m.name.is_empty() {
                            &m.source
                        } else {
                            &m.name
                        }) == v
                })
            });
            if !hit {
                return Verdict::Exclude;
            }
        }
        if let Some(images) = &self.ancestors {
            if !images.contains(&r.image_id.to_string()) {
                return Verdict::Exclude;
            }
        }
        if f.contains("network") && !f.get("network").any(|n| n == c.network) {
            return Verdict::Exclude;
        }
        self.included += 1;
        Verdict::Include
    }
}

/// The one container whose id starts with `prefix` (docker's truncindex: an
/// ambiguous prefix matches nothing).
pub(super) fn unique_prefix(candidates: &[Candidate], prefix: &str) -> Option<String> {
    if prefix.is_empty() {
        return None;
    }
    let mut hits = candidates
        .iter()
        .filter(|c| c.record.id.starts_with(prefix));
    let first = hits.next()?;
    if hits.next().is_some() && first.record.id != prefix {
        return None;
    }
    Some(first.record.id.clone())
}

#[cfg(test)]
mod tests {
    use super::super::tests::record;
    use super::*;
    use crate::filters::Filters;
    use coracle_state::ContainerState;

    fn candidate(
        id: &str,
        name: &str,
        state: ContainerState,
        labels: &[(&str, &str)],
    ) -> Candidate {
        let mut r = record(state);
        r.id = id.into();
        r.name = name.into();
        if r.state == ContainerState::Exited {
            r.started_at = Some("2024-05-01T11:00:00Z".into());
            r.finished_at = Some("2024-05-01T11:00:01Z".into());
            r.exit_code = Some(3);
        }
        let mut c = Candidate::new(r);
        c.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        c
    }

    fn run_filters(cands: &[Candidate], opts: ListOptions) -> Vec<String> {
        let mut st = FilterState {
            opts: &opts,
            before: None,
            since: None,
            ancestors: None,
            exited: opts
                .filters
                .get("exited")
                .map(|v| v.parse().unwrap())
                .collect(),
            is_task: opts.filters.get_bool("is-task").unwrap(),
            ids: opts.filters.contains("id").then(|| {
                opts.filters
                    .get("id")
                    .filter_map(|p| unique_prefix(cands, p))
                    .collect()
            }),
            included: 0,
        };
        let mut out = Vec::new();
        for c in cands {
            match st.verdict(c) {
                Verdict::Include => out.push(c.record.name.clone()),
                Verdict::Exclude => {}
                Verdict::Stop => break,
            }
        }
        out
    }

    fn opts(all: bool, filters: &[&str]) -> ListOptions {
        ListOptions {
            all,
            limit: 0,
            size: false,
            filters: Filters::parse(filters).unwrap(),
        }
    }

    #[test]
    fn filters_combine_as_docker() {
        let cands = vec![
            candidate("aa11", "web", ContainerState::Running, &[("tier", "front")]),
            candidate("aa22", "db", ContainerState::Exited, &[("tier", "back")]),
            candidate("bb33", "web2", ContainerState::Created, &[]),
        ];
        assert_eq!(run_filters(&cands, opts(false, &[])), ["web"]);
        assert_eq!(run_filters(&cands, opts(true, &[])), ["web", "db", "web2"]);
        assert_eq!(
            run_filters(&cands, opts(true, &["name=web"])),
            ["web", "web2"]
        );
        assert_eq!(run_filters(&cands, opts(true, &["name=^web$"])), ["web"]);
        assert_eq!(
            run_filters(&cands, opts(true, &["name=web2", "name=db"])),
            ["db", "web2"],
            "values of one key: OR"
        );
        assert_eq!(
            run_filters(&cands, opts(true, &["name=web", "status=created"])),
            ["web2"],
            "different keys: AND"
        );
        assert_eq!(
            run_filters(&cands, opts(true, &["label=tier"])),
            ["web", "db"]
        );
        assert_eq!(
            run_filters(&cands, opts(true, &["label=tier=back"])),
            ["db"]
        );
        assert_eq!(run_filters(&cands, opts(true, &["exited=3"])), ["db"]);
        assert!(run_filters(&cands, opts(true, &["exited=0"])).is_empty());
        assert_eq!(run_filters(&cands, opts(true, &["id=bb"])), ["web2"]);
        assert!(
            run_filters(&cands, opts(true, &["id=aa"])).is_empty(),
            "an ambiguous id prefix matches nothing"
        );
        assert_eq!(run_filters(&cands, opts(true, &["health=none"])).len(), 3);
        assert!(run_filters(&cands, opts(true, &["is-task=true"])).is_empty());
        let mut limited = opts(false, &[]);
        limited.limit = 2;
        assert_eq!(
            run_filters(&cands, limited),
            ["web", "db"],
            "-n shows stopped containers too"
        );
    }

    #[test]
    fn before_and_since_walk_the_creation_order() {
        let cands = vec![
            candidate("aa11", "c3", ContainerState::Exited, &[]),
            candidate("bb22", "c2", ContainerState::Exited, &[]),
            candidate("cc33", "c1", ContainerState::Exited, &[]),
        ];
        let o = opts(true, &[]);
        let mut st = FilterState {
            opts: &o,
            before: Some("bb22".into()),
            since: None,
            ancestors: None,
            exited: vec![],
            is_task: None,
            ids: None,
            included: 0,
        };
        let kept: Vec<_> = cands
            .iter()
            .filter(|c| matches!(st.verdict(c), Verdict::Include))
            .map(|c| c.record.name.clone())
            .collect();
        assert_eq!(kept, ["c1"]);
        let mut st = FilterState {
            opts: &o,
            before: None,
            since: Some("cc33".into()),
            ancestors: None,
            exited: vec![],
            is_task: None,
            ids: None,
            included: 0,
        };
        let mut kept = Vec::new();
        for c in &cands {
            match st.verdict(c) {
                Verdict::Include => kept.push(c.record.name.clone()),
                Verdict::Exclude => {}
                Verdict::Stop => break,
            }
        }
        assert_eq!(kept, ["c3", "c2"]);
    }
}
