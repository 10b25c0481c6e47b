//! Blob GETs (layers and configs) as our own HTTP requests, so that what oci-client's
//! errors drop stays visible: the status, `Retry-After` (seconds or an HTTP-date) and
//! `Content-Range`/206 versus 200 on a resumed download. Manifest GETs too: oci-client
//! reads a manifest body whole, however large, and a registry could send gigabytes;
//! ours stop at [`MAX_MANIFEST_SIZE`]. oci-client still runs the
//! auth flow ([`oci_client::Client::auth`] hands us the bearer token); the URL is built
//! the way oci-client builds it (including `?ns=<registry>` through a mirror), and
//! redirects to blob storage are followed by reqwest, which drops `Authorization` when
//! a redirect leaves the host.

use super::{
    classify, Failure, RegistryClient, RegistryError, Source, CONNECT_TIMEOUT, READ_TIMEOUT,
    USER_AGENT,
};
use crate::manifest::{
    human_size, Descriptor, ManifestError, ACCEPTED_MANIFEST_TYPES, MAX_MANIFEST_SIZE,
};
use bytes::Bytes;
use coracle_core::{Digest, ImageReference};
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_RANGE, RANGE, RETRY_AFTER};
use reqwest::StatusCode;
use std::time::{Duration, SystemTime};

/// The longest a `Retry-After` makes us wait before the next attempt.
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How much of an error response's body is read for its message.
const ERROR_BODY_LIMIT: usize = 4096;

/// The HTTP client for blob GETs: configured like oci-client's (certificate checks,
/// timeouts, user agent); reqwest's default policy follows up to 10 redirects.
pub(super) fn http_client(accept_invalid_certs: bool) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(accept_invalid_certs)
        .read_timeout(READ_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(USER_AGENT)
        .build()
}

/// `<scheme>://<host>/v2/<repository>/blobs/<digest>`, plus `?ns=<registry>` when the
/// host is a mirror (oci-client's `to_v2_blob_url`).
pub(super) fn blob_url(scheme: &str, reference: &Reference, digest: &Digest) -> String {
    format!(
        "{scheme}://{registry}/v2/{repository}/blobs/{digest}{ns}",
        registry = reference.resolve_registry(),
        repository = reference.repository(),
        ns = reference
            .namespace()
            .map(|ns| format!("?ns={ns}"))
            .unwrap_or_default(),
    )
}

/// `<scheme>://<host>/v2/<repository>/manifests/<digest or tag>`, plus `?ns=<registry>`
/// through a mirror (oci-client's `to_v2_manifest_url`).
pub(super) fn manifest_url(scheme: &str, reference: &Reference) -> String {
    format!(
        "{scheme}://{registry}/v2/{repository}/manifests/{object}{ns}",
        registry = reference.resolve_registry(),
        repository = reference.repository(),
        object = reference.digest().or(reference.tag()).unwrap_or("latest"),
        ns = reference
            .namespace()
            .map(|ns| format!("?ns={ns}"))
            .unwrap_or_default(),
    )
}

/// A manifest as the registry sent it.
pub(super) struct ManifestBody {
    pub bytes: Bytes,
    /// `Docker-Content-Digest`, when the registry sent one.
    pub digest_header: Option<String>,
}

/// A blob response whose status was 200 or 206, positioned at the offset asked for.
pub(super) struct BlobBody {
    response: reqwest::Response,
    /// Leading bytes still to drop (a server that ignored `Range`).
    skip: u64,
}

impl BlobBody {
    /// The next piece of the body; `None` at its end. A broken connection or a
    /// stalled read is transient.
    pub(super) async fn next(&mut self) -> Result<Option<Bytes>, Failure> {
        loop {
            let mut chunk = match self.response.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => return Ok(None),
                Err(e) => return Err(Failure::transient(error_chain(&e))),
            };
            if self.skip > 0 {
                let n = self.skip.min(chunk.len() as u64);
                chunk = chunk.slice(n as usize..);
                self.skip -= n;
            }
            if !chunk.is_empty() {
                return Ok(Some(chunk));
            }
        }
    }
}

