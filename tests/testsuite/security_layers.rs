//! Hostile images against `pull` and `load`: GNU sparse entries, decompression bombs,
//! layers over the configured ceiling, and oversized manifests. Each must fail with an
//! error naming the layer (or manifest) and the limit, exit 1, and leave the store as
//! it was: no layer directory, no temp directory, no blob of the refused layer, no
//! image; the same store then pulls a good image.

use crate::common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The binary under test; `CORACLE_BIN` runs these against another build (e.g. one
/// without the fixes, to see them fail).
fn store() -> Coracle {
    match std::env::var_os("CORACLE_BIN") {
        Some(bin) => Coracle::new(bin),
        None => coracle(),
    }
}

const TEN_GIB: u64 = 10 << 30;

/// A numeric header field: octal, NUL-terminated when it fits, else all digits (as
/// GNU tar writes 12-digit sizes).
fn octal(field: &mut [u8], value: u64) {
    let w = field.len() - 1;
    let digits = format!("{value:0w$o}");
    if digits.len() == w {
        field[..w].copy_from_slice(digits.as_bytes());
        field[w] = 0;
    } else {
        field.copy_from_slice(format!("{value:0width$o}", width = w + 1).as_bytes());
    }
}

/// An old-GNU sparse entry (type 'S') named `path` that declares `real` bytes: a hole,
/// then one 512-byte block of data at the very end. The whole archive is 2 KiB of
/// mostly zeros, about a hundred bytes gzipped.
fn gnu_sparse_tar(path: &str, real: u64) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..path.len()].copy_from_slice(path.as_bytes());
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], 512); // data stored in the archive
    octal(&mut h[136..148], DEFAULT_MTIME);
    h[156] = b'S';
    h[257..265].copy_from_slice(b"ustar  \0"); // GNU magic and version
    octal(&mut h[386..398], real - 512); // sparse[0].offset
    octal(&mut h[398..410], 512); // sparse[0].numbytes
    octal(&mut h[483..495], real); // realsize
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut tar = h.to_vec();
    tar.extend([b'x'; 512]);
    tar.extend([0u8; 1024]);
    tar
}

/// The store holds nothing of `image`, and nothing half-written.
#[track_caller]
fn assert_nothing_kept(c: &Coracle, image: &Image) {
    assert!(
        c.run(["images", "-q"]).stdout.is_empty(),
        "no image recorded"
    );
    assert!(layer_dirs(c).is_empty(), "no layer: {:?}", layer_dirs(c));
    let layers = entries(&c.root().join("layers"));
    assert!(layers.is_empty(), "no temp layer dir: {layers:?}");
    let ingest = entries(&c.root().join("blobs/ingest"));
    assert!(ingest.is_empty(), "no partial blob: {ingest:?}");
    for layer in &image.layers {
        assert!(
            !blobs(c).contains(&layer.digest.hex().to_string()),
            "the refused layer's blob is not kept: {:?}",
            blobs(c)
        );
    }
    let tmp = entries(&c.root().join("tmp"));
    assert!(tmp.is_empty(), "no temp files: {tmp:?}");
}

/// `image` as an oci-archive tar (tagged `example.com/NAME:1`) in `c`'s temp dir.
fn oci_archive(c: &Coracle, name: &str, image: &Image) -> std::path::PathBuf {
    let layout = c.tmp().join(format!("{name}-layout"));
    write_oci_layout(&layout, image, &format!("example.com/{name}:1")).unwrap();
    let archive = c.tmp().join(format!("{name}.tar"));
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(status.success());
    std::fs::remove_dir_all(&layout).unwrap();
    archive
}

/// A good image pulls into `c` after the failure.
#[track_caller]
fn assert_still_usable(c: &Coracle, reg: &Registry) {
    push(
        &reg.host(),
        "test/busybox",
        "latest",
        &busybox_image(),
        None,
    )
    .unwrap();
    c.run(["pull", "-q", &format!("{}/test/busybox", reg.host())])
        .assert_success();
    assert_eq!(layer_dirs(c).len(), 1);
}

#[test]
fn sparse_entry_declaring_10_gib_is_refused_by_pull_and_load() {
    let reg = Registry::start().unwrap();
    let image = ImageBuilder::new()
        .raw_layer(gnu_sparse_tar("big", TEN_GIB))
        .build();
    let blob = &image.layers[0];
    assert!(blob.size() < 200, "a tiny layer: {} bytes", blob.size());
    push(&reg.host(), "test/sparse", "latest", &image, None).unwrap();

    let c = store();
    let out = c.run(["pull", &format!("{}/test/sparse", reg.host())]);
    out.assert_code(1);
    let expected = format!(
        "layer {}: entry \"big\": sparse files (GNU sparse tar entries, declared 10 GiB) are not supported",
        blob.digest
    );
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    assert_nothing_kept(&c, &image);
    assert_still_usable(&c, &reg);

    let c = store();
    let archive = oci_archive(&c, "sparse", &image);
    let out = c.run(["load", "-i", archive.to_str().unwrap()]);
    out.assert_code(1);
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    assert_nothing_kept(&c, &image);
    assert_still_usable(&c, &reg);
}

