use super::*;
use crate::manifest::{OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};
use std::sync::atomic::AtomicUsize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

fn desc_with_platform(p: &str, n: u8) -> Descriptor {
    let mut d = Descriptor::new(OCI_MANIFEST, Digest::sha256_of(&[n]), 1);
    d.platform = Some(if p == "unknown" {
        Platform {
            os: "unknown".into(),
            architecture: "unknown".into(),
            variant: None,
        }
    } else {
        Platform::parse(p).unwrap()
    });
    d
}

#[test]
fn platform_selection() {
    let entries = vec![
        desc_with_platform("unknown", 0),
        desc_with_platform("linux/arm/v6", 1),
        desc_with_platform("linux/arm/v7", 2),
        desc_with_platform("linux/amd64", 3),
    ];
    let pick =
        |p: &str| select_platform(&entries, &Platform::parse(p).unwrap()).map(|d| d.digest.clone());
    assert_eq!(pick("linux/amd64").unwrap(), entries[3].digest);
    assert_eq!(pick("linux/arm/v7").unwrap(), entries[2].digest);
    let err = pick("linux/s390x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "no matching manifest for linux/s390x in the manifest list entries: linux/arm/v6, linux/arm/v7, linux/amd64"
    );
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// First GET dies half-way; Range requests get a 206.
    CutThenRange,
    /// First GET dies half-way; the server ignores Range and sends everything again.
    CutThenFull,
    /// Serves the blob, a Range request with a 206.
    Ranged,
    /// Always serves wrong bytes of the right size.
    Corrupt,
    /// 503 twice, then the blob.
    Unavailable,
    /// 429 with `Retry-After: 1` once, then the blob.
    TooManyRequests,
    /// Bearer tokens from `/token` ("t1", "t2", ...); blob GETs are refused (401)
    /// unless they carry "t2" or later, so the first token is refused.
    Token,
    /// Manifest GETs get 500 twice, then the manifest.
    ManifestUnavailable,
    /// Manifest GETs announce `Content-Length: 2 GiB` and send up to 64 MiB of it.
    HugeManifest,
    /// Manifest GETs stream up to 64 MiB chunked, without a Content-Length.
    EndlessManifest,
}

/// Counts of what the fake registry served.
#[derive(Default)]
struct Seen {
    blob_gets: AtomicUsize,
    manifest_gets: AtomicUsize,
    token_gets: AtomicUsize,
    /// The start of the last blob GET's `Range` (0 without one).
    range_start: AtomicUsize,
    /// Body bytes of HugeManifest/EndlessManifest the client took before it stopped.
    manifest_bytes_sent: AtomicUsize,
}

/// Writes an oversized manifest body (`Mode::HugeManifest` or `EndlessManifest`) until
/// 64 MiB are out or the client hangs up; counts what was written.
async fn send_oversized_manifest(sock: &mut tokio::net::TcpStream, mode: Mode, seen: &Seen) {
    let chunked = mode == Mode::EndlessManifest;
    let length = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {}", 2u64 << 30)
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {OCI_MANIFEST}\r\n{length}\r\nConnection: close\r\n\r\n"
    );
    if sock.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    // JSON whitespace: a client without a limit reads all of it before parsing.
    let piece = vec![b' '; 64 << 10];
    let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
    framed.extend_from_slice(&piece);
    framed.extend_from_slice(b"\r\n");
    for _ in 0..1024 {
        let data = if chunked { &framed } else { &piece };
        if sock.write_all(data).await.is_err() {
            return;
        }
        seen.manifest_bytes_sent
            .fetch_add(piece.len(), Ordering::SeqCst);
    }
}

fn response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

