//! `coracle pull` against a real registry on loopback: formats, platforms, digests,
//! shared layers, and the store it leaves.

use crate::common::*;

#[test]
fn pull_records_the_image_and_a_second_pull_is_up_to_date() {
    let (reg, image) = registry_with_busybox();
    let c = coracle();
    let name = format!("{}/test/busybox", reg.host());
    let out = c.run(["pull", &name]);
    out.assert_success();
    assert!(
        out.stdout.contains("Using default tag: latest"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("Digest: {}", image.digest())),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Status: Downloaded newer image for"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.trim_end().ends_with(&format!("{name}:latest")),
        "{}",
        out.stdout
    );

    let info = inspect(&c, &name);
    assert_eq!(info["Id"], image.config.digest.to_string());
    assert_eq!(info["RepoTags"][0], format!("{name}:latest"));
    assert_eq!(info["RepoDigests"][0], format!("{name}@{}", image.digest()));
    assert_eq!(info["Config"]["Cmd"][0], "sh");
    assert_eq!(info["RootFS"]["Layers"][0], image.diff_ids[0].to_string());
    assert_eq!(info["Os"], "linux");
    assert!(
        info["Size"].as_u64().unwrap() > 500_000,
        "busybox is big: {info}"
    );

    // The layer is an overlay lower dir with busybox in it.
    let layers = layer_dirs(&c);
    assert_eq!(layers.len(), 1);
    let chain = image.diff_ids[0].hex().to_string();
    assert_eq!(layers[0], chain);
    assert!(c
        .root()
        .join("layers")
        .join(&chain)
        .join("bin/busybox")
        .is_file());

    let again = c.run(["pull", &format!("{name}:latest")]);
    again.assert_success();
    assert!(
        again.stdout.contains("Status: Image is up to date"),
        "{}",
        again.stdout
    );
    assert!(
        !again.stdout.contains("Using default tag"),
        "{}",
        again.stdout
    );

    let q = c.run(["pull", "-q", &name]);
    q.assert_success();
    assert_eq!(q.stdout, format!("{name}:latest\n"));
}

