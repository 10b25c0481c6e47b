//! A fault-injecting HTTP reverse proxy in front of a registry.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::http::{self, Server};

/// A fault applied to blob GETs (`/v2/.../blobs/sha256:...`). Other requests pass through.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Fault {
    /// Pass everything through.
    #[default]
    None,
    /// Send status, headers and `bytes` bytes of the body, then close the connection;
    /// for the next `times` blob GETs.
    DropAfter { bytes: usize, times: usize },
    /// Answer with `code` (e.g. 500, 503) for the next `times` blob GETs.
    Status { code: u16, times: usize },
    /// Answer 429 with `Retry-After: retry_after_secs` for the next `times` blob GETs.
    TooManyRequests { retry_after_secs: u64, times: usize },
    /// Flip one byte in the middle of every blob body, forever.
    Corrupt,
    /// Like `Corrupt`, but only for blob bodies of at least `min_bytes` (layers, not
    /// the small config blob).
    CorruptLarger { min_bytes: usize },
    /// Drop the Range header: answer every blob GET with the full 200 body, forever.
    IgnoreRange,
    /// Send blob bodies at about `bytes_per_sec`, forever (a slow registry, so a test
    /// can act mid-download).
    Throttle { bytes_per_sec: usize },
    /// Announce a `Content-Length` `extra` bytes longer than the blob body that follows
    /// (then close), on every successful blob GET, forever.
    OverstateLength { extra: usize },
}

/// One blob GET as the proxy saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRequest {
    /// `sha256:<hex>` from the path.
    pub digest: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The upstream's status (0 when the proxy answered itself or upstream failed).
    pub status: u16,
}

#[derive(Default)]
struct Shared {
    fault: Mutex<Fault>,
    blob_requests: AtomicUsize,
    range_requests: AtomicUsize,
    requests: AtomicUsize,
    faults_injected: AtomicUsize,
    log: Mutex<Vec<BlobRequest>>,
}

/// A reverse proxy on 127.0.0.1:free port forwarding to `upstream` (`127.0.0.1:PORT`).
/// Dropping it stops the server.
pub struct FaultProxy {
    server: Server,
    shared: Arc<Shared>,
}

/// A cloneable handle to change a running proxy's fault from other threads.
#[derive(Clone)]
pub struct FaultHandle {
    shared: Arc<Shared>,
}

