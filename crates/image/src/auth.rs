//! Registry credentials the way docker keeps them, so `docker login` and
//! `coracle login` share one file: `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`) with `auths` entries, plus credential helpers
//! (`credsStore`, `credHelpers`) run as `docker-credential-<name> get|store|erase`.
//! [`login`] verifies credentials against the registry before saving them.

use crate::config::RegistryConfig;
use base64::Engine as _;
use coracle_core::ErrorKind;
use serde_json::{Map, Value};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The key docker uses for Docker Hub in `auths` and with credential helpers.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("docker config {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("docker config {path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("docker config {path}: entry {key:?}: invalid auth field: {reason}")]
    BadAuthField {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error("credential helper docker-credential-{helper} {action} for {registry}: {message}")]
    Helper {
        helper: String,
        action: &'static str,
        registry: String,
        message: String,
    },
    #[error("Not logged in to {0}")]
    NotLoggedIn(String),
    #[error("login to {registry}: unauthorized: incorrect username or password")]
    Unauthorized { registry: String },
}

impl AuthError {
    /// Wrong or missing credentials are the user's to fix: InvalidArgument (the CLI
    /// exits 1 as docker does). A failing helper or unreadable config is Internal;
    /// `logout` without a login is NotFound.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AuthError::Unauthorized { .. } => ErrorKind::InvalidArgument,
            AuthError::NotLoggedIn(_) => ErrorKind::NotFound,
            AuthError::Json { .. } | AuthError::BadAuthField { .. } => ErrorKind::InvalidArgument,
            AuthError::Io { .. } | AuthError::Helper { .. } => ErrorKind::Internal,
        }
    }
}

type Result<T> = std::result::Result<T, crate::ImageError>;

/// A user's credentials for one registry. When `identity_token` is set, it is an
/// OAuth refresh token (docker's `identitytoken`, or a helper's `<token>` user).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Registry host as docker normalises it: scheme and path dropped, Docker Hub's
/// aliases collapsed to `docker.io`.
pub fn normalize_registry(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

/// The key a registry's credentials are stored under (docker's serverAddress).
pub fn config_key(registry: &str) -> String {
    let host = normalize_registry(registry);
    if host == "docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        host
    }
}

/// A docker client configuration directory.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    dir: PathBuf,
    helper_path: Option<OsString>,
}

