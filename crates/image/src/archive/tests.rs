use super::*;
use crate::content::ContentStore;
use crate::ImageError;

/// A one-file layer tar.
fn layer_tar(file: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, file, content).unwrap();
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn config_for(diff_ids: &[Digest]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: ContentStore,
    scratch: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(&dir.path().join("blobs")).unwrap();
    let scratch = dir.path().join("tmp");
    Fixture {
        _dir: dir,
        store,
        scratch,
    }
}

/// Store a layer blob (compressed as given); returns (diff_id, blob path).
fn add_layer(store: &ContentStore, tar: &[u8], compress: Compression) -> (Digest, PathBuf) {
    let blob = match compress {
        Compression::None => tar.to_vec(),
        Compression::Gzip => gzip(tar),
        Compression::Zstd => zstd::encode_all(tar, 1).unwrap(),
    };
    let digest = store.put_bytes(&blob).unwrap();
    (Digest::sha256_of(tar), store.path(&digest))
}

#[test]
fn docker_archive_round_trip() {
    let f = fixture();
    let base = layer_tar("etc/os-release", b"base");
    let app = layer_tar("app/run", b"#!/bin/sh\n");
    let extra = layer_tar("data/x", b"x");
    let (base_id, base_blob) = add_layer(&f.store, &base, Compression::Gzip);
    let (app_id, app_blob) = add_layer(&f.store, &app, Compression::Zstd);
    let (extra_id, extra_blob) = add_layer(&f.store, &extra, Compression::None);
    let cfg1 = config_for(&[base_id.clone(), app_id.clone()]);
    let cfg2 = config_for(&[base_id.clone(), extra_id.clone()]);
    let images = vec![
        ArchiveImage {
            config_digest: Digest::sha256_of(&cfg1),
            config_bytes: cfg1.clone(),
            repo_tags: vec!["app:v1".into(), "127.0.0.1:5000/x/app:latest".into()],
            layers: vec![
                ArchiveLayer {
                    diff_id: base_id.clone(),
                    blob_path: base_blob.clone(),
                },
                ArchiveLayer {
                    diff_id: app_id.clone(),
                    blob_path: app_blob,
                },
            ],
        },
        ArchiveImage {
            config_digest: Digest::sha256_of(&cfg2),
            config_bytes: cfg2.clone(),
            repo_tags: vec![],
            layers: vec![
                ArchiveLayer {
                    diff_id: base_id.clone(),
                    blob_path: base_blob,
                },
                ArchiveLayer {
                    diff_id: extra_id.clone(),
                    blob_path: extra_blob,
                },
            ],
        },
    ];
    let out = f.scratch.parent().unwrap().join("out.tar");
    write_docker_archive(File::create(&out).unwrap(), &images).unwrap();

    // The shared base layer is in the archive once, uncompressed.
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(File::open(&out).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        if name == format!("{}/layer.tar", base_id.hex()) {
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            assert_eq!(data, base);
        }
        names.push(name);
    }
    let layer_tars = names.iter().filter(|n| n.ends_with("/layer.tar")).count();
    assert_eq!(layer_tars, 3, "{names:?}");
    assert!(names.contains(&"repositories".to_string()));
    assert!(names.contains(&format!("{}/VERSION", base_id.hex())));

    let loaded = read_archive(&out, &f.scratch).unwrap();
    assert_eq!(loaded.images.len(), 2);
    let a = &loaded.images[0];
    assert_eq!(a.config_bytes, cfg1);
    assert_eq!(a.config_digest, Digest::sha256_of(&cfg1));
    assert_eq!(a.repo_tags, vec!["app:v1", "127.0.0.1:5000/x/app:latest"]);
    assert_eq!(a.layers.len(), 2);
    assert_eq!(a.layers[1].diff_id, app_id);
    assert_eq!(a.layers[1].blob_digest, app_id);
    assert_eq!(a.layers[1].media_type, manifest::OCI_LAYER_TAR);
    let mut data = Vec::new();
    a.layers[1].open().unwrap().read_to_end(&mut data).unwrap();
    assert_eq!(data, app);
    assert_eq!(loaded.images[1].layers[1].diff_id, extra_id);
    // The extraction dir goes away with the LoadedArchive.
    let extracted = a.layers[0].path.clone();
    drop(loaded);
    assert!(!extracted.exists());
}

