//! A small blocking registry client (plain HTTP) for pushing fixtures and for checks
//! in tests. Handles 401 with basic auth or the bearer-token flow.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use coracle_core::Digest;

use crate::error::{Error, Result};
use crate::token::{basic_header, percent_encode};

/// A fully read HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::http::header(&self.headers, name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Accept header covering every manifest type the fixtures produce.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// A blocking client for one registry host (`127.0.0.1:PORT`), plain HTTP.
pub struct RegistryClient {
    host: String,
    credentials: Option<(String, String)>,
    agent: ureq::Agent,
    /// Authorization header per scope.
    auth: Mutex<HashMap<String, String>>,
}

impl RegistryClient {
    pub fn new(host: &str, credentials: Option<(&str, &str)>) -> RegistryClient {
        RegistryClient {
            host: host.to_string(),
            credentials: credentials.map(|(u, p)| (u.to_string(), p.to_string())),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(60))
                .redirects(0)
                .build(),
            auth: Mutex::new(HashMap::new()),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// One request without any auth handling. `target` is a path (`/v2/...`) or a full URL.
    pub fn raw(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<HttpResponse> {
        let url = if target.starts_with("http://") || target.starts_with("https://") {
            target.to_string()
        } else {
            format!("http://{}{}", self.host, target)
        };
        let mut req = self.agent.request(method, &url);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => return Err(Error::new(format!("{method} {url}: {e}"))),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .flat_map(|n| {
                resp.all(&n)
                    .into_iter()
                    .map(|v| (n.clone(), v.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut body = Vec::new();
        resp.into_reader()
            .take(1 << 30)
            .read_to_end(&mut body)
            .map_err(|e| Error::new(format!("{method} {url}: reading body: {e}")))?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    /// A request on `repo` with auth: answers a 401 with basic credentials or a bearer
    /// token for `repository:REPO:pull,push`, then retries once.
    pub fn request(
        &self,
        method: &str,
        target: &str,
        repo: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<HttpResponse> {
        let scope = format!("repository:{repo}:pull,push");
        let cached = self.auth.lock().unwrap().get(&scope).cloned();
        let mut hs: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &cached {
            hs.push(("Authorization", a));
        }
        let resp = self.raw(method, target, &hs, body)?;
        if resp.status != 401 {
            return Ok(resp);
        }
        let challenge = resp.header("www-authenticate").unwrap_or("").to_string();
        let authz = self.authorize(&challenge, &scope)?;
        self.auth.lock().unwrap().insert(scope, authz.clone());
        let mut hs: Vec<(&str, &str)> = headers.to_vec();
        hs.push(("Authorization", &authz));
        self.raw(method, target, &hs, body)
    }

    /// Turns a WWW-Authenticate challenge into an Authorization header value.
    pub fn authorize(&self, challenge: &str, default_scope: &str) -> Result<String> {
        let (scheme, params) = parse_challenge(challenge);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => {
                let (u, p) = self
                    .credentials
                    .as_ref()
                    .ok_or_else(|| Error::new("registry wants basic auth; no credentials"))?;
                Ok(basic_header(u, p))
            }
            "bearer" => {
                let realm = params.get("realm").ok_or_else(|| {
                    Error::new(format!("bearer challenge without realm: {challenge}"))
                })?;
                let mut url = format!("{realm}?");
                if let Some(service) = params.get("service") {
                    url.push_str(&format!("service={}&", percent_encode(service)));
                }
                let scope = params
                    .get("scope")
                    .map(|s| s.as_str())
                    .unwrap_or(default_scope);
                // Ask for pull,push on the repository even if the challenge only named pull.
                let scope = if scope.starts_with("repository:") {
                    default_scope
                } else {
                    scope
                };
                url.push_str(&format!("scope={}", percent_encode(scope)));
                let basic = self.credentials.as_ref().map(|(u, p)| basic_header(u, p));
                let mut hs = Vec::new();
                if let Some(b) = &basic {
                    hs.push(("Authorization", b.as_str()));
                }
                let resp = self.raw("GET", &url, &hs, None)?;
                if resp.status != 200 {
                    return Err(Error::new(format!(
                        "token request {url}: {} {}",
                        resp.status,
                        resp.text()
                    )));
                }
                let v: serde_json::Value = serde_json::from_slice(&resp.body)?;
                let token = v
                    .get("token")
                    .or_else(|| v.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| Error::new("token response without token"))?;
                Ok(format!("Bearer {token}"))
            }
            _ => Err(Error::new(format!("unsupported challenge: {challenge:?}"))),
        }
    }

    /// Uploads a blob (POST, then monolithic PUT); returns its digest.
    pub fn push_blob(&self, repo: &str, data: &[u8]) -> Result<Digest> {
        let digest = Digest::sha256_of(data);
        let head = self.request(
            "HEAD",
            &format!("/v2/{repo}/blobs/{digest}"),
            repo,
            &[],
            None,
        )?;
        if head.status == 200 {
            return Ok(digest);
        }
        let resp = self.request(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            repo,
            &[("Content-Length", "0")],
            Some(b""),
        )?;
        if resp.status != 202 {
            return Err(Error::new(format!(
                "start upload to {repo}: {} {}",
                resp.status,
                resp.text()
            )));
        }
        let location = resp
            .header("location")
            .ok_or_else(|| Error::new("upload without Location"))?
            .to_string();
        let sep = if location.contains('?') { '&' } else { '?' };
        let target = format!(
            "{location}{sep}digest={}",
            percent_encode(&digest.to_string())
        );
        let resp = self.request(
            "PUT",
            &target,
            repo,
            &[("Content-Type", "application/octet-stream")],
            Some(data),
        )?;
        if resp.status != 201 {
            return Err(Error::new(format!(
                "finish upload of {digest} to {repo}: {} {}",
                resp.status,
                resp.text()
            )));
        }
        Ok(digest)
    }

    /// PUTs a manifest with `media_type` as Content-Type; returns the registry's digest.
    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Result<Digest> {
        let resp = self.request(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            repo,
            &[("Content-Type", media_type)],
            Some(body),
        )?;
        if resp.status != 201 {
            return Err(Error::new(format!(
                "put manifest {repo}:{reference}: {} {}",
                resp.status,
                resp.text()
            )));
        }
        Ok(Digest::sha256_of(body))
    }

    /// GETs a manifest; returns (Content-Type, body).
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Result<(String, Vec<u8>)> {
        let resp = self.request(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            repo,
            &[("Accept", MANIFEST_ACCEPT)],
            None,
        )?;
        if resp.status != 200 {
            return Err(Error::new(format!(
                "get manifest {repo}:{reference}: {} {}",
                resp.status,
                resp.text()
            )));
        }
        let ct = resp.header("content-type").unwrap_or("").to_string();
        Ok((ct, resp.body))
    }

    /// GETs a blob and checks its digest.
    pub fn get_blob(&self, repo: &str, digest: &Digest) -> Result<Vec<u8>> {
        let resp = self.request(
            "GET",
            &format!("/v2/{repo}/blobs/{digest}"),
            repo,
            &[],
            None,
        )?;
        if resp.status != 200 {
            return Err(Error::new(format!(
                "get blob {repo}@{digest}: {} {}",
                resp.status,
                resp.text()
            )));
        }
        let got = Digest::sha256_of(&resp.body);
        if &got != digest {
            return Err(Error::new(format!("blob {digest} arrived as {got}")));
        }
        Ok(resp.body)
    }
}

/// Splits `Bearer realm="...",service="...",scope="..."` into scheme and parameters.
pub fn parse_challenge(value: &str) -> (String, HashMap<String, String>) {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else {
            break;
        };
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let (v, after) = if let Some(stripped) = after.strip_prefix('"') {
            match stripped.find('"') {
                Some(end) => (&stripped[..end], &stripped[end + 1..]),
                None => (stripped, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(k, v.to_string());
        rest = after.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
    }
    (scheme.to_string(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="http://127.0.0.1:1/token",service="coracle-test",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(p["realm"], "http://127.0.0.1:1/token");
        assert_eq!(p["service"], "coracle-test");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
    }
}