#[test]
fn decompression_bomb_is_refused_past_the_configured_ratio() {
    let reg = Registry::start().unwrap();
    // 128 MiB of zeros: a few KiB of zstd.
    let bomb = Layer::new().file("zeros", vec![0u8; 128 << 20], 0o644);
    let image = ImageBuilder::new()
        .layer(&bomb)
        .compression(Compression::Zstd)
        .build();
    let blob = &image.layers[0];
    assert!(blob.size() < 64 << 10, "{} bytes", blob.size());
    push(&reg.host(), "test/bomb", "latest", &image, None).unwrap();
    let name = format!("{}/test/bomb", reg.host());

    // The default limits let a small layer of zeros through (up to 1 GiB at any ratio).
    let plain = store();
    plain.run(["pull", "-q", &name]).assert_success();

    // Past 8 MiB, at most 100:1.
    let mut c = store();
    c.write_config("[limits]\nlayer_ratio_grace = \"8MiB\"\n");
    let out = c.run(["pull", &name]);
    out.assert_code(1);
    let expected = format!("layer {}: a ", blob.digest);
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    assert!(
        out.stderr.contains(" blob unpacks to more than 8 MiB"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("over 100:1 (max_layer_ratio, enforced past the first 8 MiB)"),
        "{}",
        out.stderr
    );
    assert_nothing_kept(&c, &image);
    assert_still_usable(&c, &reg);

    let mut c = store();
    c.write_config("[limits]\nlayer_ratio_grace = \"8MiB\"\n");
    let archive = oci_archive(&c, "bomb", &image);
    let out = c.run(["load", "-i", archive.to_str().unwrap()]);
    out.assert_code(1);
    // Refused while the archive is verified, before anything is stored.
    let expected = format!(
        "layer blobs/sha256/{} unpacks to more than 8 MiB: a ",
        blob.digest.hex()
    );
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("over 100:1 (max_layer_ratio, enforced past the first 8 MiB)"),
        "{}",
        out.stderr
    );
    assert_nothing_kept(&c, &image);
    assert_still_usable(&c, &reg);
}

#[test]
fn layer_over_the_configured_size_ceiling_is_refused() {
    let reg = Registry::start().unwrap();
    let image = busybox_image();
    push(&reg.host(), "test/big", "latest", &image, None).unwrap();
    let name = format!("{}/test/big", reg.host());
    let mut c = store();
    c.write_config("[limits]\nmax_layer_size = \"1MiB\"\n");
    let out = c.run(["pull", &name]);
    out.assert_code(1);
    assert!(
        out.stderr.contains(&format!(
            "layer {}: unpacks to more than 1 MiB, the limit on one layer's unpacked size (max_layer_size)",
            image.layers[0].digest
        )),
        "{}",
        out.stderr
    );
    assert_nothing_kept(&c, &image);
    // Without the ceiling, the same store takes it.
    c.env("CORACLE_CONFIG", c.tmp().join("no-such-config.toml"));
    c.run(["pull", "-q", &name]).assert_success();
}

/// A registry on loopback whose manifests are endless: `/v2/test/length/...` announces
/// `Content-Length: 2 GiB`, `/v2/test/chunked/...` streams chunks without a length.
/// Either stops after 256 MiB or when the client hangs up; counts body bytes sent.
struct HugeManifestRegistry {
    addr: String,
    sent: Arc<AtomicU64>,
}

const HUGE_BODY_CAP: u64 = 256 << 20;

impl HugeManifestRegistry {
    fn start() -> HugeManifestRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let counter = counter.clone();
                std::thread::spawn(move || serve_huge(conn, &counter));
            }
        });
        HugeManifestRegistry { addr, sent }
    }
}

fn serve_huge(mut conn: TcpStream, sent: &AtomicU64) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut start = String::new();
    if reader.read_line(&mut start).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let path = start.split_whitespace().nth(1).unwrap_or("");
    if !path.contains("/manifests/") {
        let _ =
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        return;
    }
    let chunked = path.contains("/chunked/");
    let length = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {}", 2u64 << 30)
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n{length}\r\nConnection: close\r\n\r\n"
    );
    if conn.write_all(head.as_bytes()).is_err() {
        return;
    }
    // JSON whitespace: a client without a limit keeps reading it all.
    let piece = vec![b' '; 1 << 20];
    let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
    framed.extend_from_slice(&piece);
    framed.extend_from_slice(b"\r\n");
    while sent.load(Ordering::SeqCst) < HUGE_BODY_CAP {
        let data = if chunked { &framed } else { &piece };
        if conn.write_all(data).is_err() {
            return;
        }
        sent.fetch_add(piece.len() as u64, Ordering::SeqCst);
    }
}

#[test]
fn oversized_manifests_are_refused_without_reading_them() {
    let server = HugeManifestRegistry::start();
    for (repo, size) in [
        ("length", "Content-Length 2147483648 bytes, 2 GiB"),
        ("chunked", "more than 4 MiB sent"),
    ] {
        server.sent.store(0, Ordering::SeqCst);
        let c = store();
        let reference = format!("{}/test/{repo}:latest", server.addr);
        let out = c.run(["pull", &reference]);
        out.assert_code(1);
        let expected = format!(
            "manifest for {reference} from {} is too large ({size}): the limit on manifests and indexes is 4 MiB",
            server.addr
        );
        assert!(out.stderr.contains(&expected), "{}", out.stderr);
        // The client stopped reading long before the server ran out: the body never
        // went into memory.
        let sent = server.sent.load(Ordering::SeqCst);
        assert!(
            sent < HUGE_BODY_CAP,
            "{repo}: the whole body was read ({sent} bytes)"
        );
        assert!(c.run(["images", "-q"]).stdout.is_empty());
        assert!(blobs(&c).is_empty(), "{:?}", blobs(&c));
    }
}