/// A tiny HTTP/1.1 registry that serves one blob (and, when given, one manifest for
/// every tag), misbehaving as `mode` says.
async fn fake_registry(
    blob: Vec<u8>,
    manifest: Option<Vec<u8>>,
    mode: Mode,
) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Seen::default());
    let counters = seen.clone();
    let realm = format!("http://{addr}/token");
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let blob = blob.clone();
            let manifest = manifest.clone();
            let seen = counters.clone();
            let realm = realm.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&req).to_string();
                let path = text.split_whitespace().nth(1).unwrap_or("").to_string();
                let header = |name: &str| {
                    text.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                    })
                };
                let range = header("range")
                    .and_then(|r| r.strip_prefix("bytes=").map(str::to_string))
                    .and_then(|r| r.trim_end_matches('-').trim().parse::<usize>().ok());
                let empty = || response("200 OK", &[], b"{}");
                let resp = if path.starts_with("/token") {
                    let n = seen.token_gets.fetch_add(1, Ordering::SeqCst) + 1;
                    response("200 OK", &[], format!(r#"{{"token":"t{n}"}}"#).as_bytes())
                } else if path.contains("/manifests/")
                    && matches!(mode, Mode::HugeManifest | Mode::EndlessManifest)
                {
                    seen.manifest_gets.fetch_add(1, Ordering::SeqCst);
                    send_oversized_manifest(&mut sock, mode, &seen).await;
                    return;
                } else if path.contains("/manifests/") {
                    let n = seen.manifest_gets.fetch_add(1, Ordering::SeqCst);
                    match &manifest {
                        _ if mode == Mode::ManifestUnavailable && n < 2 => {
                            response("500 Internal Server Error", &[], b"")
                        }
                        Some(m) => {
                            response("200 OK", &[("Content-Type", OCI_MANIFEST.to_string())], m)
                        }
                        None => empty(),
                    }
                } else if !path.contains("/blobs/") {
                    if mode == Mode::Token {
                        let challenge = format!(r#"Bearer realm="{realm}",service="fake""#);
                        response("401 Unauthorized", &[("WWW-Authenticate", challenge)], b"")
                    } else {
                        empty()
                    }
                } else {
                    let n = seen.blob_gets.fetch_add(1, Ordering::SeqCst);
                    seen.range_start.store(range.unwrap_or(0), Ordering::SeqCst);
                    let full = |body: &[u8]| response("200 OK", &[], body);
                    match mode {
                        Mode::Unavailable if n < 2 => response("503 Service Unavailable", &[], b""),
                        Mode::TooManyRequests if n == 0 => response(
                            "429 Too Many Requests",
                            &[("Retry-After", "1".into())],
                            br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#,
                        ),
                        Mode::Token => {
                            let token = header("authorization").unwrap_or_default();
                            let accepted = token
                                .strip_prefix("Bearer t")
                                .and_then(|n| n.parse::<u32>().ok())
                                .is_some_and(|n| n >= 2);
                            if accepted {
                                full(&blob)
                            } else {
                                response("401 Unauthorized", &[], b"")
                            }
                        }
                        Mode::Corrupt => full(&vec![b'x'; blob.len()]),
                        Mode::CutThenRange | Mode::CutThenFull if n == 0 => {
                            let mut r = full(&blob);
                            r.truncate(r.len() - blob.len() / 2);
                            r
                        }
                        Mode::CutThenRange | Mode::Ranged => match range {
                            Some(start) => response(
                                "206 Partial Content",
                                &[(
                                    "Content-Range",
                                    format!("bytes {}-{}/{}", start, blob.len() - 1, blob.len()),
                                )],
                                &blob[start..],
                            ),
                            None => full(&blob),
                        },
                        _ => full(&blob),
                    }
                };
                let _ = sock.write_all(&resp).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (addr, seen)
}

fn test_blob() -> Vec<u8> {
    (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

async fn fetch_with(
    mode: Mode,
    tee: bool,
) -> (
    Result<PathBuf>,
    Vec<u8>,
    Vec<BlobProgress>,
    usize,
    tempfile::TempDir,
    ContentStore,
) {
    let blob = test_blob();
    let (addr, seen) = fake_registry(blob.clone(), None, mode).await;
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(&dir.path().join("blobs")).unwrap();
    let docker = DockerConfig::at(&dir.path().join("docker"));
    let client = RegistryClient::with_docker_config(&RegistryConfig::default(), None, docker)
        .unwrap()
        .with_backoff_base(Duration::from_millis(10));
    let reference = ImageReference::parse(&format!("{addr}/test/blob:latest")).unwrap();
    let desc = Descriptor::new(OCI_LAYER_GZIP, Digest::sha256_of(&blob), blob.len() as u64);
    let events = Mutex::new(Vec::new());
    let progress = |p: BlobProgress| events.lock().unwrap().push(p);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let collector = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(b) = rx.recv().await {
            got.extend_from_slice(&b);
        }
        got
    });
    let result = client
        .fetch_blob(&reference, &desc, &store, &progress, tee.then_some(tx))
        .await;
    let teed = collector.await.unwrap();
    let events = events.into_inner().unwrap();
    (
        result,
        teed,
        events,
        seen.blob_gets.load(Ordering::SeqCst),
        dir,
        store,
    )
}

#[tokio::test]
async fn resumes_with_range_after_a_cut_and_tees_every_byte_once() {
    let blob = test_blob();
    let (result, teed, events, gets, _dir, store) = fetch_with(Mode::CutThenRange, true).await;
    let path = result.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), blob);
    assert_eq!(teed, blob, "tee got every byte once, in order");
    assert_eq!(gets, 2);
    assert!(events
        .iter()
        .any(|e| matches!(e.phase, BlobPhase::Retrying { attempt: 1, .. })));
    assert_eq!(events.last().unwrap().phase, BlobPhase::Done);
    assert_eq!(
        std::fs::read_dir(store.root().join("ingest"))
            .unwrap()
            .count(),
        0
    );
}