impl RegistryClient {
    /// The bearer token for pulling from `source` (`None`: anonymous, or basic auth
    /// with the configured credentials). Cached per host and repository; `stale` is
    /// a token the registry just refused: a fresh one is fetched unless another
    /// download already replaced it.
    pub(super) async fn pull_token(
        &self,
        source: &Source,
        reference: &ImageReference,
        stale: Option<&Option<String>>,
    ) -> Result<Option<String>, Failure> {
        let key = (
            source.host.clone(),
            source.reference.repository().to_string(),
        );
        let mut tokens = self.tokens.lock().await;
        if let Some(cached) = tokens.get(&key) {
            if stale != Some(cached) {
                return Ok(cached.clone());
            }
        }
        let token = source
            .client
            .auth(&source.reference, &source.auth, RegistryOperation::Pull)
            .await
            .map_err(|e| classify(e, &source.host, reference, "authenticate for pull"))?;
        tokens.insert(key, token.clone());
        Ok(token)
    }

    /// GET `desc` from `source` from byte `offset` on, authenticated (re-authenticating
    /// once on a 401), falling back to the descriptor's `urls` (unauthenticated, as
    /// oci-client does) when the registry does not have a foreign layer.
    pub(super) async fn open_blob(
        &self,
        source: &Source,
        reference: &ImageReference,
        desc: &Descriptor,
        offset: u64,
    ) -> Result<BlobBody, Failure> {
        let url = blob_url(source.scheme, &source.reference, &desc.digest);
        let mut token = self.pull_token(source, reference, None).await?;
        let mut response = self
            .send_get(&url, offset, Some((source, token.as_deref())))
            .await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            // An expired token (or none yet for this scope): once more with a new one.
            token = self.pull_token(source, reference, Some(&token)).await?;
            response = self
                .send_get(&url, offset, Some((source, token.as_deref())))
                .await?;
        }
        if response.status() == StatusCode::NOT_FOUND {
            let foreign = desc.urls.iter().flatten().filter(|u| {
                reqwest::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
            });
            let mut unreachable = None;
            for url in foreign {
                // Never authenticated: these URLs are not the registry's (CVE-2020-15157).
                match self.send_get(url, offset, None).await {
                    Ok(r) if r.status().is_success() => {
                        response = r;
                        unreachable = None;
                        break;
                    }
                    Ok(r) => {
                        response = r;
                        unreachable = None;
                    }
                    Err(f) => unreachable = Some(f),
                }
            }
            // The last URL tried could not be reached (connection error): transient.
            if let Some(f) = unreachable {
                return Err(f);
            }
        }
        self.check_blob_response(source, reference, desc, response, offset)
            .await
    }

    /// One GET; `auth` is the registry and its bearer token when the request goes to
    /// the registry (basic auth with its credentials when there is no token).
    async fn send_get(
        &self,
        url: &str,
        offset: u64,
        auth: Option<(&Source, Option<&str>)>,
    ) -> Result<reqwest::Response, Failure> {
        self.send_get_accepting(url, offset, auth, None).await
    }

    /// [`Self::send_get`] with an `Accept` header.
    pub(super) async fn send_get_accepting(
        &self,
        url: &str,
        offset: u64,
        auth: Option<(&Source, Option<&str>)>,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, Failure> {
        let mut request = self.http.get(url);
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        if offset > 0 {
            request = request.header(RANGE, format!("bytes={offset}-"));
        }
        match auth {
            Some((_, Some(token))) => {
                request = request.header(AUTHORIZATION, format!("Bearer {token}"));
            }
            Some((source, None)) => {
                if let RegistryAuth::Basic(user, password) = &source.auth {
                    request = request.basic_auth(user, Some(password));
                }
            }
            None => {}
        }
        request.send().await.map_err(|e| {
            if e.is_builder() {
                Failure::Fatal(
                    RegistryError::Protocol {
                        registry: url.to_string(),
                        what: "blob request".into(),
                        message: error_chain(&e),
                    }
                    .into(),
                )
            } else {
                Failure::transient(error_chain(&e))
            }
        })
    }

    /// GET the manifest `oref` names from `source` (re-authenticating once on a 401),
    /// read into memory up to [`MAX_MANIFEST_SIZE`]: a larger `Content-Length` is
    /// refused before the body is read, and a body without one (or lying) is cut off
    /// as soon as it passes the limit. Statuses are sorted as for blobs.
    pub(super) async fn get_manifest(
        &self,
        source: &Source,
        oref: &Reference,
        reference: &ImageReference,
    ) -> Result<ManifestBody, Failure> {
        let url = manifest_url(source.scheme, oref);
        let accept = ACCEPTED_MANIFEST_TYPES.join(", ");
        let mut token = self.pull_token(source, reference, None).await?;
        let mut response = self
            .send_get_accepting(&url, 0, Some((source, token.as_deref())), Some(&accept))
            .await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            token = self.pull_token(source, reference, Some(&token)).await?;
            response = self
                .send_get_accepting(&url, 0, Some((source, token.as_deref())), Some(&accept))
                .await?;
        }
        let status = response.status();
        if !status.is_success() {
            return Err(self.manifest_failure(source, reference, response).await);
        }
        let what = || format!("manifest for {reference} from {}", source.host);
        let too_large = |size: String| {
            Failure::Fatal(
                ManifestError::TooLarge {
                    what: what(),
                    size,
                    limit: MAX_MANIFEST_SIZE,
                    limit_of: "manifests and indexes",
                }
                .into(),
            )
        };
        if let Some(len) = response.content_length().filter(|&l| l > MAX_MANIFEST_SIZE) {
            return Err(too_large(format!(
                "Content-Length {len} bytes, {}",
                human_size(len)
            )));
        }
        let digest_header = response
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = Vec::new();
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => return Err(Failure::transient(error_chain(&e))),
            };
            if (body.len() + chunk.len()) as u64 > MAX_MANIFEST_SIZE {
                return Err(too_large(format!(
                    "more than {} sent",
                    human_size(MAX_MANIFEST_SIZE)
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(ManifestBody {
            bytes: Bytes::from(body),
            digest_header,
        })
    }

    /// A manifest GET's error status, sorted like oci-client's errors were: 401/403
    /// denied, 404 manifest unknown, 408/429/5xx transient, the rest a protocol error.
    async fn manifest_failure(
        &self,
        source: &Source,
        reference: &ImageReference,
        response: reqwest::Response,
    ) -> Failure {
        let status = response.status();
        let retry_after = parse_retry_after(response.headers(), SystemTime::now());
        let message = error_message(status, response).await;
        if status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
            || status.is_server_error()
        {
            return Failure::Transient {
                reason: message,
                retry_after,
            };
        }
        let registry = source.host.clone();
        let err = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Unauthorized {
                registry,
                repository: reference.familiar_name(),
                message,
            },
            StatusCode::NOT_FOUND => RegistryError::ManifestUnknown {
                reference: reference.to_string(),
                message,
            },
            _ => RegistryError::Protocol {
                registry,
                what: format!("manifest of {reference}"),
                message,
            },
        };
        Failure::Fatal(err.into())
    }

    /// Sort a blob response: 200/206 become a body positioned at `offset`; 429, 5xx
    /// and 408 are transient (with the server's `Retry-After`); 401/403 and 404 are
    /// fatal for this source.
    async fn check_blob_response(
        &self,
        source: &Source,
        reference: &ImageReference,
        desc: &Descriptor,
        response: reqwest::Response,
        offset: u64,
    ) -> Result<BlobBody, Failure> {
        let status = response.status();
        match status {
            StatusCode::OK => {
                return Ok(BlobBody {
                    response,
                    skip: offset,
                })
            }
            StatusCode::PARTIAL_CONTENT => {
                let start = content_range_start(response.headers()).unwrap_or(offset);
                if start > offset {
                    return Err(Failure::Corrupt(format!(
                        "asked for bytes from {offset} on, the server sent them from {start} on"
                    )));
                }
                return Ok(BlobBody {
                    response,
                    skip: offset - start,
                });
            }
            _ => {}
        }
        let retry_after = parse_retry_after(response.headers(), SystemTime::now());
        let url = response.url().clone();
        let message = error_message(status, response).await;
        let transient = status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
            || status.is_server_error();
        if transient {
            return Err(Failure::Transient {
                reason: message,
                retry_after,
            });
        }
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            // What we have does not fit what the server has: start again.
            return Err(Failure::Corrupt(message));
        }
        let registry = source.host.clone();
        let err = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Unauthorized {
                registry,
                repository: reference.familiar_name(),
                message,
            },
            StatusCode::NOT_FOUND => RegistryError::ManifestUnknown {
                reference: format!("{reference} (blob {})", desc.digest),
                message,
            },
            _ => RegistryError::Protocol {
                registry,
                what: format!("blob {} of {reference} ({url})", desc.digest),
                message,
            },
        };
        Err(Failure::Fatal(err.into()))
    }
}

