//! The registry in its three auth modes, pushed to and pulled from with plain HTTP.

use coracle_testsupport::*;

fn pull_back(client: &RegistryClient, repo: &str, tag: &str, image: &Image) {
    let (ct, body) = client.get_manifest(repo, tag).expect("get manifest");
    assert_eq!(ct, image.manifest.media_type);
    assert_eq!(body, image.manifest.data, "manifest not byte-identical");
    for b in std::iter::once(&image.config).chain(image.layers.iter()) {
        let data = client.get_blob(repo, &b.digest).expect("get blob");
        assert_eq!(data, b.data);
    }
}

#[test]
fn anonymous_registry_push_pull() {
    let reg = Registry::start().unwrap();
    assert!(reg.host().starts_with("127.0.0.1:"));
    let image = busybox_image();
    let d = push(&reg.host(), "library/busybox", "latest", &image, None).unwrap();
    assert_eq!(&d, image.digest());
    let client = RegistryClient::new(&reg.host(), None);
    pull_back(&client, "library/busybox", "latest", &image);
    pull_back(&client, "library/busybox", &d.to_string(), &image);
    assert!(
        reg.log().contains("GET /v2/"),
        "access log kept: {}",
        reg.log()
    );
}

#[test]
fn htpasswd_registry_push_pull() {
    let reg = Registry::start_htpasswd("alice", "s3cret").unwrap();
    let anon = RegistryClient::new(&reg.host(), None);
    let r = anon.raw("GET", "/v2/", &[], None).unwrap();
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    let image = ImageBuilder::new()
        .layer(&Layer::new().file("hello", "world\n", 0o644))
        .format(Format::Docker)
        .build();
    assert!(push(&reg.host(), "t/img", "v1", &image, Some(("alice", "wrong"))).is_err());
    assert!(push(&reg.host(), "t/img", "v1", &image, None).is_err());
    push(
        &reg.host(),
        "t/img",
        "v1",
        &image,
        Some(("alice", "s3cret")),
    )
    .unwrap();
    let client = RegistryClient::new(&reg.host(), Some(("alice", "s3cret")));
    pull_back(&client, "t/img", "v1", &image);
    assert!(anon.get_manifest("t/img", "v1").is_err());
}

#[test]
fn token_registry_push_pull() {
    let reg = Registry::start_token("bob", "hunter2").unwrap();
    let anon = RegistryClient::new(&reg.host(), None);
    let r = anon.raw("GET", "/v2/", &[], None).unwrap();
    assert_eq!(r.status, 401);
    let (scheme, params) = parse_challenge(r.header("www-authenticate").unwrap());
    assert_eq!(scheme, "Bearer");
    assert_eq!(params["realm"], reg.token_realm().unwrap());
    assert_eq!(params["service"], TOKEN_SERVICE);

    let image = busybox_builder().compression(Compression::Zstd).build();
    assert_eq!(reg.token_requests(), 0);
    push(
        &reg.host(),
        "team/busybox",
        "1.0",
        &image,
        Some(("bob", "hunter2")),
    )
    .unwrap();
    assert!(reg.token_requests() >= 1);

    let client = RegistryClient::new(&reg.host(), Some(("bob", "hunter2")));
    pull_back(&client, "team/busybox", "1.0", &image);

    // Anonymous: a token with no access, so the registry still refuses.
    let before = reg.token_requests();
    let err = anon.get_manifest("team/busybox", "1.0").unwrap_err();
    assert!(err.0.contains("401"), "{err}");
    assert!(reg.token_requests() > before);

    // Wrong password: the issuer answers 401.
    let bad = RegistryClient::new(&reg.host(), Some(("bob", "nope")));
    let err = bad.get_manifest("team/busybox", "1.0").unwrap_err();
    assert!(
        err.0.contains("token request") && err.0.contains("401"),
        "{err}"
    );
}

#[test]
fn index_with_attestation_and_missing_media_type() {
    let reg = Registry::start().unwrap();
    let client = RegistryClient::new(&reg.host(), None);
    for format in [Format::Oci, Format::Docker] {
        let amd = busybox_builder().format(format).build();
        let arm = ImageBuilder::new()
            .format(format)
            .platform("linux", "arm64", Some("v8"))
            .layer(&Layer::new().file("arch", "arm64\n", 0o644))
            .build();
        let index = IndexBuilder::new(format)
            .image(amd.clone())
            .image(arm)
            .attestation(true)
            .build();
        let repo = format!("multi/{format:?}").to_lowercase();
        let d = push(&reg.host(), &repo, "latest", &index, None).unwrap();
        assert_eq!(&d, index.digest());
        let (ct, body) = client.get_manifest(&repo, "latest").unwrap();
        assert_eq!(ct, format.index_media_type());
        assert_eq!(body, index.manifest.data);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let entries = v["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2]["platform"]["os"], "unknown");
        assert_eq!(
            entries[2]["annotations"]["vnd.docker.reference.type"],
            "attestation-manifest"
        );
        pull_back(&client, &repo, &amd.digest().to_string(), &amd);
    }

    // OCI manifest and index without mediaType: the Content-Type tells.
    let image = busybox_builder().omit_media_type(true).build();
    assert!(!String::from_utf8_lossy(&image.manifest.data)
        .contains("mediaType\": \"application/vnd.oci.image.manifest"));
    push(&reg.host(), "nomt/img", "latest", &image, None).unwrap();
    let (ct, body) = client.get_manifest("nomt/img", "latest").unwrap();
    assert_eq!(ct, media::OCI_MANIFEST);
    assert_eq!(body, image.manifest.data);
    let index = IndexBuilder::new(Format::Oci)
        .image(image)
        .omit_media_type(true)
        .build();
    push(&reg.host(), "nomt/idx", "latest", &index, None).unwrap();
    let (ct, _) = client.get_manifest("nomt/idx", "latest").unwrap();
    assert_eq!(ct, media::OCI_INDEX);
}

#[test]
fn registry_drop_kills_child() {
    let reg = Registry::start().unwrap();
    let pid = reg.pid().unwrap();
    let dir = reg.dir().to_path_buf();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(reg);
    assert!(!dir.exists());
    // The pid is reaped: either gone or reused by an unrelated process.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    assert!(!comm.contains("docker-registry"));
}
