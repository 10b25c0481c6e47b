//! `search`: the registry's v1 search API (`GET /v1/search?q=TERM&n=LIMIT`), which
//! Docker Hub (index.docker.io) and some other registries answer. A plain
//! distribution registry has none (404): that is said plainly.

use super::blobs::{error_chain, error_message};
use super::{RegistryClient, RegistryError};
use crate::Result;
use oci_client::secrets::RegistryAuth;
use reqwest::{StatusCode, Url};

/// The largest search response read.
const MAX_RESPONSE: usize = 16 << 20;

/// One search hit, in the API's (and docker's `--format '{{json .}}'`) field names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct SearchResult {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: i64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub is_automated: bool,
}

#[derive(serde::Deserialize)]
struct SearchResults {
    #[serde(default)]
    results: Vec<SearchResult>,
}

impl RegistryClient {
    /// Searches `index` (host[:port]; Docker Hub's is `index.docker.io`) for `term`,
    /// at most `limit` results, with the stored credentials for it if any (basic auth,
    /// as docker's v1 search sends them).
    pub async fn search(&self, index: &str, term: &str, limit: u32) -> Result<Vec<SearchResult>> {
        let unavailable = |message: String| RegistryError::Unavailable {
            registry: index.to_string(),
            message,
        };
        let base = format!("{}://{index}/v1/search", self.scheme(index));
        let mut url = Url::parse(&base).map_err(|e| RegistryError::Protocol {
            registry: index.to_string(),
            what: "search URL".into(),
            message: e.to_string(),
        })?;
        url.query_pairs_mut()
            .append_pair("q", term)
            .append_pair("n", &limit.to_string());
        let mut request = self.http.get(url).header("X-Docker-Token", "true");
        if let RegistryAuth::Basic(user, password) = self.auth_for(index)? {
            request = request.basic_auth(user, Some(password));
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| unavailable(error_chain(&e)))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            let message = error_message(status, response).await;
            return Err(RegistryError::SearchUnsupported {
                registry: index.to_string(),
                message: format!("GET /v1/search: {message}"),
            }
            .into());
        }
        if !status.is_success() {
            let message = error_message(status, response).await;
            return Err(match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Unauthorized {
                    registry: index.to_string(),
                    repository: term.to_string(),
                    message,
                },
                s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                    unavailable(format!("search: unexpected status code {message}"))
                }
                _ => RegistryError::Protocol {
                    registry: index.to_string(),
                    what: "search".into(),
                    message: format!("unexpected status code {message}"),
                },
            }
            .into());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(error_chain(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_RESPONSE {
                return Err(unavailable("search response over 16 MiB".into()).into());
            }
        }
        let results: SearchResults =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                registry: index.to_string(),
                what: "search".into(),
                message: format!("error decoding registry search results: {e}"),
            })?;
        Ok(results.results)
    }
}
