//! save/load and push: archives other tools read and write, and registries we fill.

use crate::common::*;

#[test]
fn save_writes_a_docker_archive_that_skopeo_reads_and_load_round_trips() {
    let (reg, image) = registry_with_busybox();
    let c = coracle();
    let name = format!("{}/test/busybox", reg.host());
    c.run(["pull", &name]).assert_success();
    let archive = c.tmp().join("busybox.tar");
    c.run(["save", "-o", archive.to_str().unwrap(), &name])
        .assert_success();

    // An independent reader of docker-archive.
    let out = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--config",
            &format!("docker-archive:{}", archive.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        image.diff_ids[0].to_string()
    );

    let fresh = coracle();
    let loaded = fresh.run(["load", "-i", archive.to_str().unwrap()]);
    loaded.assert_success();
    assert_eq!(loaded.stdout, format!("Loaded image: {name}:latest\n"));
    assert_eq!(
        inspect(&fresh, &name)["Id"],
        image.config.digest.to_string()
    );
    // The loaded image is runnable content: its layer is unpacked.
    assert!(fresh
        .root()
        .join("layers")
        .join(image.diff_ids[0].hex())
        .join("bin/busybox")
        .is_file());

    // And it can be pushed to a registry and pulled back elsewhere.
    let target = format!("{}/test/reloaded:v2", reg.host());
    fresh.run(["tag", &name, &target]).assert_success();
    let pushed = fresh.run(["push", &target]);
    pushed.assert_success();
    assert!(
        pushed.stdout.contains(&format!(
            "The push refers to repository [{}/test/reloaded]",
            reg.host()
        )),
        "{}",
        pushed.stdout
    );
    let third = coracle();
    third.run(["pull", &target]).assert_success();
    assert_eq!(
        inspect(&third, &target)["Id"],
        image.config.digest.to_string()
    );
}

#[test]
fn load_reads_skopeo_docker_and_oci_archives_and_layouts() {
    let (reg, image) = registry_with_busybox();
    let dir = tempfile::tempdir().unwrap();
    let src = format!("docker://{}/test/busybox:latest", reg.host());
    let targets = [
        format!(
            "docker-archive:{}/d.tar:example/dock:1",
            dir.path().display()
        ),
        format!("oci-archive:{}/o.tar:example/oci:1", dir.path().display()),
        format!("oci:{}/layout:example/layout:1", dir.path().display()),
    ];
    for t in &targets {
        let out = std::process::Command::new("skopeo")
            .args([
                "copy",
                "--insecure-policy",
                "--src-tls-verify=false",
                &src,
                t,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{t}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (file, name) in [
        ("d.tar", "example/dock:1"),
        ("o.tar", "example/oci:1"),
        ("layout", "example/layout:1"),
    ] {
        let c = coracle();
        let out = c.run(["load", "-i", dir.path().join(file).to_str().unwrap()]);
        out.assert_success();
        assert!(
            out.stdout.starts_with("Loaded image"),
            "{file}: {}",
            out.stdout
        );
        let id = c.run(["images", "-q", "--no-trunc"]);
        assert_eq!(id.stdout.trim(), image.config.digest.to_string(), "{file}");
        let _ = name;
    }
}

#[test]
fn load_rejects_tampered_archives_and_keeps_the_store_clean() {
    let (reg, _image) = registry_with_busybox();
    let c = coracle();
    let name = format!("{}/test/busybox", reg.host());
    c.run(["pull", &name]).assert_success();
    let archive = c.tmp().join("a.tar");
    c.run(["save", "-o", archive.to_str().unwrap(), &name])
        .assert_success();
    // Flip a byte inside the layer data (well past the headers).
    let mut bytes = std::fs::read(&archive).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&archive, &bytes).unwrap();

    let fresh = coracle();
    let out = fresh.run(["load", "-i", archive.to_str().unwrap()]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("digest") || out.stderr.contains("sha256"),
        "{}",
        out.stderr
    );
    assert!(fresh.run(["images", "-q"]).stdout.is_empty());
    assert!(layer_dirs(&fresh).is_empty());

    let missing = fresh.run(["load", "-i", "/nonexistent/file.tar"]);
    missing.assert_code(1);
    assert!(
        missing.stderr.contains("/nonexistent/file.tar"),
        "{}",
        missing.stderr
    );
}
