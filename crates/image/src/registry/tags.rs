//! A repository's tags (`GET /v2/NAME/tags/list`), page by page as the registry's
//! `Link: <...>; rel="next"` header says (the distribution spec's pagination, which
//! docker's client follows), for `pull --all-tags`.

use super::blobs::error_message;
use super::{Failure, RegistryClient, RegistryError, Source};
use crate::Result;
use coracle_core::ImageReference;
use reqwest::header::LINK;
use reqwest::{StatusCode, Url};

/// A registry sending more pages than this is looping.
const MAX_PAGES: usize = 10_000;
/// The largest tag list page read (a page of 10k long tags is under 2 MiB).
const MAX_PAGE_SIZE: usize = 16 << 20;

#[derive(serde::Deserialize)]
struct TagPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl RegistryClient {
    /// Every tag of `reference`'s repository, in the registry's order. Asked of the
    /// registry itself (mirrors hold only what was pulled through them).
    pub async fn list_tags(&self, reference: &ImageReference) -> Result<Vec<String>> {
        let source = self.origin(reference)?;
        let first = format!(
            "{}://{}/v2/{}/tags/list",
            source.scheme,
            source.host,
            source.reference.repository()
        );
        let mut url = Url::parse(&first).map_err(|e| RegistryError::Protocol {
            registry: source.host.clone(),
            what: "tag list URL".into(),
            message: e.to_string(),
        })?;
        let mut tags = Vec::new();
        for _ in 0..MAX_PAGES {
            let attempt = |()| {
                let url = url.clone();
                let source = &source;
                async move { ((), self.tag_page(source, reference, &url).await) }
            };
            let ((), outcome) = self
                .with_retries(self.config.retries, false, (), attempt, |_, _, _| {})
                .await;
            let (page, next) = outcome.map_err(|g| match g.failure {
                Failure::Fatal(e) => e,
                Failure::Transient { reason, .. } | Failure::Corrupt(reason) => {
                    RegistryError::Unavailable {
                        registry: source.host.clone(),
                        message: format!("tag list: {reason} (after {} attempts)", g.attempts),
                    }
                    .into()
                }
            })?;
            tags.extend(page);
            match next {
                Some(n) => url = n,
                None => return Ok(tags),
            }
        }
        Err(RegistryError::Protocol {
            registry: source.host.clone(),
            what: format!("tag list of {}", reference.familiar_name()),
            message: format!("more than {MAX_PAGES} pages"),
        }
        .into())
    }

    /// One page of tags and the next page's URL, if any.
    async fn tag_page(
        &self,
        source: &Source,
        reference: &ImageReference,
        url: &Url,
    ) -> std::result::Result<(Vec<String>, Option<Url>), Failure> {
        let mut token = self.pull_token(source, reference, None).await?;
        let get = |token: Option<String>| async move {
            self.send_get_accepting(url.as_str(), 0, Some((source, token.as_deref())), None)
                .await
        };
        let mut response = get(token.clone()).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            token = self.pull_token(source, reference, Some(&token)).await?;
            response = get(token).await?;
        }
        let status = response.status();
        if !status.is_success() {
            let message = error_message(status, response).await;
            let repository = reference.familiar_name();
            let err = match status {
                StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT => {
                    return Err(Failure::transient(message))
                }
                s if s.is_server_error() => return Err(Failure::transient(message)),
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Unauthorized {
                    registry: source.host.clone(),
                    repository,
                    message,
                },
                StatusCode::NOT_FOUND => RegistryError::RepositoryUnknown {
                    repository: reference.familiar_name(),
                    message,
                },
                _ => RegistryError::Protocol {
                    registry: source.host.clone(),
                    what: format!("tag list of {repository}"),
                    message,
                },
            };
            return Err(Failure::Fatal(err.into()));
        }
        let next = next_link(response.headers(), url);
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::transient(super::blobs::error_chain(&e)))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_PAGE_SIZE {
                return Err(protocol(source, "tag list page over 16 MiB".into()));
            }
        }
        let page: TagPage = serde_json::from_slice(&body)
            .map_err(|e| protocol(source, format!("tag list: {e}")))?;
        Ok((page.tags.unwrap_or_default(), next))
    }
}

fn protocol(source: &Source, message: String) -> Failure {
    Failure::Fatal(
        RegistryError::Protocol {
            registry: source.host.clone(),
            what: "tag list".into(),
            message,
        }
        .into(),
    )
}

/// The `rel="next"` target of a `Link` header, resolved against the page's URL (the
/// registry sends a path with `?last=...&n=...`).
fn next_link(headers: &reqwest::header::HeaderMap, base: &Url) -> Option<Url> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().split_once(';')?;
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| base.join(target).ok()).flatten()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn link_header_next_page_resolves_against_the_page() {
        let base = Url::parse("http://127.0.0.1:5000/v2/app/tags/list").unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            HeaderValue::from_static("</v2/app/tags/list?last=v2&n=2>; rel=\"next\""),
        );
        assert_eq!(
            next_link(&h, &base).unwrap().as_str(),
            "http://127.0.0.1:5000/v2/app/tags/list?last=v2&n=2"
        );
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            HeaderValue::from_static(
                "<https://x/prev>; rel=\"prev\", <https://x/next?n=1>; rel=\"next\"",
            ),
        );
        assert_eq!(next_link(&h, &base).unwrap().as_str(), "https://x/next?n=1");
        assert!(next_link(&HeaderMap::new(), &base).is_none());
    }

    /// A registry answering `/v2/` and two pages of tags, the first with a `Link`.
    async fn paging_registry() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req).to_string();
                let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
                let (link, body) = match path.as_str() {
                    "/v2/app/tags/list" => (
                        "Link: </v2/app/tags/list?last=b&n=2>; rel=\"next\"\r\n",
                        r#"{"name":"app","tags":["a","b"]}"#,
                    ),
                    "/v2/app/tags/list?last=b&n=2" => ("", r#"{"name":"app","tags":["c"]}"#),
                    _ => ("", "{}"),
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n{link}\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn every_page_is_followed() {
        let addr = paging_registry().await;
        let dir = tempfile::tempdir().unwrap();
        let docker = crate::auth::DockerConfig::at(&dir.path().join("docker"));
        let client = RegistryClient::with_docker_config(
            &crate::config::RegistryConfig::default(),
            None,
            docker,
        )
        .unwrap();
        let reference = ImageReference::parse(&format!("{addr}/app")).unwrap();
        let tags = client.list_tags(&reference).await.unwrap();
        assert_eq!(tags, ["a", "b", "c"]);
    }
}
