//! Layers, malicious tars, OCI layouts and the umoci cross-check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use coracle_testsupport::*;

struct RawSeen {
    path: Vec<u8>,
    link: Option<Vec<u8>>,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    xattrs: BTreeMap<String, Vec<u8>>,
    data: Vec<u8>,
}

fn read_tar(data: &[u8]) -> Vec<RawSeen> {
    use std::io::Read;
    let mut a = tar::Archive::new(data);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let mut xattrs = BTreeMap::new();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for x in exts {
                let x = x.unwrap();
                if let Some(name) = x.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(name.to_string(), x.value_bytes().to_vec());
                }
            }
        }
        let h = e.header().clone();
        let mut d = Vec::new();
        e.read_to_end(&mut d).unwrap();
        out.push(RawSeen {
            path: e.path_bytes().into_owned(),
            link: e.link_name_bytes().map(|l| l.into_owned()),
            kind: h.entry_type(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            mtime: h.mtime().unwrap(),
            xattrs,
            data: d,
        });
    }
    out
}

fn find<'a>(seen: &'a [RawSeen], path: &str) -> &'a RawSeen {
    seen.iter()
        .find(|s| s.path == path.as_bytes() || s.path == format!("{path}/").as_bytes())
        .unwrap_or_else(|| panic!("{path} not in tar"))
}

#[test]
fn layer_entries_round_trip() {
    let layers = Fixture::every_tar_feature_layers();
    let seen = read_tar(&layers[0].to_tar());
    assert_eq!(find(&seen, "data/setuid").mode, 0o4755);
    assert_eq!(find(&seen, "data/setgid").mode, 0o2775);
    assert_eq!(find(&seen, "data/sticky").mode, 0o1777);
    let owned = find(&seen, "data/owned");
    assert_eq!((owned.uid, owned.gid), (1000, 1000));
    assert_eq!(find(&seen, "data/mtime").mtime, 1_234_567_890);
    assert_eq!(find(&seen, "data/plain").mtime, DEFAULT_MTIME);
    assert_eq!(
        find(&seen, "data/rel-link").link.as_deref(),
        Some(&b"plain"[..])
    );
    assert_eq!(
        find(&seen, "data/abs-link").link.as_deref(),
        Some(&b"/data/plain"[..])
    );
    let hl = find(&seen, "data/hardlink");
    assert_eq!(hl.kind, tar::EntryType::Link);
    assert_eq!(hl.link.as_deref(), Some(&b"data/exec"[..]));
    assert_eq!(find(&seen, "data/fifo").kind, tar::EntryType::Fifo);
    assert_eq!(find(&seen, "data/null").kind, tar::EntryType::Char);
    assert_eq!(find(&seen, "data/xattr").xattrs["user.test"], b"hello");
    assert_eq!(
        find(&seen, "data/cap").xattrs["security.capability"],
        CAP_NET_BIND_SERVICE_XATTR
    );
    assert_eq!(find(&seen, &Fixture::long_path()).data, b"long\n");
    assert!(Fixture::very_long_path().len() > 255);
    assert_eq!(find(&seen, &Fixture::very_long_path()).data, b"deep\n");
    assert_eq!(find(&seen, "data/ünïcødé-文件.txt").data, b"utf8\n");
    let l2 = read_tar(&layers[1].to_tar());
    find(&l2, "data/.wh.to-delete");
    find(&l2, "data/opaque-dir/.wh..wh..opq");
    let l3 = read_tar(&layers[2].to_tar());
    find(&l3, "data/.wh.to-delete-dir");
}

#[test]
fn busybox_layer_has_applets() {
    let seen = read_tar(&Layer::busybox().to_tar());
    let bb = find(&seen, "bin/busybox");
    assert_eq!(bb.mode, 0o755);
    assert_eq!(bb.data, std::fs::read(busybox_path()).unwrap());
    for a in [
        "sh", "ls", "cat", "echo", "true", "id", "sleep", "env", "wget", "mount", "ps",
    ] {
        assert_eq!(
            find(&seen, &format!("bin/{a}")).link.as_deref(),
            Some(&b"busybox"[..])
        );
    }
    assert_eq!(find(&seen, "tmp").mode, 0o1777);
    assert!(String::from_utf8_lossy(&find(&seen, "etc/passwd").data).contains("nobody:x:65534"));
}