#[test]
fn diff_id_checked_when_saving() {
    let f = fixture();
    let (_, blob) = add_layer(&f.store, &layer_tar("a", b"a"), Compression::Gzip);
    let wrong = Digest::sha256_of(b"not the layer");
    let cfg = config_for(std::slice::from_ref(&wrong));
    let err = write_docker_archive(
        io::sink(),
        &[ArchiveImage {
            config_digest: Digest::sha256_of(&cfg),
            config_bytes: cfg,
            repo_tags: vec![],
            layers: vec![ArchiveLayer {
                diff_id: wrong,
                blob_path: blob,
            }],
        }],
    )
    .unwrap_err();
    assert!(matches!(
        err,
        ImageError::Archive(ArchiveError::DigestMismatch { .. })
    ));
}

/// Build a tar from (name, bytes) pairs, names written raw (no validation).
fn raw_tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_old();
        let field = &mut h.as_old_mut().name;
        field[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn rejects_tampered_layer() {
    let f = fixture();
    let real = layer_tar("bin/sh", b"real");
    let evil = layer_tar("bin/sh", b"evil");
    let diff = Digest::sha256_of(&real);
    let cfg = config_for(std::slice::from_ref(&diff));
    let cfg_name = format!("{}.json", Digest::sha256_of(&cfg).hex());
    let layer_name = format!("{}/layer.tar", diff.hex());
    let manifest = serde_json::to_vec(
        &json!([{"Config": cfg_name, "RepoTags": ["x:1"], "Layers": [layer_name]}]),
    )
    .unwrap();
    let tar = raw_tar(&[
        ("manifest.json", &manifest),
        (&cfg_name, &cfg),
        (&layer_name, &evil),
    ]);
    let path = f.scratch.parent().unwrap().join("tampered.tar");
    std::fs::write(&path, &tar).unwrap();
    let err = read_archive(&path, &f.scratch).unwrap_err();
    assert!(
        matches!(err, ImageError::Archive(ArchiveError::DigestMismatch { ref expected, .. }) if *expected == diff),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);

    // The untampered archive loads.
    let good = raw_tar(&[
        ("manifest.json", &manifest),
        (&cfg_name, &cfg),
        (&layer_name, &real),
    ]);
    std::fs::write(&path, &good).unwrap();
    let loaded = read_archive(&path, &f.scratch).unwrap();
    assert_eq!(loaded.images[0].repo_tags, vec!["x:1"]);
}

#[test]
fn rejects_member_escaping_the_archive() {
    let f = fixture();
    let tar = raw_tar(&[("manifest.json", b"[]"), ("../escape", b"boom")]);
    let path = f.scratch.parent().unwrap().join("evil.tar");
    std::fs::write(&path, &tar).unwrap();
    let err = read_archive(&path, &f.scratch).unwrap_err();
    assert!(
        matches!(err, ImageError::Archive(ArchiveError::UnsafePath { .. })),
        "{err}"
    );
    assert!(!f.scratch.join("escape").exists());
    assert!(!f.scratch.parent().unwrap().join("escape").exists());
    let tar = raw_tar(&[("/etc/evil", b"boom")]);
    std::fs::write(&path, &tar).unwrap();
    assert!(read_archive(&path, &f.scratch).is_err());
}

/// Write `bytes` as an OCI layout blob; returns its descriptor.
fn oci_blob(root: &Path, media_type: &str, bytes: &[u8]) -> manifest::Descriptor {
    let d = Digest::sha256_of(bytes);
    let dir = root.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(d.hex()), bytes).unwrap();
    manifest::Descriptor::new(media_type, d, bytes.len() as u64)
}

fn oci_layout(root: &Path) -> (Digest, Digest) {
    let tar = layer_tar("hello", b"world");
    let diff = Digest::sha256_of(&tar);
    let layer = oci_blob(root, manifest::OCI_LAYER_GZIP, &gzip(&tar));
    let cfg = config_for(std::slice::from_ref(&diff));
    let config = oci_blob(root, manifest::OCI_CONFIG, &cfg);
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
        "config": config, "layers": [layer],
    }))
    .unwrap();
    let mut mdesc = oci_blob(root, manifest::OCI_MANIFEST, &m);
    mdesc.platform = Some(coracle_core::Platform::parse("linux/amd64").unwrap());
    // An attestation entry that must be skipped (its blob is absent).
    let mut att = manifest::Descriptor::new(manifest::OCI_MANIFEST, Digest::sha256_of(b"att"), 3);
    att.platform = Some(coracle_core::Platform {
        os: "unknown".into(),
        architecture: "unknown".into(),
        variant: None,
    });
    let nested = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": [mdesc, att],
    }))
    .unwrap();
    let mut ndesc = oci_blob(root, manifest::OCI_INDEX, &nested);
    ndesc.annotations = Some(BTreeMap::from([(
        "org.opencontainers.image.ref.name".to_string(),
        "example.com/hello:1.0".to_string(),
    )]));
    std::fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        root.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [ndesc]})).unwrap(),
    )
    .unwrap();
    (diff, layer.digest)
}