#[test]
fn pull_by_digest_and_unknown_tag() {
    let (reg, image) = registry_with_busybox();
    let c = coracle();
    let by_digest = format!("{}/test/busybox@{}", reg.host(), image.digest());
    c.run(["pull", &by_digest]).assert_success();
    assert_eq!(
        inspect(&c, &by_digest)["Id"],
        image.config.digest.to_string()
    );
    // Pulled by digest only: no tag recorded.
    let listed = c.run(["images", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}"]);
    assert_eq!(
        listed.stdout.trim(),
        format!("{}/test/busybox <none> {}", reg.host(), image.digest())
    );

    let missing = c.run(["pull", &format!("{}/test/busybox:nope", reg.host())]);
    missing.assert_code(1);
    assert!(missing.stderr.contains("nope"), "{}", missing.stderr);
}

#[test]
fn bad_references_are_rejected_before_any_network() {
    let c = coracle();
    for bad in ["UPPER/case", "a:b:c", "x@sha256:123"] {
        let out = c.run(["pull", bad]);
        out.assert_code(1);
        assert!(
            out.stderr.contains("invalid reference format"),
            "{bad}: {}",
            out.stderr
        );
    }
    let out = c.run(["pull", "--platform", "linux", "busybox"]);
    out.assert_code(1);
    assert!(out.stderr.contains("invalid platform"), "{}", out.stderr);
    let out = c.run(["pull", "--no-such-flag", "busybox"]);
    out.assert_code(125);
}

#[test]
fn manifest_lists_pick_the_platform_and_skip_attestations() {
    let reg = Registry::start().unwrap();
    let amd64 = busybox_builder()
        .platform("linux", "amd64", None)
        .label("arch", "amd64")
        .build();
    let arm64 = busybox_builder()
        .platform("linux", "arm64", Some("v8"))
        .label("arch", "arm64")
        .build();
    let arm6 = busybox_builder()
        .platform("linux", "arm", Some("v6"))
        .label("arch", "armv6")
        .build();
    for format in [Format::Oci, Format::Docker] {
        let index = IndexBuilder::new(format)
            .image(amd64.clone())
            .image(arm64.clone())
            .image(arm6.clone())
            .attestation(true)
            .build();
        let repo = format!("test/multi-{format:?}").to_lowercase();
        push(&reg.host(), &repo, "latest", &index, None).unwrap();
        let name = format!("{}/{repo}", reg.host());

        let c = coracle();
        c.run(["pull", "--platform", "linux/arm64", &name])
            .assert_success();
        let info = inspect(&c, &name);
        assert_eq!(info["Config"]["Labels"]["arch"], "arm64");
        assert_eq!(info["Architecture"], "arm64");
        // docker records the list's digest as the repo digest.
        assert_eq!(info["RepoDigests"][0], format!("{name}@{}", index.digest()));

        c.run(["pull", "--platform", "linux/arm/v6", &name])
            .assert_success();
        assert_eq!(inspect(&c, &name)["Config"]["Labels"]["arch"], "armv6");

        let out = c.run(["pull", "--platform", "linux/s390x", &name]);
        out.assert_code(1);
        assert!(
            out.stderr.contains("no matching manifest for linux/s390x"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("linux/arm64"), "{}", out.stderr);
        assert!(!out.stderr.contains("unknown/unknown"), "{}", out.stderr);
    }
}

#[test]
fn compression_formats_and_missing_media_type() {
    let reg = Registry::start().unwrap();
    let cases = [
        ("gzip-docker", Compression::Gzip, Format::Docker, false),
        ("zstd-oci", Compression::Zstd, Format::Oci, false),
        ("plain-oci", Compression::None, Format::Oci, false),
        ("nomediatype", Compression::Gzip, Format::Oci, true),
    ];
    for (repo, compression, format, omit) in cases {
        let image = busybox_builder()
            .compression(compression)
            .format(format)
            .omit_media_type(omit)
            .build();
        push(&reg.host(), &format!("test/{repo}"), "v1", &image, None).unwrap();
        let c = coracle();
        let name = format!("{}/test/{repo}:v1", reg.host());
        c.run(["pull", &name]).assert_success();
        assert_eq!(
            inspect(&c, &name)["Id"],
            image.config.digest.to_string(),
            "{repo}"
        );
        let chain = image.diff_ids[0].hex().to_string();
        assert!(
            c.root()
                .join("layers")
                .join(chain)
                .join("bin/busybox")
                .is_file(),
            "{repo}: layer unpacked"
        );
    }
}

#[test]
fn images_sharing_a_base_store_it_once() {
    let reg = Registry::start().unwrap();
    let base = Layer::busybox();
    let a = ImageBuilder::new()
        .layer(&base)
        .layer(&Layer::new().file("a.txt", "a", 0o644))
        .build();
    let b = ImageBuilder::new()
        .layer(&base)
        .layer(&Layer::new().file("b.txt", "b", 0o644))
        .build();
    push(&reg.host(), "test/a", "latest", &a, None).unwrap();
    push(&reg.host(), "test/b", "latest", &b, None).unwrap();
    let c = coracle();
    c.run(["pull", &format!("{}/test/a", reg.host())])
        .assert_success();
    let out = c.run(["pull", &format!("{}/test/b", reg.host())]);
    out.assert_success();
    let base_short = &a.layers[0].digest.hex()[..12];
    assert!(
        out.stdout
            .contains(&format!("{base_short}: Already exists")),
        "{}",
        out.stdout
    );
    assert_eq!(layer_dirs(&c).len(), 3, "base + a + b");

    // Removing one image keeps the shared base for the other.
    c.run(["rmi", &format!("{}/test/a", reg.host())])
        .assert_success();
    assert_eq!(layer_dirs(&c).len(), 2);
    c.run(["rmi", &format!("{}/test/b", reg.host())])
        .assert_success();
    assert!(layer_dirs(&c).is_empty());
    assert!(blobs(&c).is_empty(), "all blobs gone: {:?}", blobs(&c));
}

#[test]
fn concurrent_pulls_of_one_image_both_succeed_and_store_it_once() {
    let reg = Registry::start().unwrap();
    let image = ImageBuilder::new()
        .layer(&Layer::busybox())
        .layer(&Layer::new().file("big", vec![7u8; 8 << 20], 0o644))
        .build();
    push(&reg.host(), "test/big", "latest", &image, None).unwrap();
    let name = format!("{}/test/big", reg.host());
    let c2 = coracle();
    let procs: Vec<_> = (0..3)
        .map(|_| {
            c2.command(["pull", "-q", &name])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in procs {
        let out = p.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let ids = c2.run(["images", "-q"]);
    assert_eq!(ids.stdout.lines().count(), 1, "{}", ids.stdout);
    assert_eq!(layer_dirs(&c2).len(), 2);
    assert!(entries(&c2.root().join("layers"))
        .iter()
        .all(|e| !e.starts_with(".tmp")));
}

#[test]
fn docker_hub_names_resolve_through_a_configured_mirror() {
    // Docker Hub is out of reach here: a pull of `busybox` can only succeed through
    // the mirror, which proves short names map to docker.io/library/... and that the
    // mirror is tried first.
    let reg = Registry::start().unwrap();
    let image = busybox_image();
    push(&reg.host(), "library/busybox", "latest", &image, None).unwrap();
    let mut c = coracle();
    c.write_config(&format!(
        "[mirrors]\n\"docker.io\" = [\"{}\"]\n",
        reg.host()
    ));
    let out = c.run(["pull", "busybox"]);
    out.assert_success();
    assert!(
        out.stdout.contains("latest: Pulling from library/busybox"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("Status: Downloaded newer image for busybox:latest"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .trim_end()
            .ends_with("docker.io/library/busybox:latest"),
        "{}",
        out.stdout
    );
    let info = inspect(&c, "busybox");
    assert_eq!(info["Id"], image.config.digest.to_string());
    assert_eq!(info["RepoTags"][0], "busybox:latest");
    assert_eq!(
        info["RepoDigests"][0],
        format!("busybox@{}", image.digest())
    );
}
