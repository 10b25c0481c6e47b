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
    /// Always serves wrong bytes of the right size.
    Corrupt,
    /// 503 twice, then the blob.
    Unavailable,
}

/// A tiny HTTP/1.1 registry that serves one blob, misbehaving as `mode` says.
async fn fake_registry(blob: Vec<u8>, mode: Mode) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let blob_gets = Arc::new(AtomicUsize::new(0));
    let counter = blob_gets.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let blob = blob.clone();
            let counter = counter.clone();
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
                let range = text
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("range: bytes=")
                            .map(str::to_string)
                    })
                    .and_then(|r| r.trim_end_matches('-').trim().parse::<usize>().ok());
                if !path.contains("/blobs/") {
                    let _ = sock
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                        )
                        .await;
                    return;
                }
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let full = |body: &[u8]| {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(body);
                    r
                };
                let resp = match mode {
                    Mode::Unavailable if n < 2 => {
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                    Mode::Unavailable => full(&blob),
                    Mode::Corrupt => full(&vec![b'x'; blob.len()]),
                    Mode::CutThenRange | Mode::CutThenFull if n == 0 => {
                        let mut r = full(&blob);
                        r.truncate(r.len() - blob.len() / 2);
                        r
                    }
                    Mode::CutThenRange => match range {
                        Some(start) => {
                            let mut r = format!(
                                "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {}-{}/{}\r\nConnection: close\r\n\r\n",
                                blob.len() - start,
                                start,
                                blob.len() - 1,
                                blob.len()
                            )
                            .into_bytes();
                            r.extend_from_slice(&blob[start..]);
                            r
                        }
                        None => full(&blob),
                    },
                    Mode::CutThenFull => full(&blob),
                };
                let _ = sock.write_all(&resp).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (addr, blob_gets)
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
    let (addr, gets) = fake_registry(blob.clone(), mode).await;
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
        gets.load(Ordering::SeqCst),
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