#[test]
fn malicious_layers_hold_raw_paths() {
    let check = |kind: Malicious, want: &[(&str, Option<&str>)]| {
        let seen = read_tar(&malicious_layer(kind));
        let got: Vec<(String, Option<String>)> = seen
            .iter()
            .map(|s| {
                (
                    String::from_utf8(s.path.clone()).unwrap(),
                    s.link
                        .as_ref()
                        .map(|l| String::from_utf8(l.clone()).unwrap()),
                )
            })
            .collect();
        let want: Vec<(String, Option<String>)> = want
            .iter()
            .map(|(p, l)| (p.to_string(), l.map(|l| l.to_string())))
            .collect();
        assert_eq!(got, want, "{kind:?}");
    };
    check(
        Malicious::DotDotPath,
        &[
            ("../coracle-escape-dotdot", None),
            ("a/", None),
            ("a/../../coracle-escape-dotdot2", None),
        ],
    );
    check(
        Malicious::AbsolutePath,
        &[("/tmp/coracle-escape-abspath", None)],
    );
    check(
        Malicious::AbsoluteSymlinkThenFile,
        &[
            ("escape", Some("/tmp")),
            ("escape/coracle-escape-abs-symlink", None),
        ],
    );
    check(
        Malicious::RelativeSymlinkThenFile,
        &[
            ("escape", Some("../../../../../../../../tmp")),
            ("escape/coracle-escape-rel-symlink", None),
        ],
    );
    check(
        Malicious::HardlinkEscape,
        &[("passwd-link", Some("../../etc/passwd"))],
    );
    check(
        Malicious::HardlinkAbsolute,
        &[("passwd-abs", Some("/etc/passwd"))],
    );
    // GNU tar agrees the checksums are right.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("evil.tar");
    std::fs::write(&f, malicious_layer(Malicious::HardlinkEscape)).unwrap();
    let out = std::process::Command::new("tar")
        .arg("-tvf")
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    // (GNU tar lists the target with its leading `../` removed.)
    assert!(listing.contains("passwd-link link to"), "{listing}");
}

#[test]
fn compression_round_trips() {
    let tar = Layer::new().file("a", "b", 0o644).to_tar();
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let img = ImageBuilder::new()
            .raw_layer(tar.clone())
            .compression(c)
            .build();
        let blob = &img.layers[0].data;
        let back = match c {
            Compression::None => blob.clone(),
            Compression::Gzip => {
                use std::io::Read;
                let mut v = Vec::new();
                flate2::read::GzDecoder::new(&blob[..])
                    .read_to_end(&mut v)
                    .unwrap();
                v
            }
            Compression::Zstd => zstd::decode_all(&blob[..]).unwrap(),
        };
        assert_eq!(back, tar);
        assert_eq!(img.diff_ids[0], coracle_core::Digest::sha256_of(&tar));
        let cfg = img.config_json();
        assert_eq!(cfg["rootfs"]["diff_ids"][0], img.diff_ids[0].to_string());
    }
    let docker = busybox_builder()
        .format(Format::Docker)
        .env(&["A=1"])
        .entrypoint(&["/bin/sh", "-c"])
        .working_dir("/tmp")
        .user("65534")
        .label("k", "v")
        .expose("80/tcp")
        .build();
    let m: serde_json::Value = serde_json::from_slice(&docker.manifest.data).unwrap();
    assert_eq!(m["mediaType"], media::DOCKER_MANIFEST);
    assert_eq!(m["config"]["mediaType"], media::DOCKER_CONFIG);
    assert_eq!(m["layers"][0]["mediaType"], media::DOCKER_LAYER_GZIP);
    let cfg = docker.config_json();
    assert_eq!(cfg["config"]["Entrypoint"][1], "-c");
    assert_eq!(
        cfg["config"]["ExposedPorts"]["80/tcp"],
        serde_json::json!({})
    );
    assert_eq!(cfg["config"]["User"], "65534");
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, EntryInfo> {
    tree_snapshot(root).unwrap()
}

