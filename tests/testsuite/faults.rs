//! Pulls through a fault-injecting proxy: transient failures are retried and resumed;
//! corrupt content fails clearly and leaves nothing behind.

use crate::common::*;

/// A registry with an image whose single big layer makes mid-blob faults meaningful,
/// and a proxy in front of it.
fn setup() -> (Registry, FaultProxy, Image) {
    let reg = Registry::start().unwrap();
    let mut payload = vec![0u8; 4 << 20];
    // Poorly compressible bytes so the blob stays large.
    let mut x: u32 = 12345;
    for b in payload.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let image = ImageBuilder::new()
        .layer(&Layer::new().file("payload", payload, 0o644))
        .build();
    push(&reg.host(), "test/payload", "latest", &image, None).unwrap();
    let proxy = FaultProxy::start(&reg.host()).unwrap();
    (reg, proxy, image)
}

fn pull_through(proxy: &FaultProxy) -> (Coracle, Output) {
    let c = coracle();
    let out = c.run(["pull", &format!("{}/test/payload", proxy.host())]);
    (c, out)
}

#[test]
fn dropped_connections_resume_with_range() {
    let (_reg, proxy, image) = setup();
    proxy.set_fault(Fault::DropAfter {
        bytes: 1 << 20,
        times: 2,
    });
    let (c, out) = pull_through(&proxy);
    out.assert_success();
    assert!(proxy.range_requests() >= 1, "resumed with a Range request");
    assert_eq!(
        inspect(&c, &format!("{}/test/payload", proxy.host()))["Id"],
        image.config.digest.to_string()
    );
}

#[test]
fn server_errors_and_rate_limits_are_retried() {
    let (_reg, proxy, _image) = setup();
    proxy.set_fault(Fault::Status {
        code: 500,
        times: 2,
    });
    pull_through(&proxy).1.assert_success();

    proxy.set_fault(Fault::TooManyRequests {
        retry_after_secs: 1,
        times: 1,
    });
    let started = std::time::Instant::now();
    pull_through(&proxy).1.assert_success();
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "Retry-After honoured"
    );
}

#[test]
fn a_server_ignoring_range_still_completes() {
    let (_reg, proxy, _image) = setup();
    proxy.set_fault(Fault::IgnoreRange);
    let h = proxy.handle();
    // Drop once, then ignore Range on the retry: the client must skip what it has.
    h.set_fault(Fault::DropAfter {
        bytes: 1 << 20,
        times: 1,
    });
    let c = coracle();
    let name = format!("{}/test/payload", proxy.host());
    let child = std::thread::spawn({
        let h = h.clone();
        move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            h.set_fault(Fault::IgnoreRange);
        }
    });
    let out = c.run(["pull", &name]);
    child.join().unwrap();
    out.assert_success();
}

#[test]
fn corrupt_blobs_fail_and_leave_nothing() {
    let (_reg, proxy, image) = setup();
    proxy.set_fault(Fault::Corrupt);
    let (c, out) = pull_through(&proxy);
    out.assert_code(1);
    // The config blob is fetched (and verified) first, so it is the one named.
    assert!(
        out.stderr
            .contains(&format!("config blob {}", image.config.digest)),
        "error names the blob: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("does not match its digest"),
        "{}",
        out.stderr
    );
    assert!(c.run(["images", "-q"]).stdout.is_empty());
    assert!(layer_dirs(&c).is_empty());
    assert!(!blobs(&c).contains(&image.layers[0].digest.hex().to_string()));
    let leftovers: Vec<String> = entries(&c.root().join("layers"));
    assert!(leftovers.is_empty(), "temp dirs removed: {leftovers:?}");
    assert!(entries(&c.root().join("blobs/ingest")).is_empty());

    // A corrupt layer (config intact): named, and nothing of it kept.
    proxy.set_fault(Fault::CorruptLarger { min_bytes: 1 << 20 });
    let out = c.run(["pull", &format!("{}/test/payload", proxy.host())]);
    out.assert_code(1);
    assert!(
        out.stderr
            .contains(&format!("blob {}", image.layers[0].digest)),
        "error names the layer: {}",
        out.stderr
    );
    assert!(c.run(["images", "-q"]).stdout.is_empty());
    assert!(layer_dirs(&c).is_empty());
    assert!(entries(&c.root().join("layers")).is_empty());
    assert!(entries(&c.root().join("blobs/ingest")).is_empty());
    assert!(!blobs(&c).contains(&image.layers[0].digest.hex().to_string()));

    // Once the registry is healthy again the same store pulls fine.
    proxy.set_fault(Fault::None);
    c.run(["pull", &format!("{}/test/payload", proxy.host())])
        .assert_success();
}