/// Fetches the test blob (teed) into a store holding a dead process's partial
/// download of its first `had` bytes; returns what was teed and the GETs made.
async fn fetch_after_dead_partial(had: usize) -> (Vec<u8>, Arc<Seen>, tempfile::TempDir) {
    let blob = test_blob();
    let (addr, seen) = fake_registry(blob.clone(), None, Mode::Ranged).await;
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(&dir.path().join("blobs")).unwrap();
    let digest = Digest::sha256_of(&blob);
    // pid 99999999 cannot exist (pid_max is at most 2^22).
    let partial = store
        .root()
        .join("ingest")
        .join(format!("{}.99999999.abcdefgh", digest.hex()));
    std::fs::write(&partial, &blob[..had]).unwrap();
    let docker = DockerConfig::at(&dir.path().join("docker"));
    let client = RegistryClient::with_docker_config(&RegistryConfig::default(), None, docker)
        .unwrap()
        .with_backoff_base(Duration::from_millis(10));
    let reference = ImageReference::parse(&format!("{addr}/test/blob:latest")).unwrap();
    let desc = Descriptor::new(OCI_LAYER_GZIP, digest.clone(), blob.len() as u64);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let collector = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(b) = rx.recv().await {
            got.extend_from_slice(&b);
        }
        got
    });
    let path = client
        .fetch_blob(&reference, &desc, &store, &|_| {}, Some(tx))
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), blob);
    let ingest: Vec<_> = std::fs::read_dir(store.root().join("ingest"))
        .unwrap()
        .collect();
    assert!(ingest.is_empty(), "partial adopted, lock gone: {ingest:?}");
    let teed = collector.await.unwrap();
    (teed, seen, dir)
}

#[tokio::test]
async fn a_dead_processs_partial_download_is_resumed_and_teed_whole() {
    let (teed, seen, _dir) = fetch_after_dead_partial(100_000).await;
    assert_eq!(
        teed,
        test_blob(),
        "the adopted bytes reach the unpacker too"
    );
    assert_eq!(seen.blob_gets.load(Ordering::SeqCst), 1);
    assert_eq!(seen.range_start.load(Ordering::SeqCst), 100_000);
}

#[tokio::test]
async fn a_complete_partial_download_needs_no_request() {
    let (teed, seen, _dir) = fetch_after_dead_partial(test_blob().len()).await;
    assert_eq!(teed, test_blob());
    let gets = seen.blob_gets.load(Ordering::SeqCst);
    assert_eq!(gets, 0, "all bytes were there: nothing to ask for (no 416)");
}

#[tokio::test]
async fn full_answer_to_a_range_request_skips_what_we_have() {
    let blob = test_blob();
    let (result, teed, _events, gets, _dir, _store) = fetch_with(Mode::CutThenFull, true).await;
    result.unwrap();
    assert_eq!(teed, blob);
    assert_eq!(gets, 2);
}

#[tokio::test]
async fn retries_5xx() {
    let (result, _teed, _events, gets, _dir, store) = fetch_with(Mode::Unavailable, false).await;
    result.unwrap();
    assert_eq!(gets, 3);
    assert!(store.contains(&Digest::sha256_of(&test_blob())));
}