/// Our fixture, unpacked by umoci (from an OCI layout and via skopeo from the registry),
/// has every feature we meant it to have.
#[test]
fn every_tar_feature_unpacks_with_umoci() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let image = Fixture::every_tar_feature();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    write_oci_layout(&layout, &image, "v1").unwrap();
    let rootfs = umoci_unpack(&layout, "v1", &dir.path().join("out")).unwrap();
    let snap = snapshot(&rootfs);
    let get = |p: &str| {
        snap.get(Path::new(p))
            .unwrap_or_else(|| panic!("{p} missing; have {:?}", snap.keys().collect::<Vec<_>>()))
    };
    assert_eq!(get("data/setuid").mode, 0o4755);
    assert_eq!(get("data/setgid").mode, 0o2775);
    assert_eq!(get("data/sticky").mode, 0o1777);
    assert_eq!((get("data/owned").uid, get("data/owned").gid), (1000, 1000));
    assert_eq!(get("data/mtime").mtime, Some(1_234_567_890));
    assert_eq!(
        get("data/abs-link").link_target.as_deref(),
        Some(Path::new("/data/plain"))
    );
    assert_eq!(get("data/hardlink").nlink, 2);
    assert_eq!(get("data/fifo").kind, Kind::Fifo);
    assert_eq!(get("data/null").rdev, Some((1, 3)));
    assert_eq!(get("data/xattr").xattrs["user.test"], b"hello");
    assert_eq!(
        get("data/cap").xattrs["security.capability"],
        CAP_NET_BIND_SERVICE_XATTR
    );
    get(&Fixture::long_path());
    get(&Fixture::very_long_path());
    get("data/ünïcødé-文件.txt");
    get("data/日本語/ファイル");
    assert!(!snap.contains_key(Path::new("data/to-delete")));
    assert!(!snap.contains_key(Path::new("data/to-delete-dir")));
    assert!(!snap.contains_key(Path::new("data/opaque-dir/old1")));
    assert!(!snap.contains_key(Path::new("data/opaque-dir/old2")));
    get("data/opaque-dir/new");
    get("data/layer3");
    assert_eq!(
        get("data/plain").sha256,
        Some(coracle_core::Digest::sha256_of(b"layer 2\n").to_string())
    );
    assert!(!snap.keys().any(|k| k.to_string_lossy().contains(".wh.")));

    // The same image through a registry and skopeo: identical tree.
    let reg = Registry::start().unwrap();
    push(&reg.host(), "feat/all", "v1", &image, None).unwrap();
    let layout2 = dir.path().join("layout2");
    skopeo_copy_to_oci(&reg.host(), "feat/all", "v1", &layout2, None).unwrap();
    let rootfs2 = umoci_unpack(&layout2, "v1", &dir.path().join("out2")).unwrap();
    let diffs = diff_snapshots(&snap, &snapshot(&rootfs2));
    assert!(diffs.is_empty(), "{diffs:#?}");
}

#[test]
fn oci_layout_of_an_index() {
    let index = IndexBuilder::new(Format::Oci)
        .image(busybox_image())
        .attestation(true)
        .build();
    let dir = tempfile::tempdir().unwrap();
    write_oci_layout(dir.path(), &index, "multi").unwrap();
    write_oci_layout(dir.path(), &busybox_image(), "single").unwrap();
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    let m = idx["manifests"].as_array().unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(
        m[0]["annotations"]["org.opencontainers.image.ref.name"],
        "multi"
    );
    assert_eq!(m[0]["mediaType"], media::OCI_INDEX);
    for b in index.blobs().into_iter().chain(index.children()) {
        assert!(dir
            .path()
            .join("blobs/sha256")
            .join(b.digest.hex())
            .exists());
    }
}

#[test]
fn coracle_runner_passes_root_and_env() {
    let mut c = Coracle::new("/bin/sh");
    c.env("FOO", "bar");
    let cfg = c.write_config("[registries]\n");
    // `sh --root DIR -c ...` is not valid sh, so run env through a wrapper script instead.
    let script = c.tmp().join("fake-coracle");
    std::fs::write(&script, "#!/bin/sh\necho \"$@\"\necho \"FOO=$FOO CFG=$CORACLE_CONFIG HOME=$HOME\"\necho err >&2\nexit 3\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c2 = Coracle::new(&script);
    c2.env("FOO", "bar").env("CORACLE_CONFIG", &cfg);
    let out = c2.run(["images", "-q"]);
    assert_eq!(out.code, 3);
    assert_eq!(out.stderr, "err\n");
    let mut lines = out.stdout.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("--root {} images -q", c2.root().display())
    );
    assert_eq!(
        lines.next().unwrap(),
        format!("FOO=bar CFG={} HOME={}", cfg.display(), c2.home().display())
    );
    let out = c2.run_stdin(["load"], b"data");
    assert_eq!(out.code, 3);
    drop(c);
}
