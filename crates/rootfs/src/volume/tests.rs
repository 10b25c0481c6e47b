use super::*;
use coracle_core::ErrorKind;
use rustix::fs::{self as rfs, FileType, Mode, XattrFlags, CWD};
use std::os::unix::fs::{symlink, MetadataExt};

#[test]
fn names_follow_dockers_rule() {
    for ok in ["ab", "a1", "my-vol", "my_vol.2", "0", "A-b.c_d"]
        .iter()
        .filter(|n| n.len() >= 2)
    {
        validate_volume_name(ok).unwrap();
    }
    for bad in [
        "", "a", "-ab", ".ab", "_ab", "a/b", "../x", "a b", "vol:ro", "é1",
    ] {
        let e = validate_volume_name(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let s = e.to_string();
        assert!(s.contains("[a-zA-Z0-9][a-zA-Z0-9_.-]"), "{s}");
        assert!(s.contains(&format!("{bad:?}")), "{s}");
    }
    // 64-hex anonymous volume names are valid.
    validate_volume_name(&"ab".repeat(32)).unwrap();
}

#[test]
fn create_get_list_remove() {
    let tmp = tempfile::tempdir().unwrap();
    let store = VolumeStore::open(tmp.path().join("volumes")).unwrap();
    assert!(store.list().unwrap().is_empty());
    let labels: BTreeMap<_, _> = [("app".to_string(), "web".to_string())].into();
    let v = store.create("data", labels.clone()).unwrap();
    assert_eq!(v.name, "data");
    assert_eq!(v.driver, "local");
    assert_eq!(v.labels, labels);
    assert_eq!(v.mountpoint, tmp.path().join("volumes/data/_data"));
    assert_eq!(store.path("data"), v.mountpoint);
    assert!(v.mountpoint.is_dir());
    let meta = fs::metadata(tmp.path().join("volumes/data/volume.json")).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "options may hold secrets"
    );
    chrono::DateTime::parse_from_rfc3339(&v.created_at).unwrap();
    assert_eq!(
        fs::metadata(&v.mountpoint).unwrap().permissions().mode() & 0o7777,
        0o755
    );

    // Creating again returns the existing volume, data untouched.
    fs::write(v.mountpoint.join("f"), b"keep").unwrap();
    let again = store.create("data", BTreeMap::new()).unwrap();
    assert_eq!(again, v);
    assert!(v.mountpoint.join("f").exists());

    store.create("other", BTreeMap::new()).unwrap();
    let names: Vec<_> = store.list().unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(names, ["data", "other"]);
    assert_eq!(store.get("data").unwrap(), v);

    store.remove("data").unwrap();
    assert_eq!(store.get("data").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        store.remove("data").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.create("a/b", BTreeMap::new()).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    // Only "other" is left: no temp dirs.
    let left: Vec<_> = fs::read_dir(store.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["other"]);
}

#[test]
fn concurrent_creates_make_one_volume() {
    let tmp = tempfile::tempdir().unwrap();
    let store = VolumeStore::open(tmp.path()).unwrap();
    let hs: Vec<_> = (0..8)
        .map(|_| {
            let s = store.clone();
            std::thread::spawn(move || s.create("shared", BTreeMap::new()).unwrap())
        })
        .collect();
    let vols: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(vols.iter().all(|v| *v == vols[0]));
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn gc_removes_dead_temp_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let store = VolumeStore::open(tmp.path()).unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    fs::create_dir_all(tmp.path().join(format!(".tmp-{dead}-x/_data/a"))).unwrap();
    fs::create_dir(tmp.path().join(".tmp-1-y")).unwrap();
    assert_eq!(store.gc_incomplete().unwrap(), 1);
    assert!(tmp.path().join(".tmp-1-y").exists());
}

fn meta(p: &Path) -> (u32, u32, u32, i64) {
    let m = fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid(), m.mode(), m.mtime())
}

