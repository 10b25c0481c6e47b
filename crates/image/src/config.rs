//! Registry settings from `/etc/coracle/registries.toml` (or `$CORACLE_CONFIG`):
//! which registries may be reached over plain HTTP, pull-through mirrors, and download
//! limits. A missing file means defaults. Also the one place that decides
//! "plain HTTP or HTTPS" for a registry host, with docker's loopback exception.
//!
//! ```toml
//! insecure = ["myregistry.local:5000"]
//! max_concurrent_downloads = 3
//! retries = 5
//! [mirrors]
//! "docker.io" = ["mirror.example:5000"]
//! [limits]
//! max_layer_size = "64GiB"
//! max_layer_ratio = 100
//! layer_ratio_grace = "1GiB"
//! ```

use coracle_core::ErrorKind;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/coracle/registries.toml";
pub const CONFIG_ENV: &str = "CORACLE_CONFIG";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("registry config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("registry config {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
}

impl ConfigError {
    /// A config file we cannot read or parse is the user's to fix: InvalidArgument.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// `host[:port]` entries that are reached over plain HTTP.
    pub insecure: Vec<String>,
    /// Registry host -> mirror hosts, tried in order before the registry itself.
    pub mirrors: BTreeMap<String, Vec<String>>,
    /// Layers downloaded at once per pull (docker's default is 3).
    pub max_concurrent_downloads: usize,
    /// How often a failed blob download is retried (with backoff and Range resume).
    pub retries: u32,
    /// How far a layer may expand when unpacked (pull and load).
    pub limits: LayerLimits,
}

/// `[limits]`: ceilings on a layer's expansion, against decompression bombs. The
/// defaults and their reasons are those of `coracle_rootfs::UnpackLimits`; 0 turns a
/// limit off. Sizes are bytes, or strings with docker's binary units ("64GiB", "512m").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LayerLimits {
    /// Most bytes one layer's uncompressed tar stream may have.
    #[serde(deserialize_with = "de_size")]
    pub max_layer_size: u64,
    /// Most uncompressed bytes per compressed byte of a layer blob...
    pub max_layer_ratio: u64,
    /// ...enforced only once a layer is past this many uncompressed bytes.
    #[serde(deserialize_with = "de_size")]
    pub layer_ratio_grace: u64,
}

const GIB: u64 = 1 << 30;

impl Default for LayerLimits {
    fn default() -> Self {
        LayerLimits {
            max_layer_size: 64 * GIB,
            max_layer_ratio: 100,
            layer_ratio_grace: GIB,
        }
    }
}

impl LayerLimits {
    /// The most uncompressed bytes a layer whose blob has `compressed` bytes may have,
    /// and whether the ratio (rather than the size ceiling) sets it; `None`: no limit.
    /// The same rule as `coracle_rootfs::UnpackLimits::budget`.
    pub fn budget(&self, compressed: Option<u64>) -> Option<(u64, bool)> {
        let by_size = (self.max_layer_size > 0).then_some((self.max_layer_size, false));
        let by_ratio = match (self.max_layer_ratio, compressed) {
            (0, _) | (_, None) => None,
            (ratio, Some(c)) => Some((c.saturating_mul(ratio).max(self.layer_ratio_grace), true)),
        };
        match (by_size, by_ratio) {
            (Some(s), Some(r)) => Some(if r.0 < s.0 { r } else { s }),
            (s, r) => s.or(r),
        }
    }
}

/// A size as bytes (integer) or a string with docker's units (`RAMInBytes`: b, k, m,
/// g, t, optionally followed by "b" or "ib", all powers of 1024, case-insensitive).
fn de_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match <Size as serde::Deserialize>::deserialize(d)? {
        Size::Bytes(n) => Ok(n),
        Size::Text(t) => parse_size(&t).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid size {t:?}: use bytes or a number with a unit such as \"64GiB\" or \"512m\""
            ))
        }),
    }
}

fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = (&t[..split], t[split..].trim().to_ascii_lowercase());
    let shift = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" if unit.is_empty() || unit == "b" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return None,
    };
    let value: f64 = num.parse().ok()?;
    let bytes = value * (1u64 << shift) as f64;
    (value >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure: Vec::new(),
            mirrors: BTreeMap::new(),
            max_concurrent_downloads: 3,
            retries: 5,
            limits: LayerLimits::default(),
        }
    }
}

impl RegistryConfig {
    /// Load from `$CORACLE_CONFIG`, else `/etc/coracle/registries.toml`; a missing
    /// file gives the defaults.
    pub fn load() -> crate::Result<RegistryConfig> {
        Self::load_from(&Self::default_path())
    }