#[test]
fn reads_oci_layout_directory_and_archive() {
    let f = fixture();
    let layout = f.scratch.parent().unwrap().join("layout");
    let (diff, blob) = oci_layout(&layout);
    let check = |loaded: &LoadedArchive| {
        assert_eq!(loaded.images.len(), 1);
        let img = &loaded.images[0];
        assert_eq!(img.repo_tags, vec!["example.com/hello:1.0"]);
        assert_eq!(img.layers[0].diff_id, diff);
        assert_eq!(img.layers[0].blob_digest, blob);
        assert_eq!(img.layers[0].media_type, manifest::OCI_LAYER_GZIP);
        assert_eq!(img.manifest.as_ref().unwrap().0, manifest::OCI_MANIFEST);
    };
    check(&read_archive(&layout, &f.scratch).unwrap());

    // The same layout as a gzip-compressed oci-archive.
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    b.append_dir_all(".", &layout).unwrap();
    let bytes = b.into_inner().unwrap().finish().unwrap();
    let path = f.scratch.parent().unwrap().join("oci.tar.gz");
    std::fs::write(&path, bytes).unwrap();
    check(&read_archive(&path, &f.scratch).unwrap());

    // A corrupted blob is caught.
    std::fs::write(layout.join("blobs/sha256").join(blob.hex()), b"garbage").unwrap();
    assert!(read_archive(&layout, &f.scratch).is_err());
}

#[test]
fn rejects_unknown_format() {
    let f = fixture();
    let path = f.scratch.parent().unwrap().join("x.tar");
    std::fs::write(&path, raw_tar(&[("hello", b"x")])).unwrap();
    let err = read_archive(&path, &f.scratch).unwrap_err();
    assert!(err.to_string().contains("neither"), "{err}");
}

/// JSON `value` padded with trailing whitespace to `size` bytes (still valid JSON).
fn padded_json(value: serde_json::Value, size: usize) -> Vec<u8> {
    let mut v = serde_json::to_vec(&value).unwrap();
    v.resize(size, b' ');
    v
}

#[test]
fn oversized_configs_and_index_files_are_refused() {
    let f = fixture();
    let tar = layer_tar("hello", b"world");
    let diff = Digest::sha256_of(&tar);
    let cfg: Vec<u8> = {
        let small = config_for(std::slice::from_ref(&diff));
        padded_json(serde_json::from_slice(&small).unwrap(), 9 << 20)
    };
    let cfg_name = format!("{}.json", Digest::sha256_of(&cfg).hex());
    let layer_name = format!("{}/layer.tar", diff.hex());
    let manifest = serde_json::to_vec(
        &json!([{"Config": cfg_name, "RepoTags": ["x:1"], "Layers": [layer_name]}]),
    )
    .unwrap();
    let path = f.scratch.parent().unwrap().join("big-config.tar");
    std::fs::write(
        &path,
        raw_tar(&[
            ("manifest.json", &manifest),
            (&cfg_name, &cfg),
            (&layer_name, &tar),
        ]),
    )
    .unwrap();
    let err = read_archive(&path, &f.scratch).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("config {cfg_name} in the archive is too large (9 MiB): the limit on image configs is 8 MiB; refusing it")
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);

    // A manifest.json past 20 MiB.
    let huge = padded_json(json!([]), 21 << 20);
    std::fs::write(&path, raw_tar(&[("manifest.json", &huge)])).unwrap();
    let err = read_archive(&path, &f.scratch).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "manifest.json of the archive is too large (21 MiB): the limit on an archive's index files is 20 MiB"
        ),
        "{err}"
    );
    // Nothing of either load is left in the scratch dir.
    assert!(std::fs::read_dir(&f.scratch).unwrap().next().is_none());
}