#[test]
fn copy_up_preserves_everything_and_follows_nothing() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("rootfs/var/lib/data");
    let outside = tmp.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), b"host secret").unwrap();
    fs::create_dir_all(src.join("sub/deep")).unwrap();
    fs::write(src.join("sub/deep/file"), b"content").unwrap();
    fs::write(src.join("suid"), b"x").unwrap();
    let own = |p: &Path, u, g| {
        rfs::chownat(
            CWD,
            p,
            Some(rfs::Uid::from_raw(u)),
            Some(rfs::Gid::from_raw(g)),
            rfs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap()
    };
    own(&src.join("suid"), 0, 50);
    rfs::chmod(src.join("suid").as_path(), Mode::from_raw_mode(0o2755)).unwrap();
    own(&src.join("sub"), 999, 999);
    rfs::chmod(src.join("sub").as_path(), Mode::from_raw_mode(0o1770)).unwrap();
    rfs::setxattr(
        src.join("sub/deep/file").as_path(),
        "user.mime",
        b"text/plain",
        XattrFlags::empty(),
    )
    .unwrap();
    symlink(&outside, src.join("to-outside")).unwrap();
    symlink(outside.join("secret"), src.join("secret-link")).unwrap();
    symlink("sub/deep", src.join("rel")).unwrap();
    own(&src.join("rel"), 7, 8);
    fs::hard_link(src.join("sub/deep/file"), src.join("hard")).unwrap();
    rfs::mknodat(
        CWD,
        src.join("fifo").as_path(),
        FileType::Fifo,
        Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    rfs::mknodat(
        CWD,
        src.join("zero").as_path(),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o600),
        rfs::makedev(1, 5),
    )
    .unwrap();
    own(&src, 33, 33);
    rfs::chmod(src.as_path(), Mode::from_raw_mode(0o750)).unwrap();
    let old = rfs::Timestamps {
        last_access: rfs::Timespec {
            tv_sec: 1_500_000_000,
            tv_nsec: 0,
        },
        last_modification: rfs::Timespec {
            tv_sec: 1_500_000_000,
            tv_nsec: 0,
        },
    };
    rfs::utimensat(
        CWD,
        src.join("sub/deep/file").as_path(),
        &old,
        rfs::AtFlags::empty(),
    )
    .unwrap();
    rfs::utimensat(CWD, src.join("sub").as_path(), &old, rfs::AtFlags::empty()).unwrap();

    let store = VolumeStore::open(tmp.path().join("volumes")).unwrap();
    let v = store.create("vol1", BTreeMap::new()).unwrap();
    assert!(copy_up(&src, &v.mountpoint).unwrap());
    let dst = &v.mountpoint;

    for rel in [
        "",
        "suid",
        "sub",
        "sub/deep",
        "sub/deep/file",
        "rel",
        "fifo",
        "zero",
        "to-outside",
    ] {
        assert_eq!(
            meta(&src.join(rel)),
            meta(&dst.join(rel)),
            "metadata of {rel:?}"
        );
    }
    assert_eq!(meta(dst).0, 33);
    assert_eq!(meta(dst).2 & 0o7777, 0o750);
    assert_eq!(fs::read(dst.join("sub/deep/file")).unwrap(), b"content");
    let mut buf = [0u8; 32];
    let n = rfs::getxattr(dst.join("sub/deep/file").as_path(), "user.mime", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"text/plain");
    // Symlinks copied as links, not followed.
    assert_eq!(fs::read_link(dst.join("to-outside")).unwrap(), outside);
    assert_eq!(
        fs::read_link(dst.join("secret-link")).unwrap(),
        outside.join("secret")
    );
    assert_eq!(
        fs::read_link(dst.join("rel")).unwrap(),
        Path::new("sub/deep")
    );
    assert!(fs::symlink_metadata(dst.join("to-outside"))
        .unwrap()
        .file_type()
        .is_symlink());
    // Hard links stay linked, devices stay devices.
    assert_eq!(
        fs::metadata(dst.join("hard")).unwrap().ino(),
        fs::metadata(dst.join("sub/deep/file")).unwrap().ino()
    );
    assert_eq!(
        fs::symlink_metadata(dst.join("zero")).unwrap().rdev(),
        rfs::makedev(1, 5)
    );
    // Nothing of the host was touched or pulled in.
    assert_eq!(fs::read(outside.join("secret")).unwrap(), b"host secret");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);

    // A volume with content is never filled again.
    fs::write(src.join("later"), b"l").unwrap();
    assert!(!copy_up(&src, dst).unwrap());
    assert!(!dst.join("later").exists());
    // A missing image path or a non-directory copies nothing.
    let v2 = store.create("vol2", BTreeMap::new()).unwrap();
    assert!(!copy_up(&tmp.path().join("nope"), &v2.mountpoint).unwrap());
    assert!(!copy_up(&src.join("suid"), &v2.mountpoint).unwrap());
    assert_eq!(fs::read_dir(&v2.mountpoint).unwrap().count(), 0);
}
