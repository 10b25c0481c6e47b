//! Image references with docker's normalisation rules:
//! `alpine` is `docker.io/library/alpine:latest`, `host:5000/ns/repo:tag`,
//! `localhost/x`, `repo@sha256:...`.

use crate::digest::Digest;
use std::fmt;
use std::str::FromStr;

pub const DOCKER_HUB: &str = "docker.io";
const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format: {0:?} is empty")]
    Empty(String),
    #[error("invalid reference format: repository name {0:?} must be lowercase")]
    Uppercase(String),
    #[error("invalid reference format: {reference:?}: {reason}")]
    Invalid { reference: String, reason: String },
    #[error("invalid reference format: {reference:?}: {source}")]
    Digest {
        reference: String,
        source: crate::DigestError,
    },
}

impl ReferenceError {
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::InvalidArgument
    }
}

/// A fully-qualified image reference. Without an explicit tag or digest the tag is
/// `latest`, as docker does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageReference {
    pub fn registry(&self) -> &str {
        &self.registry
    }
    pub fn repository(&self) -> &str {
        &self.repository
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, the name tags and repo digests are grouped under.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as docker shows it: `alpine` for `docker.io/library/alpine`,
    /// `user/app` for `docker.io/user/app`, unchanged elsewhere.
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .filter(|r| !r.contains('/'))
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.name()
        }
    }

    /// Same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<ImageReference, ReferenceError> {
        validate_tag(tag, tag)?;
        Ok(ImageReference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// Same repository pinned to a digest (and no tag).
    pub fn with_digest(&self, digest: Digest) -> ImageReference {
        ImageReference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// `name:tag`, the key a tag is stored under; `None` for digest-only references.
    pub fn tagged_name(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{}", self.name(), t))
    }

    /// Parse, filling in docker's defaults (registry, `library/`, tag `latest`).
    pub fn parse(s: &str) -> Result<ImageReference, ReferenceError> {
        Self::parse_inner(s, true)
    }

    /// Parse without adding the `latest` tag (for commands such as `rmi sha256:...`
    /// that must tell "no tag given" apart).
    pub fn parse_no_default_tag(s: &str) -> Result<ImageReference, ReferenceError> {
        Self::parse_inner(s, false)
    }

    fn parse_inner(s: &str, default_tag: bool) -> Result<ImageReference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty(s.to_string()));
        }
        let invalid = |reason: &str| ReferenceError::Invalid {
            reference: s.to_string(),
            reason: reason.to_string(),
        };
        let (rest, digest) = match s.split_once('@') {
            Some((rest, d)) => {
                let digest = d.parse::<Digest>().map_err(|e| ReferenceError::Digest {
                    reference: s.to_string(),
                    source: e,
                })?;
                (rest, Some(digest))
            }
            None => (s, None),
        };
        // A tag is the part after the last ':' that comes after the last '/'
        // (a ':' before that belongs to a registry port).
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&rest[..i], Some(&rest[i + 1..]))
            }
            None => (rest, None),
        };
        if let Some(t) = tag {
            validate_tag(t, s)?;
        }
        if name.is_empty() {
            return Err(invalid("repository name is empty"));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        validate_registry(&registry, s)?;
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(s.to_string()));
        }
        validate_repository(&repository, s)?;
        if registry.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(invalid(
                "repository name must not be longer than 255 characters",
            ));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) if default_tag => Some(DEFAULT_TAG.to_string()),
            (None, _) => None,
        };
        Ok(ImageReference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

fn validate_tag(tag: &str, reference: &str) -> Result<(), ReferenceError> {
    let ok = !tag.is_empty()
        && tag.len() <= MAX_TAG_LEN
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::Invalid {
            reference: reference.to_string(),
            reason: format!("tag {tag:?} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"),
        })
    }
}

fn validate_registry(registry: &str, reference: &str) -> Result<(), ReferenceError> {
    let (host, port) = match registry.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || registry.starts_with('[') => (h, Some(p)),
        _ => (registry, None),
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[') && host.ends_with(']')
            || host.split('.').all(|l| {
                !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }));
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(ReferenceError::Invalid {
            reference: reference.to_string(),
            reason: format!("registry {registry:?} is not a valid host[:port]"),
        })
    }
}

/// Each path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn validate_repository(repository: &str, reference: &str) -> Result<(), ReferenceError> {
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if is_alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !is_alnum(b[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
            if !ok {
                return false;
            }
        }
        true
    };
    if repository.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(ReferenceError::Invalid {
            reference: reference.to_string(),
            reason: format!("repository {repository:?} has an invalid path component"),
        })
    }
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageReference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageReference::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        ImageReference::parse(s).unwrap().to_string()
    }

    #[test]
    fn docker_defaults() {
        assert_eq!(full("alpine"), "docker.io/library/alpine:latest");
        assert_eq!(full("alpine:3.20"), "docker.io/library/alpine:3.20");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(
            full("index.docker.io/library/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full("localhost/x"), "localhost/x:latest");
        assert_eq!(
            full("localhost:5000/ns/repo:v1"),
            "localhost:5000/ns/repo:v1"
        );
        assert_eq!(full("127.0.0.1:5000/a/b/c"), "127.0.0.1:5000/a/b/c:latest");
        assert_eq!(full("quay.io/podman/hello"), "quay.io/podman/hello:latest");
    }

    #[test]
    fn digests() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = ImageReference::parse(&format!("alpine@{d}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().to_string(), d);
        let r = ImageReference::parse(&format!("alpine:3@{d}")).unwrap();
        assert_eq!(r.tag(), Some("3"));
        assert!(ImageReference::parse("alpine@sha256:123").is_err());
    }

    #[test]
    fn familiar_names() {
        let f = |s: &str| ImageReference::parse(s).unwrap().familiar_name();
        assert_eq!(f("alpine"), "alpine");
        assert_eq!(f("user/app"), "user/app");
        assert_eq!(f("localhost:5000/app"), "localhost:5000/app");
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "Alpine",
            "alpine:",
            "alpine:-x",
            "a//b",
            "-a",
            "a..b",
            "a/b/",
            "host:port/x",
            ":tag",
            "a:b:c",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert!(matches!(
            ImageReference::parse("UPPER"),
            Err(ReferenceError::Uppercase(_))
        ));
    }

    #[test]
    fn no_default_tag() {
        let r = ImageReference::parse_no_default_tag("alpine").unwrap();
        assert_eq!(r.tag(), None);
    }
}