    /// `$CORACLE_CONFIG`, else `/etc/coracle/registries.toml`.
    pub fn default_path() -> PathBuf {
        std::env::var_os(CONFIG_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    }

    pub fn load_from(path: &Path) -> crate::Result<RegistryConfig> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::parse(&text, path)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RegistryConfig::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            }
            .into()),
        }
    }

    /// Parse TOML text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<RegistryConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(e),
        })
    }

    /// Whether `registry` (`host[:port]`) is reached over plain HTTP: when listed
    /// insecure (with or without the port), when it is a loopback address or
    /// `localhost` (as docker does), or when the caller turned TLS verification off.
    pub fn is_insecure(&self, registry: &str, tls_verify: Option<bool>) -> bool {
        if tls_verify == Some(false) {
            return true;
        }
        let host = host_of(registry);
        if host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            if ip.is_loopback() {
                return true;
            }
        }
        self.insecure
            .iter()
            .any(|entry| entry == registry || (!entry.contains(':') && entry == host))
    }

    /// Mirrors configured for `registry`, in order.
    pub fn mirrors_for(&self, registry: &str) -> &[String] {
        self.mirrors.get(registry).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// The host part of `host[:port]` (IPv6 literals keep their brackets).
fn host_of(registry: &str) -> &str {
    if registry.starts_with('[') {
        match registry.find(']') {
            Some(i) => &registry[..=i],
            None => registry,
        }
    } else {
        registry.split(':').next().unwrap_or(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_missing_file() {
        let c = RegistryConfig::load_from(Path::new("/nonexistent/registries.toml")).unwrap();
        assert_eq!(c, RegistryConfig::default());
        assert_eq!(c.max_concurrent_downloads, 3);
        assert_eq!(c.retries, 5);
    }

    #[test]
    fn parses_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.toml");
        std::fs::write(
            &p,
            r#"
insecure = ["reg.lan:5000", "plain.example"]
max_concurrent_downloads = 6
[mirrors]
"docker.io" = ["mirror.example:5000", "m2.example"]
"#,
        )
        .unwrap();
        let c = RegistryConfig::load_from(&p).unwrap();
        assert_eq!(c.insecure, vec!["reg.lan:5000", "plain.example"]);
        assert_eq!(c.max_concurrent_downloads, 6);
        assert_eq!(c.retries, 5);
        assert_eq!(
            c.mirrors_for("docker.io"),
            ["mirror.example:5000", "m2.example"]
        );
        assert!(c.mirrors_for("quay.io").is_empty());
    }

    #[test]
    fn bad_file_is_an_error_naming_it() {
        let err = RegistryConfig::parse("insecure = 3", Path::new("/x/r.toml")).unwrap_err();
        assert!(err.to_string().contains("/x/r.toml"), "{err}");
        assert!(RegistryConfig::parse("bogus = 1", Path::new("r")).is_err());
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn limits_from_the_file() {
        assert_eq!(
            RegistryConfig::default().limits,
            LayerLimits {
                max_layer_size: 64 << 30,
                max_layer_ratio: 100,
                layer_ratio_grace: 1 << 30,
            }
        );
        let c = RegistryConfig::parse(
            "[limits]\nmax_layer_size = \"2GiB\"\nmax_layer_ratio = 0\nlayer_ratio_grace = 1048576\n",
            Path::new("r"),
        )
        .unwrap();
        assert_eq!(
            c.limits,
            LayerLimits {
                max_layer_size: 2 << 30,
                max_layer_ratio: 0,
                layer_ratio_grace: 1 << 20,
            }
        );
        // Keys left out keep their defaults.
        let c = RegistryConfig::parse("[limits]\nmax_layer_ratio = 50\n", Path::new("r")).unwrap();
        assert_eq!(c.limits.max_layer_ratio, 50);
        assert_eq!(c.limits.max_layer_size, 64 << 30);
        let err = RegistryConfig::parse(
            "[limits]\nmax_layer_size = \"lots\"\n",
            Path::new("/x/r.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("invalid size \"lots\""), "{err}");
        assert!(RegistryConfig::parse("[limits]\nmax_size = 1\n", Path::new("r")).is_err());
    }

    #[test]
    fn sizes_with_docker_units() {
        for (text, want) in [
            ("0", Some(0)),
            ("512", Some(512)),
            ("512b", Some(512)),
            ("4k", Some(4096)),
            ("4KiB", Some(4096)),
            ("4kb", Some(4096)),
            ("1.5g", Some(3 << 29)),
            ("64GiB", Some(64 << 30)),
            (" 2 TB ", Some(2 << 40)),
            ("1m", Some(1 << 20)),
            ("x", None),
            ("10q", None),
            ("-1g", None),
            ("", None),
        ] {
            assert_eq!(parse_size(text), want, "{text:?}");
        }
    }

    #[test]
    fn insecure_decision() {
        let c = RegistryConfig::parse(
            r#"insecure = ["reg.lan:5000", "plain.example"]"#,
            Path::new("r"),
        )
        .unwrap();
        assert!(c.is_insecure("reg.lan:5000", None));
        assert!(!c.is_insecure("reg.lan:5001", None));
        assert!(!c.is_insecure("reg.lan", None));
        assert!(c.is_insecure("plain.example", None));
        assert!(c.is_insecure("plain.example:8080", None));
        assert!(c.is_insecure("127.0.0.1:5000", None));
        assert!(c.is_insecure("127.1.2.3", None));
        assert!(c.is_insecure("localhost", None));
        assert!(c.is_insecure("localhost:5000", None));
        assert!(c.is_insecure("[::1]:5000", None));
        assert!(!c.is_insecure("docker.io", None));
        assert!(!c.is_insecure("128.0.0.1:5000", None));
        assert!(!c.is_insecure("localhost.example.com", None));
        assert!(c.is_insecure("docker.io", Some(false)));
        assert!(!c.is_insecure("docker.io", Some(true)));
    }
}