#[test]
fn oversized_oci_manifests_are_refused() {
    let f = fixture();
    let layout = f.scratch.parent().unwrap().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let write_index = |desc: &manifest::Descriptor| {
        std::fs::write(
            layout.join("index.json"),
            serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [desc]})).unwrap(),
        )
        .unwrap();
    };
    // A 5 MiB index blob, its descriptor honest about the size.
    let big = padded_json(
        json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": []}),
        5 << 20,
    );
    let desc = oci_blob(&layout, manifest::OCI_INDEX, &big);
    write_index(&desc);
    let err = read_archive(&layout, &f.scratch).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("manifest {} in the archive is too large (its descriptor declares 5 MiB): the limit on manifests and indexes is 4 MiB; refusing it", desc.digest)
    );
    // The descriptor lies (says small): the file's own size is caught.
    let mut lying = desc.clone();
    lying.size = 100;
    write_index(&lying);
    let err = read_archive(&layout, &f.scratch).unwrap_err();
    assert!(
        err.to_string()
            .contains("is too large (5 MiB): the limit on manifests and indexes is 4 MiB"),
        "{err}"
    );
}

#[test]
fn layer_bombs_and_oversized_members_are_refused_before_anything_is_stored() {
    let f = fixture();
    // 64 MiB of zeros in a small zstd blob, in an OCI layout.
    let layout = f.scratch.parent().unwrap().join("bomb-layout");
    let tar = layer_tar("zeros", &vec![0u8; 64 << 20]);
    let diff = Digest::sha256_of(&tar);
    let layer = oci_blob(
        &layout,
        manifest::OCI_LAYER_ZSTD,
        &zstd::encode_all(&tar[..], 3).unwrap(),
    );
    let config = oci_blob(
        &layout,
        manifest::OCI_CONFIG,
        &config_for(std::slice::from_ref(&diff)),
    );
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
        "config": config, "layers": [layer],
    }))
    .unwrap();
    let mdesc = oci_blob(&layout, manifest::OCI_MANIFEST, &m);
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [mdesc]})).unwrap(),
    )
    .unwrap();
    // The defaults let 64 MiB of zeros through.
    read_archive(&layout, &f.scratch).unwrap();
    let limits = LayerLimits {
        layer_ratio_grace: 4 << 20,
        ..LayerLimits::default()
    };
    let err = read_archive_with(&layout, &f.scratch, &limits).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "archive: layer blobs/sha256/{} unpacks to more than 4 MiB: a ",
            layer.digest.hex()
        )),
        "{msg}"
    );
    assert!(
        msg.contains("blob over 100:1 (max_layer_ratio, enforced past the first 4 MiB)"),
        "{msg}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);

    // A zstd-compressed docker-archive whose (uncompressed) layer.tar is the bomb:
    // the archive as a whole expands past the ratio while it is extracted.
    let cfg = config_for(std::slice::from_ref(&diff));
    let cfg_name = format!("{}.json", Digest::sha256_of(&cfg).hex());
    let layer_name = format!("{}/layer.tar", diff.hex());
    let manifest =
        serde_json::to_vec(&json!([{"Config": cfg_name, "Layers": [layer_name]}])).unwrap();
    let docker = raw_tar(&[
        ("manifest.json", &manifest),
        (&cfg_name, &cfg),
        (&layer_name, &tar),
    ]);
    let path = f.scratch.parent().unwrap().join("bomb.tar.zst");
    std::fs::write(&path, zstd::encode_all(&docker[..], 3).unwrap()).unwrap();
    let tiny = LayerLimits {
        layer_ratio_grace: 1 << 20,
        ..LayerLimits::default()
    };
    let err = read_archive_with(&path, &f.scratch, &tiny).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "archive: {} unpacks to more than 1 MiB",
            path.display()
        )),
        "{err}"
    );
    // A member larger than any layer may be.
    let small = LayerLimits {
        max_layer_size: 1 << 20,
        ..LayerLimits::default()
    };
    let plain = f.scratch.parent().unwrap().join("big-member.tar");
    std::fs::write(
        &plain,
        raw_tar(&[("manifest.json", b"[]"), ("big", &vec![1u8; 2 << 20])]),
    )
    .unwrap();
    let err = read_archive_with(&plain, &f.scratch, &small).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "archive: member big of {} unpacks to more than 1 MiB: the limit on one layer's unpacked size (max_layer_size)",
            plain.display()
        )),
        "{err}"
    );
    assert!(
        std::fs::read_dir(&f.scratch).unwrap().next().is_none(),
        "nothing left"
    );
}