impl FaultHandle {
    pub fn set_fault(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap() = fault;
    }
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (a registry's `host()`).
    pub fn start(upstream: &str) -> Result<FaultProxy> {
        let shared = Arc::new(Shared::default());
        let s2 = shared.clone();
        let upstream = upstream.to_string();
        let server = Server::start("fault-proxy", move |conn| {
            let _ = handle(conn, &upstream, &s2);
        })?;
        Ok(FaultProxy { server, shared })
    }

    /// `127.0.0.1:PORT` of the proxy, for clients.
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// Replaces the current fault (and its remaining count).
    pub fn set_fault(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap() = fault;
    }

    pub fn fault(&self) -> Fault {
        self.shared.fault.lock().unwrap().clone()
    }

    pub fn handle(&self) -> FaultHandle {
        FaultHandle {
            shared: self.shared.clone(),
        }
    }

    /// Blob GETs seen (faulted or not).
    pub fn blob_requests(&self) -> usize {
        self.shared.blob_requests.load(Ordering::SeqCst)
    }

    /// Blob GETs that carried a Range header.
    pub fn range_requests(&self) -> usize {
        self.shared.range_requests.load(Ordering::SeqCst)
    }

    /// All requests seen.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Every blob GET so far, in arrival order (status filled in as answers come).
    pub fn blob_log(&self) -> Vec<BlobRequest> {
        self.shared.log.lock().unwrap().clone()
    }

    /// How many GETs asked for the blob `digest` (`sha256:<hex>`).
    pub fn gets_of(&self, digest: &str) -> usize {
        self.blob_log()
            .iter()
            .filter(|r| r.digest == digest)
            .count()
    }

    /// Blob GETs that got a counted fault (DropAfter, Status, TooManyRequests) or Corrupt.
    pub fn faults_injected(&self) -> usize {
        self.shared.faults_injected.load(Ordering::SeqCst)
    }
}

/// What to do with this blob GET, decided (and the count consumed) up front.
enum Action {
    Pass,
    Drop(usize),
    Status(u16),
    TooMany(u64),
    /// Corrupt bodies at least this long.
    Corrupt(usize),
    IgnoreRange,
    Throttle(usize),
    Overstate(usize),
}

fn decide(shared: &Shared) -> Action {
    let mut f = shared.fault.lock().unwrap();
    let (action, counted) = match &mut *f {
        Fault::None => (Action::Pass, false),
        Fault::Corrupt => (Action::Corrupt(0), false),
        Fault::CorruptLarger { min_bytes } => (Action::Corrupt(*min_bytes), false),
        Fault::IgnoreRange => (Action::IgnoreRange, false),
        Fault::Throttle { bytes_per_sec } => (Action::Throttle(*bytes_per_sec), false),
        Fault::OverstateLength { extra } => (Action::Overstate(*extra), false),
        Fault::DropAfter { bytes, times } if *times > 0 => {
            *times -= 1;
            (Action::Drop(*bytes), true)
        }
        Fault::Status { code, times } if *times > 0 => {
            *times -= 1;
            (Action::Status(*code), true)
        }
        Fault::TooManyRequests {
            retry_after_secs,
            times,
        } if *times > 0 => {
            *times -= 1;
            (Action::TooMany(*retry_after_secs), true)
        }
        _ => (Action::Pass, false),
    };
    if counted || matches!(action, Action::Corrupt(_)) {
        shared.faults_injected.fetch_add(1, Ordering::SeqCst);
    }
    action
}

fn is_blob_get(method: &str, target: &str) -> bool {
    let path = target.split('?').next().unwrap_or("");
    method == "GET" && path.starts_with("/v2/") && path.contains("/blobs/sha256:")
}

fn handle(conn: TcpStream, upstream: &str, shared: &Shared) -> io::Result<()> {
    let mut reader = http::buffered(&conn)?;
    let Some(req) = http::read_request(&mut reader)? else {
        return Ok(());
    };
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let mut client = conn;
    let proxy_host = client.local_addr()?.to_string();
    let blob_get = is_blob_get(&req.method, &req.target);
    let has_range = req.header("range").is_some();
    let mut action = Action::Pass;
    let mut log_index = None;
    if blob_get {
        let path = req.target.split('?').next().unwrap_or("");
        let digest = path.rsplit('/').next().unwrap_or("").to_string();
        let mut log = shared.log.lock().unwrap();
        log.push(BlobRequest {
            digest,
            range: req.header("range").map(str::to_string),
            status: 0,
        });
        log_index = Some(log.len() - 1);
        drop(log);
        shared.blob_requests.fetch_add(1, Ordering::SeqCst);
        if has_range {
            shared.range_requests.fetch_add(1, Ordering::SeqCst);
        }
        action = decide(shared);
    }
    match action {
        Action::Status(code) => {
            let body = format!(
                r#"{{"errors":[{{"code":"UNKNOWN","message":"injected fault: status {code}"}}]}}"#
            );
            return http::write_response(
                &mut client,
                code,
                &[("Content-Type", "application/json".into())],
                body.as_bytes(),
            );
        }
        Action::TooMany(secs) => {
            let body = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"injected fault: too many requests"}]}"#;
            return http::write_response(
                &mut client,
                429,
                &[
                    ("Content-Type", "application/json".into()),
                    ("Retry-After", secs.to_string()),
                ],
                body.as_bytes(),
            );
        }
        _ => {}
    }

    // Forward the request.
    let mut up = match TcpStream::connect(upstream) {
        Ok(s) => s,
        Err(e) => {
            return http::write_response(&mut client, 502, &[], format!("upstream: {e}").as_bytes())
        }
    };
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        let lk = k.to_ascii_lowercase();
        if matches!(
            lk.as_str(),
            "host" | "connection" | "content-length" | "transfer-encoding" | "keep-alive"
        ) {
            continue;
        }
        if lk == "range" && matches!(action, Action::IgnoreRange) {
            continue;
        }
        head.push_str(&format!("{k}: {}\r\n", v.replace(&proxy_host, upstream)));
    }
    head.push_str(&format!("Host: {upstream}\r\nConnection: close\r\n"));
    let has_body = !req.body.is_empty()
        || req.header("content-length").is_some()
        || req.header("transfer-encoding").is_some();
    if has_body {
        head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
    }
    head.push_str("\r\n");
    up.write_all(head.as_bytes())?;
    up.write_all(&req.body)?;
    up.flush()?;

    // Relay the response head, rewriting references to the upstream host.
    let mut upr = BufReader::new(up);
    let Some((status_line, headers)) = http::read_head(&mut upr)? else {
        return http::write_response(&mut client, 502, &[], b"upstream closed");
    };
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if let Some(i) = log_index {
        shared.log.lock().unwrap()[i].status = status;
    }
    let overstate = match action {
        Action::Overstate(extra) if matches!(status, 200 | 206) => Some(extra),
        _ => None,
    };
    let mut out = format!("{status_line}\r\n");
    for (k, v) in &headers {
        let lk = k.to_ascii_lowercase();
        if lk == "connection" || lk == "keep-alive" {
            continue;
        }
        if let (Some(extra), "content-length") = (overstate, lk.as_str()) {
            let len: usize = v.parse().unwrap_or(0);
            out.push_str(&format!("{k}: {}\r\n", len + extra));
            continue;
        }
        out.push_str(&format!("{k}: {}\r\n", v.replace(upstream, &proxy_host)));
    }
    out.push_str("Connection: close\r\n\r\n");
    client.write_all(out.as_bytes())?;

    let content_length: Option<usize> =
        http::header(&headers, "content-length").and_then(|v| v.parse().ok());
    let no_body = req.method == "HEAD";
    if no_body {
        client.flush()?;
        return Ok(());
    }
    match (action, content_length) {
        (Action::Drop(n), _) => {
            let mut limited = (&mut upr).take(n as u64);
            io::copy(&mut limited, &mut client)?;
            client.flush()?;
            // Abrupt close: no more bytes, both directions shut.
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        (Action::Corrupt(min), Some(len)) if len > 0 && len >= min => {
            let mut body = vec![0u8; len];
            upr.read_exact(&mut body)?;
            body[len / 2] ^= 0xff;
            client.write_all(&body)?;
            client.flush()
        }
        (Action::Throttle(rate), _) => throttled_copy(&mut upr, &mut client, rate),
        (Action::Overstate(_), _) if overstate.is_some() => {
            copy_all(&mut upr, &mut client)?;
            // The announced length never arrives: the client sees the close.
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        _ => {
            // Upstream closes after the response: copy until EOF.
            copy_all(&mut upr, &mut client)
        }
    }
}

/// Copies in 16 KiB pieces, sleeping so that about `rate` bytes go out a second.
fn throttled_copy(r: &mut impl BufRead, w: &mut TcpStream, rate: usize) -> io::Result<()> {
    let piece = 16 << 10;
    let pause = std::time::Duration::from_secs_f64(piece as f64 / rate.max(1) as f64);
    let mut buf = vec![0u8; piece];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return w.flush();
        }
        w.write_all(&buf[..n])?;
        std::thread::sleep(pause);
    }
}

fn copy_all(r: &mut impl BufRead, w: &mut TcpStream) -> io::Result<()> {
    io::copy(r, w)?;
    w.flush()
}