/// "500 Internal Server Error: <the registry's message>", from the error envelope
/// (`{"errors":[{"code":…,"message":…}]}`) when there is one, else the body's start.
pub(super) async fn error_message(status: StatusCode, mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_LIMIT);
    let detail = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            let errors = v.get("errors")?.as_array()?;
            let parts: Vec<String> = errors
                .iter()
                .map(|e| {
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                    let msg = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
                    match (code.is_empty(), msg.is_empty()) {
                        (false, false) => format!("{}: {msg}", code.to_ascii_lowercase()),
                        (false, true) => code.to_ascii_lowercase(),
                        _ => msg.to_string(),
                    }
                })
                .collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        })
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&body)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .chars()
                .take(200)
                .collect()
        });
    if detail.is_empty() {
        status.to_string()
    } else {
        format!("{status}: {detail}")
    }
}

/// `Retry-After` as a wait from `now`: delta-seconds or an HTTP-date (IMF-fixdate,
/// RFC 850 or asctime), capped at [`MAX_RETRY_AFTER`]. A date in the past is 0.
pub(super) fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let when = parse_http_date(value)?;
        when.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

fn parse_http_date(value: &str) -> Option<SystemTime> {
    use chrono::{NaiveDateTime, TimeZone, Utc};
    let utc = if let Ok(d) = chrono::DateTime::parse_from_rfc2822(value) {
        d.with_timezone(&Utc)
    } else {
        // RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime
        // ("Sun Nov  6 08:49:37 1994").
        let naive = NaiveDateTime::parse_from_str(value, "%A, %d-%b-%y %H:%M:%S GMT")
            .or_else(|_| NaiveDateTime::parse_from_str(value, "%a %b %e %H:%M:%S %Y"))
            .ok()?;
        Utc.from_utc_datetime(&naive)
    };
    let secs = u64::try_from(utc.timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// The first byte of a `Content-Range: bytes <first>-<last>/<total>`.
fn content_range_start(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

/// An error and its sources, "a: b: c", skipping repeats (reqwest's top-level
/// message alone says nothing about what went wrong).
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(name: reqwest::header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // 1994-11-06 08:49:37
        let wait = |v: &str| parse_retry_after(&headers(RETRY_AFTER, v), now);
        assert_eq!(wait("1"), Some(Duration::from_secs(1)));
        assert_eq!(wait("3600"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            wait("Sun, 06 Nov 1994 08:49:47 GMT"),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            wait("Sunday, 06-Nov-94 08:49:39 GMT"),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            wait("Sun Nov  6 08:49:42 1994"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(wait("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(wait("soon"), None);
        assert_eq!(parse_retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn content_range() {
        let start = |v: &str| content_range_start(&headers(CONTENT_RANGE, v));
        assert_eq!(start("bytes 100-199/200"), Some(100));
        assert_eq!(start("bytes 0-0/*"), Some(0));
        assert_eq!(start("items 1-2/3"), None);
    }

    #[test]
    fn mirror_urls_carry_the_namespace() {
        let digest = Digest::sha256_of(b"x");
        let mut r = Reference::with_tag("docker.io".into(), "library/alpine".into(), "3".into());
        assert_eq!(
            blob_url("https", &r, &digest),
            format!("https://index.docker.io/v2/library/alpine/blobs/{digest}")
        );
        r.set_mirror_registry("127.0.0.1:5000".into());
        assert_eq!(
            blob_url("http", &r, &digest),
            format!("http://127.0.0.1:5000/v2/library/alpine/blobs/{digest}?ns=docker.io")
        );
    }
}
