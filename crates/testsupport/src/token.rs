//! A token issuer for the registry token-auth flow (what Docker Hub's auth.docker.io does).

use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use crate::error::{Context, Error, Result};
use crate::http::{self, Server};

/// The `service` the registry is configured with (and the token's `aud`).
pub const TOKEN_SERVICE: &str = "coracle-test";
/// The `iss` claim of every issued token.
pub const TOKEN_ISSUER: &str = "coracle-test-issuer";

/// An in-process token server on 127.0.0.1:free port serving `GET /token`.
///
/// Valid basic credentials get the requested actions; anonymous requests get a token
/// with no access; wrong credentials get 401.
pub struct TokenIssuer {
    server: Server,
    requests: Arc<AtomicUsize>,
    cert_pem: String,
}

struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    cert_der_b64: String,
    user: String,
    pass: String,
}

impl TokenIssuer {
    /// Starts an issuer accepting `user`/`pass`.
    pub fn start(user: &str, pass: &str) -> Result<TokenIssuer> {
        let key_pair = rcgen::KeyPair::generate().context("generate token signing key")?;
        let params = rcgen::CertificateParams::new(vec!["coracle-test-issuer".to_string()])
            .context("certificate params")?;
        let cert = params
            .self_signed(&key_pair)
            .context("self-sign certificate")?;
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &key_pair.serialize_der(),
            &rng,
        )
        .map_err(|e| Error::new(format!("load signing key: {e}")))?;
        let signer = Arc::new(Signer {
            key,
            rng,
            cert_der_b64: STANDARD.encode(cert.der()),
            user: user.to_string(),
            pass: pass.to_string(),
        });
        let requests = Arc::new(AtomicUsize::new(0));
        let req2 = requests.clone();
        let server = Server::start("token-issuer", move |conn| {
            let _ = handle(conn, &signer, &req2);
        })?;
        Ok(TokenIssuer {
            server,
            requests,
            cert_pem: cert.pem(),
        })
    }

    /// `http://127.0.0.1:PORT/token`
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.server.addr())
    }

    /// PEM of the self-signed certificate (the registry's rootcertbundle).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// How many `/token` requests were served (any outcome).
    pub fn token_requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn handle(conn: TcpStream, signer: &Signer, requests: &AtomicUsize) -> std::io::Result<()> {
    let mut reader = http::buffered(&conn)?;
    let Some(req) = http::read_request(&mut reader)? else {
        return Ok(());
    };
    let mut w = conn;
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    if path != "/token" {
        return http::write_response(&mut w, 404, &[], b"not found\n");
    }
    requests.fetch_add(1, Ordering::SeqCst);
    let mut service = String::new();
    let mut scopes = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "service" => service = v,
            "scope" => scopes.push(v),
            _ => {}
        }
    }
    let (subject, authorized) = match req.header("authorization") {
        None => (String::new(), false),
        Some(auth) => match parse_basic(auth) {
            Some((u, p)) if u == signer.user && p == signer.pass => (u, true),
            _ => {
                let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"incorrect username or password"}]}"#;
                return http::write_response(
                    &mut w,
                    401,
                    &[
                        ("Content-Type", "application/json".into()),
                        (
                            "WWW-Authenticate",
                            "Basic realm=\"coracle-test-token\"".into(),
                        ),
                    ],
                    body,
                );
            }
        },
    };
    let mut access = Vec::new();
    if authorized {
        for scope in &scopes {
            // repository:NAME:ACTIONS (NAME may contain ':' only with a port; not here).
            let mut parts = scope.splitn(3, ':');
            let (Some(typ), Some(name), Some(actions)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let actions: Vec<&str> = actions
                .split(',')
                .filter(|a| matches!(*a, "pull" | "push" | "delete" | "*"))
                .collect();
            access.push(serde_json::json!({"type": typ, "name": name, "actions": actions}));
        }
    }
    if service.is_empty() {
        service = TOKEN_SERVICE.to_string();
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let jti = format!("{:x}{:x}", now, requests.load(Ordering::SeqCst));
    let token = match sign(signer, &subject, &service, &access, now, &jti) {
        Ok(t) => t,
        Err(e) => return http::write_response(&mut w, 500, &[], e.to_string().as_bytes()),
    };
    let issued_at = rfc3339(now);
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": 300,
        "issued_at": issued_at,
    });
    http::write_response(
        &mut w,
        200,
        &[("Content-Type", "application/json".into())],
        body.to_string().as_bytes(),
    )
}

fn sign(
    signer: &Signer,
    subject: &str,
    service: &str,
    access: &[serde_json::Value],
    now: u64,
    jti: &str,
) -> Result<String> {
    let header = serde_json::json!({
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [signer.cert_der_b64],
    });
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER,
        "sub": subject,
        "aud": service,
        "exp": now + 300,
        "nbf": now.saturating_sub(10),
        "iat": now,
        "jti": jti,
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = signer
        .key
        .sign(&signer.rng, signing_input.as_bytes())
        .map_err(|e| Error::new(format!("sign token: {e}")))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(sig.as_ref())
    ))
}

pub(crate) fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let s = String::from_utf8(decoded).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

pub(crate) fn basic_header(user: &str, pass: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Seconds since the epoch as an RFC 3339 UTC timestamp.
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn percent_roundtrip() {
        let s = "repository:lib/busy box:pull,push";
        assert_eq!(percent_decode(&percent_encode(s)), s);
    }
}
