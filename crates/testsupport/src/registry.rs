//! A real registry: Debian's `docker-registry` (distribution 2.8) as a child process.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Context, Error, Result};
use crate::token::{TokenIssuer, TOKEN_ISSUER, TOKEN_SERVICE};

/// Path of the registry binary (override with env `CORACLE_TEST_REGISTRY_BIN`).
pub fn registry_bin() -> PathBuf {
    std::env::var_os("CORACLE_TEST_REGISTRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-registry"))
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// How clients authenticate to a [`Registry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryAuth {
    /// Anonymous pull and push.
    None,
    /// HTTP basic auth against an htpasswd (bcrypt) file.
    Htpasswd { user: String, pass: String },
    /// Bearer tokens from an in-process [`TokenIssuer`].
    Token { user: String, pass: String },
}

/// A running `docker-registry serve` on 127.0.0.1:PORT with filesystem storage in a
/// temp dir. Dropping it kills the child (by its pid), waits for it and removes the dir.
pub struct Registry {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    auth: RegistryAuth,
    issuer: Option<TokenIssuer>,
}

impl Registry {
    /// No authentication.
    pub fn start() -> Result<Registry> {
        Registry::start_with(RegistryAuth::None)
    }

    /// Basic auth with one user (bcrypt htpasswd made by `htpasswd -Bbn`).
    pub fn start_htpasswd(user: &str, pass: &str) -> Result<Registry> {
        Registry::start_with(RegistryAuth::Htpasswd {
            user: user.into(),
            pass: pass.into(),
        })
    }

    /// Token auth (the Docker Hub flow) with an in-process issuer accepting `user`/`pass`.
    pub fn start_token(user: &str, pass: &str) -> Result<Registry> {
        Registry::start_with(RegistryAuth::Token {
            user: user.into(),
            pass: pass.into(),
        })
    }

    pub fn start_with(auth: RegistryAuth) -> Result<Registry> {
        let dir = tempfile::Builder::new()
            .prefix("coracle-registry-")
            .tempdir()
            .context("registry temp dir")?;
        let storage = dir.path().join("storage");
        fs::create_dir_all(&storage)?;
        let mut issuer = None;
        let auth_yaml = match &auth {
            RegistryAuth::None => String::new(),
            RegistryAuth::Htpasswd { user, pass } => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, pass])
                    .output()
                    .context("run htpasswd -Bbn (apache2-utils)")?;
                if !out.status.success() {
                    return Err(Error::new(format!(
                        "htpasswd failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    )));
                }
                let file = dir.path().join("htpasswd");
                fs::write(&file, &out.stdout)?;
                format!(
                    "auth:\n  htpasswd:\n    realm: coracle-test-realm\n    path: {}\n",
                    file.display()
                )
            }
            RegistryAuth::Token { user, pass } => {
                let iss = TokenIssuer::start(user, pass)?;
                let bundle = dir.path().join("token-root.pem");
                fs::write(&bundle, iss.cert_pem())?;
                let yaml = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    iss.realm(),
                    bundle.display()
                );
                issuer = Some(iss);
                yaml
            }
        };
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let port = free_port()?;
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: coracle-test-secret\n  headers:\n    X-Content-Type-Options: [nosniff]\n{auth_yaml}",
                    storage.display()
                ),
            )?;
            let log_path = dir.path().join("registry.log");
            let log = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)?;
            let child = Command::new(registry_bin())
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .env_remove("REGISTRY_HTTP_ADDR")
                .spawn()
                .context(format!("spawn {}", registry_bin().display()))?;
            let mut child = child;
            let host = format!("127.0.0.1:{port}");
            match wait_ready(&mut child, &host, Duration::from_secs(15)) {
                Ok(()) => {
                    return Ok(Registry {
                        child: Some(child),
                        port,
                        dir,
                        auth,
                        issuer,
                    })
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = fs::read_to_string(&log_path).unwrap_or_default();
                    last_err = format!("{e}\n--- registry log ---\n{log}");
                }
            }
        }
        Err(Error::new(format!("registry did not start: {last_err}")))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Child::kill signals this child's own pid (SIGKILL).
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The registry's combined stdout/stderr so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn auth(&self) -> &RegistryAuth {
        &self.auth
    }

    /// The (user, pass) clients should use, if the registry wants credentials.
    pub fn credentials(&self) -> Option<(String, String)> {
        match &self.auth {
            RegistryAuth::None => None,
            RegistryAuth::Htpasswd { user, pass } | RegistryAuth::Token { user, pass } => {
                Some((user.clone(), pass.clone()))
            }
        }
    }

    /// The token issuer's realm URL (token auth only).
    pub fn token_realm(&self) -> Option<String> {
        self.issuer.as_ref().map(|i| i.realm())
    }

    /// Number of `/token` requests the issuer served (0 without token auth).
    pub fn token_requests(&self) -> usize {
        self.issuer
            .as_ref()
            .map(|i| i.token_requests())
            .unwrap_or(0)
    }

    /// The pid of the registry child process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_ready(child: &mut Child, host: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(Error::new(format!("registry exited early: {status}")));
        }
        if let Some(200 | 401) = probe_v2(host) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::new(format!(
                "registry on {host} did not answer GET /v2/ within {timeout:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Status code of `GET /v2/` on `host`, or None if nothing answered.
fn probe_v2(host: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect_timeout(&host.parse().ok()?, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .ok()?;
    let mut buf = [0u8; 32];
    let n = s.read(&mut buf).ok()?;
    let line = std::str::from_utf8(&buf[..n]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}
