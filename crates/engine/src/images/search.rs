//! Asking a registry what it has: `search` (the v1 search API, filtered as dockerd
//! filters it) and a repository's tags (for `pull --all-tags`).

use crate::{EngineError, Filters, Images};
use coracle_core::ImageReference;
pub use coracle_image::SearchResult;

/// Docker Hub's search index.
const HUB_INDEX: &str = "index.docker.io";
/// dockerd's default and bounds for `--limit`.
const DEFAULT_LIMIT: i64 = 25;

/// A search term split as dockerd's `splitReposSearchTerm`: `REGISTRY/REST` when the
/// first part looks like a host (a `.` or `:`, or `localhost`), else Docker Hub.
/// Docker Hub's official images are searched without `library/`.
fn split_term(term: &str) -> (String, String) {
    match term.split_once('/') {
        Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => {
            let index = match host {
                "docker.io" | "index.docker.io" | "registry-1.docker.io" => HUB_INDEX,
                h => h,
            };
            let rest = if index == HUB_INDEX {
                rest.strip_prefix("library/").unwrap_or(rest)
            } else {
                rest
            };
            (index.to_string(), rest.to_string())
        }
        _ => (
            HUB_INDEX.to_string(),
            term.strip_prefix("library/").unwrap_or(term).to_string(),
        ),
    }
}

impl Images<'_> {
    /// `search TERM`: at most `limit` (0: 25; else 1..=100) results of the registry
    /// the term names (Docker Hub by default), filtered by `stars=N`, `is-official=`
    /// and the deprecated `is-automated=` (true matches nothing, as in dockerd: Docker
    /// Hub no longer has automated builds); `is_automated` is always reported false.
    pub fn search(
        &self,
        term: &str,
        limit: i64,
        filters: &Filters,
    ) -> Result<Vec<SearchResult>, EngineError> {
        filters.validate(&["is-automated", "is-official", "stars"])?;
        let automated = filters.get_bool("is-automated")?.unwrap_or(false);
        let official = filters.get_bool("is-official")?;
        let mut min_stars = None;
        for s in filters.get("stars") {
            let n: i64 = s
                .parse()
                .map_err(|_| EngineError::InvalidArgument(format!("invalid filter 'stars={s}'")))?;
            min_stars = Some(min_stars.unwrap_or(n).max(n));
        }
        if term.contains("://") {
            return Err(EngineError::InvalidArgument(format!(
                "invalid repository name: repository name ({term}) should not have a scheme"
            )));
        }
        let limit = if limit == 0 { DEFAULT_LIMIT } else { limit };
        if !(1..=100).contains(&limit) {
            return Err(EngineError::InvalidArgument(format!(
                "limit {limit} is outside the range of [1, 100]"
            )));
        }
        let limit = limit as u32;
        if automated {
            return Ok(Vec::new());
        }
        let (index, remote) = split_term(term);
        let (runtime, client) = self.registry_client(None)?;
        let results = runtime.block_on(client.search(&index, &remote, limit))?;
        Ok(results
            .into_iter()
            .filter(|r| official.is_none_or(|o| o == r.is_official))
            .filter(|r| min_stars.is_none_or(|n| r.star_count >= n))
            .map(|r| SearchResult {
                is_automated: false,
                ..r
            })
            .collect())
    }

    /// Every tag of `reference`'s repository, as its registry lists them.
    pub fn list_tags(
        &self,
        reference: &ImageReference,
        tls_verify: Option<bool>,
    ) -> Result<Vec<String>, EngineError> {
        let (runtime, client) = self.registry_client(tls_verify)?;
        Ok(runtime.block_on(client.list_tags(reference))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_split_as_dockerd() {
        let s = |t: &str| split_term(t);
        assert_eq!(s("busybox"), (HUB_INDEX.into(), "busybox".into()));
        assert_eq!(s("library/busybox"), (HUB_INDEX.into(), "busybox".into()));
        assert_eq!(s("me/app"), (HUB_INDEX.into(), "me/app".into()));
        assert_eq!(s("docker.io/library/x"), (HUB_INDEX.into(), "x".into()));
        assert_eq!(
            s("127.0.0.1:5000/team/app"),
            ("127.0.0.1:5000".into(), "team/app".into())
        );
        assert_eq!(s("localhost/app"), ("localhost".into(), "app".into()));
        assert_eq!(
            s("reg.lan/library/x"),
            ("reg.lan".into(), "library/x".into())
        );
    }
}
