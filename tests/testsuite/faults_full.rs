//! A full store can still be cleaned up: `ps`, `rm -f`, `rmi` and `volume rm` work on a
//! store with no space left and free it; what needs space says "no space left on
//! device" naming the store.

use crate::common::*;
use std::path::Path;

fn free_bytes(path: &Path) -> u64 {
    let s = rustix::fs::statvfs(path).unwrap();
    s.f_bavail * s.f_frsize
}

#[test]
fn deletes_work_on_a_full_store() {
    if skip_unless_root() {
        return;
    }
    let (reg, image) = registry_with_busybox();
    let store = TmpfsStore::new(coracle(), "48m");
    let c = store.c();
    let name = format!("{}/test/busybox", reg.host());
    c.run(["pull", "-q", &name]).assert_success();
    c.run(["tag", &name, "box"]).assert_success();
    c.run(["create", "--name", "gone", "box", "true"])
        .assert_success();
    c.run(["volume", "create", "vol"]).assert_success();
    // Another image to pull once the store is full.
    push(&reg.host(), "test/other", "latest", &image, None).unwrap();

    let filler = c.root().join("filler");
    let _f = fill(&filler);
    let full = free_bytes(&c.root());

    let ps = c.run(["ps", "-a", "--format", "{{.Names}}"]);
    ps.assert_success();
    assert_eq!(ps.stdout.trim(), "gone");
    c.run(["rm", "-f", "gone"]).assert_success();
    c.run(["volume", "rm", "vol"]).assert_success();
    c.run(["rmi", "box", &name]).assert_success();
    let images = c.run(["images", "-q"]);
    images.assert_success();
    assert_eq!(images.stdout.trim(), "", "every image removed");
    let volumes = c.run(["volume", "ls", "-q"]);
    volumes.assert_success();
    assert_eq!(volumes.stdout.trim(), "");
    assert!(
        free_bytes(&c.root()) > full + (1 << 20),
        "the deletes freed space ({} -> {} bytes free)",
        full,
        free_bytes(&c.root())
    );

    // Fill what was freed: a pull now says why it fails, naming the store.
    let _g = fill(&c.root().join("filler2"));
    let out = c.run(["pull", "-q", &format!("{}/test/other", reg.host())]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("no space left on device")
            && out.stderr.contains(&c.root().display().to_string()),
        "{}",
        out.stderr
    );
    drop((_f, _g));
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(c.root().join("filler2")).unwrap();
    c.run(["ps", "-a"]).assert_success();
}
