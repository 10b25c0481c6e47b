//! Each fault of the FaultProxy, seen by a plain HTTP client.

use coracle_testsupport::*;

struct Setup {
    _reg: Registry,
    proxy: FaultProxy,
    client: RegistryClient,
    layer: Blob,
}

const REPO: &str = "fault/busybox";

fn setup() -> Setup {
    let reg = Registry::start().unwrap();
    let image = busybox_image();
    push(&reg.host(), REPO, "latest", &image, None).unwrap();
    let proxy = FaultProxy::start(&reg.host()).unwrap();
    let client = RegistryClient::new(&proxy.host(), None);
    Setup {
        _reg: reg,
        proxy,
        client,
        layer: image.layers[0].clone(),
    }
}

fn blob_path(b: &Blob) -> String {
    format!("/v2/{REPO}/blobs/{}", b.digest)
}

#[test]
fn passes_everything_through() {
    let s = setup();
    let (ct, _) = s.client.get_manifest(REPO, "latest").unwrap();
    assert_eq!(ct, media::OCI_MANIFEST);
    assert_eq!(
        s.client.get_blob(REPO, &s.layer.digest).unwrap(),
        s.layer.data
    );
    let r = s
        .client
        .raw(
            "GET",
            &blob_path(&s.layer),
            &[("Range", "bytes=10-19")],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &s.layer.data[10..20]);
    assert_eq!(s.proxy.blob_requests(), 2);
    assert_eq!(s.proxy.range_requests(), 1);
    let head = s
        .client
        .raw("HEAD", &blob_path(&s.layer), &[], None)
        .unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("docker-content-digest"),
        Some(s.layer.digest.to_string().as_str())
    );
    // Uploads through the proxy: Location points back at the proxy.
    let r = s
        .client
        .raw(
            "POST",
            &format!("/v2/{REPO}/blobs/uploads/"),
            &[],
            Some(b""),
        )
        .unwrap();
    assert_eq!(r.status, 202);
    let loc = r.header("location").unwrap();
    assert!(
        loc.contains(&s.proxy.host()) || loc.starts_with('/'),
        "{loc}"
    );
    push(&s.proxy.host(), "via/proxy", "x", &busybox_image(), None).unwrap();
}

#[test]
fn drop_after_closes_mid_body_then_recovers() {
    let s = setup();
    s.proxy.set_fault(Fault::DropAfter {
        bytes: 1000,
        times: 2,
    });
    for _ in 0..2 {
        let err = s
            .client
            .raw("GET", &blob_path(&s.layer), &[], None)
            .unwrap_err();
        assert!(err.0.contains("reading body"), "{err}");
    }
    // Non-blob requests are not touched and do not consume the count.
    s.client.get_manifest(REPO, "latest").unwrap();
    assert_eq!(
        s.client.get_blob(REPO, &s.layer.digest).unwrap(),
        s.layer.data
    );
    assert_eq!(s.proxy.blob_requests(), 3);
    assert_eq!(s.proxy.faults_injected(), 2);
}

#[test]
fn drop_after_sends_exactly_n_bytes() {
    use std::io::{Read, Write};
    let s = setup();
    s.proxy.set_fault(Fault::DropAfter {
        bytes: 777,
        times: 1,
    });
    let mut c = std::net::TcpStream::connect(s.proxy.host()).unwrap();
    write!(c, "GET {} HTTP/1.1\r\nHost: x\r\n\r\n", blob_path(&s.layer)).unwrap();
    let mut all = Vec::new();
    let _ = c.read_to_end(&mut all);
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&all[..split]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {}", s.layer.size())),
        "{head}"
    );
    assert_eq!(&all[split..], &s.layer.data[..777]);
}

#[test]
fn status_faults() {
    let s = setup();
    s.proxy.set_fault(Fault::Status {
        code: 503,
        times: 1,
    });
    let r = s
        .client
        .raw("GET", &blob_path(&s.layer), &[], None)
        .unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(
        s.client
            .raw("GET", &blob_path(&s.layer), &[], None)
            .unwrap()
            .status,
        200
    );
    s.proxy.set_fault(Fault::Status {
        code: 500,
        times: 2,
    });
    assert_eq!(
        s.client
            .raw("GET", &blob_path(&s.layer), &[], None)
            .unwrap()
            .status,
        500
    );
    assert_eq!(
        s.client
            .raw("GET", &blob_path(&s.layer), &[], None)
            .unwrap()
            .status,
        500
    );
    assert_eq!(
        s.client
            .raw("GET", &blob_path(&s.layer), &[], None)
            .unwrap()
            .status,
        200
    );
}

#[test]
fn too_many_requests() {
    let s = setup();
    s.proxy.set_fault(Fault::TooManyRequests {
        retry_after_secs: 2,
        times: 1,
    });
    let r = s
        .client
        .raw("GET", &blob_path(&s.layer), &[], None)
        .unwrap();
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(
        s.client.get_blob(REPO, &s.layer.digest).unwrap(),
        s.layer.data
    );
}

#[test]
fn corrupt_flips_one_byte_forever() {
    let s = setup();
    s.proxy.set_fault(Fault::Corrupt);
    for _ in 0..3 {
        let r = s
            .client
            .raw("GET", &blob_path(&s.layer), &[], None)
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), s.layer.size());
        let diffs: Vec<usize> = (0..r.body.len())
            .filter(|&i| r.body[i] != s.layer.data[i])
            .collect();
        assert_eq!(diffs, vec![s.layer.size() / 2]);
    }
    assert!(s.client.get_blob(REPO, &s.layer.digest).is_err());
    s.proxy.set_fault(Fault::None);
    s.client.get_blob(REPO, &s.layer.digest).unwrap();
}

#[test]
fn ignore_range_returns_full_body() {
    let s = setup();
    s.proxy.set_fault(Fault::IgnoreRange);
    let r = s
        .client
        .raw(
            "GET",
            &blob_path(&s.layer),
            &[("Range", "bytes=100-")],
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, s.layer.data);
    assert_eq!(s.proxy.range_requests(), 1);
}

#[test]
fn works_through_token_auth() {
    let reg = Registry::start_token("u", "p").unwrap();
    let image = busybox_image();
    let proxy = FaultProxy::start(&reg.host()).unwrap();
    push(&proxy.host(), "tok/img", "latest", &image, Some(("u", "p"))).unwrap();
    let client = RegistryClient::new(&proxy.host(), Some(("u", "p")));
    proxy.handle().set_fault(Fault::Status {
        code: 500,
        times: 1,
    });
    assert!(client.get_blob("tok/img", &image.layers[0].digest).is_err());
    assert_eq!(
        client.get_blob("tok/img", &image.layers[0].digest).unwrap(),
        image.layers[0].data
    );
    assert!(reg.token_requests() >= 1);
}
