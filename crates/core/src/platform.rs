//! Platforms (`os/arch[/variant]`) and how manifest-list entries are matched against them.

use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlatformError {
    #[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/arm64")]
    Malformed(String),
}

impl PlatformError {
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::InvalidArgument
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform this binary runs on, in OCI (GOARCH) spelling.
    pub fn host() -> Platform {
        let architecture = normalize_arch(std::env::consts::ARCH).to_string();
        let variant = match architecture.as_str() {
            "arm64" => Some("v8".to_string()),
            "arm" => Some("v7".to_string()),
            _ => None,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture,
            variant,
        }
    }

    pub fn parse(s: &str) -> Result<Platform, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || PlatformError::Malformed(s.to_string());
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let (os, arch, variant) = match parts.as_slice() {
            [os, arch] => (*os, *arch, None),
            [os, arch, variant] => (*os, *arch, Some(variant.to_string())),
            _ => return Err(bad()),
        };
        let architecture = normalize_arch(arch).to_string();
        let variant = match (architecture.as_str(), variant) {
            ("arm64", None) => Some("v8".to_string()),
            (_, v) => v,
        };
        Ok(Platform {
            os: os.to_lowercase(),
            architecture,
            variant,
        })
    }

    /// Whether a manifest-list entry for `candidate` can run here. Variants are
    /// compared only when both sides name one; arm64's implied `v8` matches none.
    pub fn matches(&self, candidate: &Platform) -> bool {
        if self.os != candidate.os || self.architecture != normalize_arch(&candidate.architecture) {
            return false;
        }
        match (&self.variant, &candidate.variant) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        }
    }

    /// Attestation and other non-image entries in indexes say `unknown/unknown`.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" || self.architecture == "unknown"
    }
}

fn normalize_arch(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" | "x86" => "386",
        "armhf" | "armel" => "arm",
        other => other,
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/arm64").unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(
            Platform::parse("linux/arm/v6").unwrap().to_string(),
            "linux/arm/v6"
        );
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//v7").is_err());
    }

    #[test]
    fn matching() {
        let arm64 = Platform::parse("linux/arm64").unwrap();
        let entry = Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: None,
        };
        assert!(arm64.matches(&entry));
        let v7 = Platform::parse("linux/arm/v7").unwrap();
        assert!(!v7.matches(&Platform::parse("linux/arm/v6").unwrap()));
        assert!(!Platform::parse("linux/amd64")
            .unwrap()
            .matches(&Platform::parse("windows/amd64").unwrap()));
        assert!(Platform::host().matches(&Platform::host()));
    }
}