impl DockerConfig {
    /// `$DOCKER_CONFIG`, else `$HOME/.docker`.
    pub fn from_env() -> DockerConfig {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
                PathBuf::from(home).join(".docker")
            });
        DockerConfig::at(&dir)
    }

    pub fn at(dir: &Path) -> DockerConfig {
        DockerConfig {
            dir: dir.to_path_buf(),
            helper_path: None,
        }
    }

    /// Look up `docker-credential-*` helpers in this `PATH` instead of the process's.
    pub fn with_helper_path(mut self, path: impl Into<OsString>) -> DockerConfig {
        self.helper_path = Some(path.into());
        self
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    fn read(&self) -> Result<Map<String, Value>> {
        let path = self.path();
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(source) => return Err(AuthError::Io { path, source }.into()),
        };
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(&text) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(AuthError::Json {
                path,
                source: serde::de::Error::custom("expected a JSON object"),
            }
            .into()),
            Err(source) => Err(AuthError::Json { path, source }.into()),
        }
    }

    fn write(&self, doc: &Map<String, Value>) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path();
        let io = |source| AuthError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let mut tmp = tempfile::Builder::new()
            .prefix("config.json.")
            .tempfile_in(&self.dir)
            .map_err(io)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
        let mut text = serde_json::to_vec_pretty(doc).expect("JSON map serialises");
        text.push(b'\n');
        tmp.write_all(&text).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Which credential helper serves `registry`, if any.
    fn helper_for(doc: &Map<String, Value>, registry: &str) -> Option<String> {
        let host = normalize_registry(registry);
        if let Some(Value::Object(helpers)) = doc.get("credHelpers") {
            for (k, v) in helpers {
                if normalize_registry(k) == host {
                    if let Some(name) = v.as_str().filter(|s| !s.is_empty()) {
                        return Some(name.to_string());
                    }
                }
            }
        }
        doc.get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    /// Credentials for `registry` (`docker.io`, `host:port`, or any `https://host/...`
    /// form); `None` when there are none (anonymous access).
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>> {
        let doc = self.read()?;
        if let Some(helper) = Self::helper_for(&doc, registry) {
            if let Some(c) = self.helper_get(&helper, registry)? {
                return Ok(Some(c));
            }
        }
        let host = normalize_registry(registry);
        let Some(Value::Object(auths)) = doc.get("auths") else {
            return Ok(None);
        };
        let key = config_key(registry);
        let entry = auths.get(&key).map(|v| (key.clone(), v)).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| normalize_registry(k) == host)
                .map(|(k, v)| (k.clone(), v))
        });
        let Some((key, Value::Object(entry))) = entry else {
            return Ok(None);
        };
        let s = |f: &str| {
            entry
                .get(f)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (mut username, mut password) = (s("username"), s("password"));
        let auth = s("auth");
        if !auth.is_empty() {
            let bad = |reason: String| AuthError::BadAuthField {
                path: self.path(),
                key: key.clone(),
                reason,
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| bad(format!("not base64: {e}")))?;
            let decoded = String::from_utf8(decoded).map_err(|_| bad("not UTF-8".into()))?;
            let (u, p) = decoded
                .split_once(':')
                .ok_or_else(|| bad("expected base64 of user:password".into()))?;
            username = u.to_string();
            password = p.to_string();
        }
        let identity_token = Some(s("identitytoken")).filter(|t| !t.is_empty());
        if username.is_empty() && password.is_empty() && identity_token.is_none() {
            return Ok(None);
        }
        Ok(Some(Credentials {
            username,
            password,
            identity_token,
        }))
    }

    /// Save credentials (in the helper if one is configured, else in `auths`),
    /// keeping every other key of the file.
    pub fn store(&self, registry: &str, creds: &Credentials) -> Result<()> {
        let mut doc = self.read()?;
        let key = config_key(registry);
        let helper = Self::helper_for(&doc, registry);
        if let Some(helper) = &helper {
            let input = serde_json::json!({
                "ServerURL": key,
                "Username": creds.username,
                "Secret": creds.password,
            });
            self.run_helper(helper, "store", registry, input.to_string().as_bytes())?;
        }
        let auths = doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        let auths = auths.as_object_mut().expect("is an object");
        let host = normalize_registry(registry);
        auths.retain(|k, _| normalize_registry(k) != host);
        let entry = match helper {
            // docker keeps an empty entry so `docker info` lists the registry.
            Some(_) => Map::new(),
            None => {
                let mut m = Map::new();
                let pair = format!("{}:{}", creds.username, creds.password);
                m.insert(
                    "auth".into(),
                    Value::String(base64::engine::general_purpose::STANDARD.encode(pair)),
                );
                m
            }
        };
        auths.insert(key, Value::Object(entry));
        self.write(&doc)
    }

    /// Remove the credentials for `registry`; "Not logged in to HOST" when there are
    /// none.
    pub fn erase(&self, registry: &str) -> Result<()> {
        let mut doc = self.read()?;
        let host = normalize_registry(registry);
        let mut found = false;
        if let Some(Value::Object(auths)) = doc.get_mut("auths") {
            let before = auths.len();
            auths.retain(|k, _| normalize_registry(k) != host);
            found = auths.len() != before;
        }
        if let Some(helper) = Self::helper_for(&doc, registry) {
            if self.helper_get(&helper, registry)?.is_some() {
                self.run_helper(&helper, "erase", registry, config_key(registry).as_bytes())?;
                found = true;
            }
        }
        if !found {
            return Err(AuthError::NotLoggedIn(display_host(registry)).into());
        }
        self.write(&doc)
    }

    fn helper_get(&self, helper: &str, registry: &str) -> Result<Option<Credentials>> {
        let key = config_key(registry);
        let out = match self.run_helper(helper, "get", registry, key.as_bytes()) {
            Ok(o) => o,
            Err(crate::ImageError::Auth(AuthError::Helper { message, .. }))
                if message.contains("credentials not found") =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        #[derive(serde::Deserialize)]
        struct Reply {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let reply: Reply = serde_json::from_slice(&out).map_err(|e| AuthError::Helper {
            helper: helper.to_string(),
            action: "get",
            registry: registry.to_string(),
            message: format!("invalid reply: {e}"),
        })?;
        if reply.username.is_empty() && reply.secret.is_empty() {
            return Ok(None);
        }
        if reply.username == "<token>" {
            return Ok(Some(Credentials {
                username: String::new(),
                password: String::new(),
                identity_token: Some(reply.secret),
            }));
        }
        Ok(Some(Credentials {
            username: reply.username,
            password: reply.secret,
            identity_token: None,
        }))
    }

    fn run_helper(
        &self,
        helper: &str,
        action: &'static str,
        registry: &str,
        input: &[u8],
    ) -> Result<Vec<u8>> {
        let fail = |message: String| AuthError::Helper {
            helper: helper.to_string(),
            action,
            registry: registry.to_string(),
            message,
        };
        let mut cmd = Command::new(format!("docker-credential-{helper}"));
        cmd.arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(p) = &self.helper_path {
            cmd.env("PATH", p);
        }
        let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
        {
            let mut stdin = child.stdin.take().expect("stdin is piped");
            // A helper may exit without reading; a broken pipe then is not our error.
            let _ = stdin.write_all(input);
        }
        let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string()
                + String::from_utf8_lossy(&out.stderr).trim();
            return Err(fail(if text.is_empty() {
                format!("exited with {}", out.status)
            } else {
                text
            })
            .into());
        }
        Ok(out.stdout)
    }
}

fn display_host(registry: &str) -> String {
    let host = normalize_registry(registry);
    if host == "docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        host
    }
}