#[tokio::test]
async fn corrupt_blob_is_retried_once_then_fails_leaving_nothing() {
    let (result, _teed, _events, gets, _dir, store) = fetch_with(Mode::Corrupt, false).await;
    let err = result.unwrap_err();
    let digest = Digest::sha256_of(&test_blob());
    assert!(err.to_string().contains(&digest.to_string()), "{err}");
    assert_eq!(gets, 2, "one retry from scratch, no more");
    assert!(!store.contains(&digest));
    assert!(store.list().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(store.root().join("ingest"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn corrupt_blob_error_is_readable() {
    let (result, _teed, _events, _gets, _dir, _store) = fetch_with(Mode::Corrupt, true).await;
    let err = result.unwrap_err().to_string();
    let digest = Digest::sha256_of(&test_blob());
    let actual = Digest::sha256_of(&vec![b'x'; test_blob().len()]);
    assert!(
        err.starts_with(&format!("blob {digest} from 127.0.0.1:")),
        "{err}"
    );
    assert!(
        err.ends_with(&format!(
            ": content does not match its digest (got {actual})"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let started = std::time::Instant::now();
    let (result, teed, events, gets, _dir, _store) = fetch_with(Mode::TooManyRequests, true).await;
    result.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}, not the server's Retry-After: 1",
        started.elapsed()
    );
    assert_eq!(teed, test_blob());
    assert_eq!(gets, 2);
    let retry = events
        .iter()
        .find_map(|e| match &e.phase {
            BlobPhase::Retrying { attempt: 1, reason } => Some(reason.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        retry.contains("429") && retry.contains("slow down"),
        "{retry}"
    );
}

#[tokio::test]
async fn refused_token_is_renewed_once() {
    let (result, teed, _events, gets, _dir, _store) = fetch_with(Mode::Token, true).await;
    result.unwrap();
    assert_eq!(teed, test_blob());
    assert_eq!(gets, 2, "one refused GET, one with the new token");
}

/// An image manifest over `config` (no layers), served by a fake registry in `mode`.
async fn resolve_with(mode: Mode, config: &[u8]) -> (Result<Resolved>, Arc<Seen>, Digest) {
    let config_desc = Descriptor::new(OCI_CONFIG, Digest::sha256_of(config), config.len() as u64);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": [],
    }))
    .unwrap();
    let (addr, seen) = fake_registry(config.to_vec(), Some(manifest), mode).await;
    let dir = tempfile::tempdir().unwrap();
    let client = RegistryClient::with_docker_config(
        &RegistryConfig::default(),
        None,
        DockerConfig::at(&dir.path().join("docker")),
    )
    .unwrap()
    .with_backoff_base(Duration::from_millis(10));
    let reference = ImageReference::parse(&format!("{addr}/test/cfg:latest")).unwrap();
    let result = client
        .resolve(&reference, &Platform::parse("linux/amd64").unwrap())
        .await;
    (result, seen, config_desc.digest)
}

const CONFIG: &[u8] =
    br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;

#[tokio::test]
async fn server_errors_on_the_config_are_retried() {
    let (result, seen, _) = resolve_with(Mode::Unavailable, CONFIG).await;
    let r = result.unwrap();
    assert_eq!(&r.config_bytes[..], CONFIG);
    assert_eq!(seen.blob_gets.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn server_errors_on_the_manifest_are_retried() {
    let (result, seen, _) = resolve_with(Mode::ManifestUnavailable, CONFIG).await;
    result.unwrap();
    assert_eq!(seen.manifest_gets.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn rate_limited_config_honours_retry_after() {
    let started = std::time::Instant::now();
    let (result, seen, _) = resolve_with(Mode::TooManyRequests, CONFIG).await;
    result.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(seen.blob_gets.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn corrupt_config_is_reported_clearly() {
    let (result, seen, digest) = resolve_with(Mode::Corrupt, CONFIG).await;
    let err = result.unwrap_err();
    let actual = Digest::sha256_of(&vec![b'x'; CONFIG.len()]);
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("config blob {digest} from 127.0.0.1:")),
        "{msg}"
    );
    assert!(
        msg.ends_with(&format!(
            ": content does not match its digest (got {actual})"
        )),
        "{msg}"
    );
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert_eq!(
        seen.blob_gets.load(Ordering::SeqCst),
        2,
        "fetched again once"
    );
}

#[tokio::test]
async fn oversized_manifest_is_refused_by_its_content_length() {
    let (result, seen, _) = resolve_with(Mode::HugeManifest, CONFIG).await;
    let err = result.unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("manifest for 127.0.0.1:"), "{msg}");
    assert!(
        msg.contains("is too large (Content-Length 2147483648 bytes, 2 GiB): the limit on manifests and indexes is 4 MiB"),
        "{msg}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(seen.manifest_gets.load(Ordering::SeqCst), 1, "not retried");
    // The body was never read: what the server got out fits in socket buffers.
    let sent = seen.manifest_bytes_sent.load(Ordering::SeqCst);
    assert!(
        sent < 64 << 20,
        "the client stopped reading ({sent} bytes sent)"
    );
}

#[tokio::test]
async fn oversized_manifest_without_a_length_is_cut_off_at_the_limit() {
    let (result, seen, _) = resolve_with(Mode::EndlessManifest, CONFIG).await;
    let err = result.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(
            "is too large (more than 4 MiB sent): the limit on manifests and indexes is 4 MiB"
        ),
        "{msg}"
    );
    assert_eq!(seen.manifest_gets.load(Ordering::SeqCst), 1, "not retried");
    let sent = seen.manifest_bytes_sent.load(Ordering::SeqCst);
    assert!(
        sent < 64 << 20,
        "the client stopped reading ({sent} bytes sent)"
    );
}

#[tokio::test]
async fn config_declared_over_the_limit_is_not_fetched() {
    let config_desc = Descriptor::new(OCI_CONFIG, Digest::sha256_of(b"x"), 2 << 30);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": [],
    }))
    .unwrap();
    let (addr, seen) = fake_registry(b"x".to_vec(), Some(manifest), Mode::CutThenRange).await;
    let dir = tempfile::tempdir().unwrap();
    let client = RegistryClient::with_docker_config(
        &RegistryConfig::default(),
        None,
        DockerConfig::at(&dir.path().join("docker")),
    )
    .unwrap();
    let reference = ImageReference::parse(&format!("{addr}/test/cfg:latest")).unwrap();
    let err = client
        .resolve(&reference, &Platform::parse("linux/amd64").unwrap())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("config blob {} of {reference} is too large (the manifest declares 2 GiB): the limit on image configs is 8 MiB", config_desc.digest)),
        "{msg}"
    );
    assert_eq!(seen.blob_gets.load(Ordering::SeqCst), 0, "never fetched");
}

/// The futures stay `Send` (callers may spawn them).
#[allow(dead_code)]
fn futures_are_send(
    client: &RegistryClient,
    reference: &ImageReference,
    desc: &Descriptor,
    store: &ContentStore,
    platform: &Platform,
) {
    fn is_send<T: Send>(_: T) {}
    is_send(client.fetch_blob(reference, desc, store, &|_| {}, None));
    is_send(client.resolve(reference, platform));
}

/// Debian's docker-registry on a free loopback port, killed (by its pid) on drop.
struct RealRegistry {
    child: std::process::Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for RealRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry() -> Option<RealRegistry> {
    let bin = Path::new("/usr/bin/docker-registry");
    if !bin.exists() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new(bin)
        .arg("serve")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let reg = RealRegistry {
        child,
        addr: addr.clone(),
        _dir: dir,
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            return Some(reg);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("docker-registry did not start on {addr}");
}

#[tokio::test]
async fn push_resolve_fetch_against_docker_registry() {
    let Some(reg) = start_registry() else {
        eprintln!("skipping: /usr/bin/docker-registry is not installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(&dir.path().join("blobs")).unwrap();
    // A gzip layer and its config.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    tar.append_data(&mut h, "hello", &b"world"[..]).unwrap();
    let tar = tar.into_inner().unwrap();
    let diff = Digest::sha256_of(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    let layer_digest = store.put_bytes(&gz).unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff]},
    }))
    .unwrap();
    let config_desc = Descriptor::new(OCI_CONFIG, Digest::sha256_of(&config), config.len() as u64);
    let layer_desc = Descriptor::new(OCI_LAYER_GZIP, layer_digest.clone(), gz.len() as u64);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": config_desc, "layers": [layer_desc],
    }))
    .unwrap();

    let client = RegistryClient::with_docker_config(
        &RegistryConfig::default(),
        None,
        DockerConfig::at(&dir.path().join("docker")),
    )
    .unwrap();
    let reference = ImageReference::parse(&format!("{}/test/img:v1", reg.addr)).unwrap();
    let events = Mutex::new(Vec::new());
    let progress = |p: PushProgress| events.lock().unwrap().push(p.phase);
    let layers = vec![(layer_desc.clone(), store.path(&layer_digest))];
    let pushed = client
        .push_image(
            &reference,
            &manifest,
            OCI_MANIFEST,
            (&config_desc, &config),
            &layers,
            &progress,
        )
        .await
        .unwrap();
    assert_eq!(pushed, Digest::sha256_of(&manifest));
    assert!(events.lock().unwrap().contains(&PushPhase::Pushed));
    events.lock().unwrap().clear();
    client
        .push_image(
            &reference,
            &manifest,
            OCI_MANIFEST,
            (&config_desc, &config),
            &layers,
            &progress,
        )
        .await
        .unwrap();
    assert!(events.lock().unwrap().contains(&PushPhase::AlreadyExists));

    // An index over it, pushed under another tag.
    let mut entry = Descriptor::new(OCI_MANIFEST, pushed.clone(), manifest.len() as u64);
    entry.platform = Some(Platform::parse("linux/amd64").unwrap());
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry],
    }))
    .unwrap();
    let multi = reference.with_tag("multi").unwrap();
    client
        .push_image(
            &multi,
            &index,
            OCI_INDEX,
            (&config_desc, &config),
            &[],
            &progress,
        )
        .await
        .unwrap();

    let amd64 = Platform::parse("linux/amd64").unwrap();
    let r = client.resolve(&reference, &amd64).await.unwrap();
    assert_eq!(r.manifest_digest, pushed);
    assert_eq!(r.index_digest, None);
    assert_eq!(&r.config_bytes[..], &config[..]);
    assert_eq!(r.manifest.layers, vec![layer_desc.clone()]);
    assert_eq!(r.platform.to_string(), "linux/amd64");

    let r = client.resolve(&multi, &amd64).await.unwrap();
    assert_eq!(r.manifest_digest, pushed);
    assert_eq!(r.index_digest, Some(Digest::sha256_of(&index)));
    let by_digest = reference.with_digest(pushed.clone());
    assert_eq!(
        client
            .resolve(&by_digest, &amd64)
            .await
            .unwrap()
            .manifest_digest,
        pushed
    );

    let err = client
        .resolve(&multi, &Platform::parse("linux/s390x").unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("entries: linux/amd64"), "{err}");
    let err = client
        .resolve(&reference.with_tag("nope").unwrap(), &amd64)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    // Fetch into a fresh store, teeing.
    let store2 = ContentStore::open(&dir.path().join("blobs2")).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(2);
    let collector = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(b) = rx.recv().await {
            got.extend_from_slice(&b);
        }
        got
    });
    let path = client
        .fetch_blob(&reference, &layer_desc, &store2, &|_| {}, Some(tx))
        .await
        .unwrap();
    assert_eq!(std::fs::read(path).unwrap(), gz);
    assert_eq!(collector.await.unwrap(), gz);

    // An open registry accepts any login.
    client
        .check_login(
            &reg.addr,
            &Credentials {
                username: "u".into(),
                password: "p".into(),
                identity_token: None,
            },
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn mirror_failure_falls_back_to_origin() {
    let Some(reg) = start_registry() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(&dir.path().join("blobs")).unwrap();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_desc = Descriptor::new(
        OCI_CONFIG,
        store.put_bytes(config).unwrap(),
        config.len() as u64,
    );
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "config": config_desc, "layers": [],
    }))
    .unwrap();
    // A mirror nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap().to_string();
    drop(dead);
    let mut cfg = RegistryConfig::default();
    cfg.mirrors.insert(reg.addr.clone(), vec![dead_addr]);
    let client =
        RegistryClient::with_docker_config(&cfg, None, DockerConfig::at(&dir.path().join("d")))
            .unwrap();
    let reference = ImageReference::parse(&format!("{}/test/nomt:v1", reg.addr)).unwrap();
    client
        .push_image(
            &reference,
            &manifest,
            OCI_MANIFEST,
            (&config_desc, config),
            &[],
            &|_| {},
        )
        .await
        .unwrap();
    // No mediaType in the body: typed by its shape.
    let r = client
        .resolve(&reference, &Platform::parse("linux/amd64").unwrap())
        .await
        .unwrap();
    assert_eq!(r.manifest.media_type, OCI_MANIFEST);
    assert_eq!(r.manifest_digest, Digest::sha256_of(&manifest));
}
