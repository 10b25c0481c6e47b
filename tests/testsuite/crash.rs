//! kill -9 at any moment of a pull leaves nothing half-done visible, and the next pull
//! completes and cleans up.

use crate::common::*;
use std::time::Duration;

#[test]
fn kill_9_mid_pull_leaves_a_consistent_store() {
    let reg = Registry::start().unwrap();
    let mut payload = vec![0u8; 24 << 20];
    let mut x: u64 = 88172645463325252;
    for chunk in payload.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let image = ImageBuilder::new()
        .layer(&Layer::busybox())
        .layer(&Layer::new().file("a", &payload[..12 << 20], 0o644))
        .layer(&Layer::new().file("b", &payload[12 << 20..], 0o644))
        .build();
    push(&reg.host(), "test/crash", "latest", &image, None).unwrap();
    let name = format!("{}/test/crash", reg.host());
    let c = coracle();
    for delay_ms in [30u64, 80, 150, 250, 400] {
        let mut child = c
            .command(["pull", "-q", &name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        // Our own child, by pid.
        let _ = child.kill();
        let _ = child.wait();
        // Whatever was recorded is complete: a listed image has all its layers.
        let ids = c.run(["images", "-q"]);
        ids.assert_success();
        if !ids.stdout.trim().is_empty() {
            assert_eq!(layer_dirs(&c).len(), 3, "recorded image has every layer");
        }
        for l in layer_dirs(&c) {
            // Committed layer dirs are named by chain id, never half-written temp names.
            assert_eq!(l.len(), 64, "{l}");
        }
    }
    c.run(["pull", &name]).assert_success();
    assert_eq!(inspect(&c, &name)["Id"], image.config.digest.to_string());
    assert_eq!(layer_dirs(&c).len(), 3);
    // The completed pull collected the dead pulls' temp files.
    assert!(entries(&c.root().join("layers"))
        .iter()
        .all(|e| !e.starts_with('.')));
    assert!(entries(&c.root().join("blobs/ingest")).is_empty());
    assert!(c
        .root()
        .join("layers")
        .join(image.diff_ids[0].hex())
        .join("bin/busybox")
        .is_file());
}