/// `coracle login`: verify the credentials against the registry (GET /v2/ through
/// the registry's auth flow), then save them.
pub async fn login(
    config: &RegistryConfig,
    tls_verify: Option<bool>,
    docker: &DockerConfig,
    registry: &str,
    username: &str,
    password: &str,
) -> Result<()> {
    let registry = normalize_registry(registry);
    let creds = Credentials {
        username: username.to_string(),
        password: password.to_string(),
        identity_token: None,
    };
    let client = crate::RegistryClient::with_docker_config(config, tls_verify, docker.clone())?;
    client.check_login(&registry, &creds).await?;
    docker.store(&registry, &creds)
}

/// `coracle logout`.
pub fn logout(docker: &DockerConfig, registry: &str) -> Result<()> {
    docker.erase(registry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn keys_like_docker() {
        assert_eq!(config_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(config_key("index.docker.io"), DOCKER_HUB_KEY);
        assert_eq!(config_key("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(normalize_registry("https://quay.io/v1/"), "quay.io");
        assert_eq!(normalize_registry(DOCKER_HUB_KEY), "docker.io");
    }

    #[test]
    fn reads_auths_in_every_form() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::json!({
                "auths": {
                    "https://index.docker.io/v1/": {"auth": b64("hub:secret")},
                    "https://quay.io": {"username": "q", "password": "p"},
                    "reg.lan:5000": {"identitytoken": "tok"},
                    "empty.example": {}
                }
            })
            .to_string(),
        )
        .unwrap();
        let dc = DockerConfig::at(dir.path());
        let hub = dc.get("docker.io").unwrap().unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("hub", "secret")
        );
        let q = dc.get("quay.io").unwrap().unwrap();
        assert_eq!((q.username.as_str(), q.password.as_str()), ("q", "p"));
        assert_eq!(
            dc.get("reg.lan:5000")
                .unwrap()
                .unwrap()
                .identity_token
                .as_deref(),
            Some("tok")
        );
        assert!(dc.get("empty.example").unwrap().is_none());
        assert!(dc.get("other.example").unwrap().is_none());
        assert!(DockerConfig::at(&dir.path().join("none"))
            .get("docker.io")
            .unwrap()
            .is_none());
    }

    #[test]
    fn store_preserves_other_keys_and_erase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"psFormat": "table {{.ID}}", "auths": {"other.example": {"auth": "eDp5"}}}"#,
        )
        .unwrap();
        let dc = DockerConfig::at(dir.path());
        let creds = Credentials {
            username: "u".into(),
            password: "p:w".into(),
            identity_token: None,
        };
        dc.store("localhost:5000", &creds).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc["psFormat"], "table {{.ID}}");
        assert_eq!(doc["auths"]["other.example"]["auth"], "eDp5");
        assert_eq!(doc["auths"]["localhost:5000"]["auth"], b64("u:p:w"));
        assert_eq!(dc.get("localhost:5000").unwrap().unwrap(), creds);

        dc.erase("localhost:5000").unwrap();
        assert!(dc.get("localhost:5000").unwrap().is_none());
        let err = dc.erase("localhost:5000").unwrap_err();
        assert_eq!(err.to_string(), "Not logged in to localhost:5000");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc["psFormat"], "table {{.ID}}");
    }

    /// A fake `docker-credential-fake` that keeps one secret in a file.
    fn fake_helper(dir: &Path) -> PathBuf {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let state = dir.join("helper-state");
        let script = format!(
            r#"#!/bin/sh
state="{state}"
case "$1" in
get)
  read -r server
  if [ -f "$state" ] && grep -q "\"ServerURL\":\"$server\"" "$state"; then
    cat "$state"
  else
    echo "credentials not found in native keychain"; exit 1
  fi ;;
store) cat > "$state" ;;
erase) read -r server; rm -f "$state" ;;
*) exit 2 ;;
esac
"#,
            state = state.display()
        );
        let p = bin.join("docker-credential-fake");
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }

    #[test]
    fn credential_helper_get_store_erase() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_helper(dir.path());
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credsStore": "fake", "credHelpers": {"ghcr.io": "missing"}}"#,
        )
        .unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let dc = DockerConfig::at(dir.path()).with_helper_path(path);
        assert!(dc.get("docker.io").unwrap().is_none());
        let creds = Credentials {
            username: "me".into(),
            password: "pw".into(),
            identity_token: None,
        };
        dc.store("docker.io", &creds).unwrap();
        assert_eq!(dc.get("docker.io").unwrap().unwrap(), creds);
        let file = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        assert!(
            !file.contains("pw"),
            "secret leaked into config.json: {file}"
        );
        // credHelpers wins over credsStore; a helper that is not installed is an error
        // naming it.
        let err = dc.get("ghcr.io").unwrap_err();
        assert!(
            err.to_string().contains("docker-credential-missing"),
            "{err}"
        );
        dc.erase("docker.io").unwrap();
        assert!(dc.get("docker.io").unwrap().is_none());
        assert!(dc.erase("docker.io").is_err());
    }
}
