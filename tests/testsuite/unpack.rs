//! Layer unpacking as a user sees it: every tar feature survives (cross-checked against
//! umoci), and malicious layers cannot write outside the store.

use crate::common::*;

#[test]
fn image_unpack_matches_umoci() {
    if skip_unless_root() {
        return;
    }
    let reg = Registry::start().unwrap();
    let image = Fixture::every_tar_feature();
    push(&reg.host(), "test/features", "latest", &image, None).unwrap();
    let c = coracle();
    let name = format!("{}/test/features", reg.host());
    c.run(["pull", &name]).assert_success();
    let ours = c.tmp().join("ours");
    c.run(["image", "unpack", &name, ours.to_str().unwrap()])
        .assert_success();

    let layout = c.tmp().join("layout");
    skopeo_copy_to_oci(&reg.host(), "test/features", "latest", &layout, None).unwrap();
    let theirs = umoci_unpack(&layout, "latest", &c.tmp().join("umoci")).unwrap();

    let a = tree_snapshot(&ours).unwrap();
    let b = tree_snapshot(&theirs).unwrap();
    let diff = diff_snapshots(&a, &b);
    assert!(diff.is_empty(), "coracle vs umoci:\n{}", diff.join("\n"));
    assert!(a.len() > 10, "the fixture has many entries");

    // Unpacking into a non-empty directory is refused.
    let out = c.run(["image", "unpack", &name, ours.to_str().unwrap()]);
    out.assert_code(1);
    assert!(out.stderr.contains("not empty"), "{}", out.stderr);
}

#[test]
fn overlay_layers_carry_whiteouts_in_overlay_form() {
    if skip_unless_root() {
        return;
    }
    let reg = Registry::start().unwrap();
    let image = ImageBuilder::new()
        .layer(
            &Layer::new()
                .dir("d", 0o755)
                .file("d/x", "x", 0o644)
                .file("gone", "g", 0o644),
        )
        .layer(
            &Layer::new()
                .whiteout("gone")
                .opaque("d")
                .file("d/y", "y", 0o644),
        )
        .build();
    push(&reg.host(), "test/wh", "latest", &image, None).unwrap();
    let c = coracle();
    c.run(["pull", &format!("{}/test/wh", reg.host())])
        .assert_success();
    let top = c
        .root()
        .join("layers")
        .join(coracle_core_chain(&image)[1].clone());
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::symlink_metadata(top.join("gone")).unwrap();
    assert!(
        meta.file_type().is_char_device(),
        "whiteout is a char device"
    );
    let mut buf = [0u8; 8];
    let n = rustix::fs::lgetxattr(top.join("d"), "trusted.overlay.opaque", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"y");
}

fn coracle_core_chain(image: &Image) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut prev: Option<coracle_core::Digest> = None;
    for d in &image.diff_ids {
        let next = match &prev {
            None => d.clone(),
            Some(p) => coracle_core::Digest::sha256_of(format!("{p} {d}").as_bytes()),
        };
        out.push(next.hex().to_string());
        prev = Some(next);
    }
    out
}

#[test]
fn malicious_layers_are_rejected_and_nothing_escapes() {
    let reg = Registry::start().unwrap();
    for kind in Malicious::ALL {
        let repo = format!("test/evil-{}", format!("{kind:?}").to_lowercase());
        let image = ImageBuilder::new().raw_layer(malicious_layer(kind)).build();
        push(&reg.host(), &repo, "latest", &image, None).unwrap();
        let c = coracle();
        let out = c.run(["pull", &format!("{}/{repo}", reg.host())]);
        for marker in kind.escape_markers() {
            assert!(
                !std::path::Path::new(marker).exists(),
                "{kind:?} escaped to {marker}"
            );
        }
        assert!(!c.tmp().join("coracle-escape-dotdot").exists());
        let layer = c.root().join("layers").join(image.diff_ids[0].hex());
        match kind {
            // `..` climbing out and links to files outside are errors naming the entry.
            Malicious::DotDotPath | Malicious::HardlinkEscape | Malicious::HardlinkAbsolute => {
                out.assert_code(1);
                assert!(out.stderr.contains("entry"), "{kind:?}: {}", out.stderr);
                assert!(layer_dirs(&c).is_empty(), "{kind:?}: no layer kept");
            }
            // Absolute names and symlinks are resolved inside the layer root, as
            // docker does: the files land inside the layer.
            Malicious::AbsolutePath => {
                out.assert_success();
                assert!(layer.join("tmp/coracle-escape-abspath").is_file());
            }
            // A file beneath a symlink: the symlink is resolved inside the layer,
            // where its target does not exist; refusing is safe (docker would create
            // the directory), landing outside is not.
            Malicious::AbsoluteSymlinkThenFile | Malicious::RelativeSymlinkThenFile => {
                if out.success() {
                    assert!(layer.join("tmp").is_dir(), "{kind:?}");
                } else {
                    out.assert_code(1);
                    assert!(
                        out.stderr.contains("entry \"escape/"),
                        "{kind:?}: {}",
                        out.stderr
                    );
                }
            }
        }
    }
}
