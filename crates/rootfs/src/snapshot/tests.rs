//! Real mounts on tempdirs (these tests need root). Every mount is owned by a guard
//! that unmounts it on drop, so a failing assertion leaves nothing mounted.

use super::*;
use rustix::fs::{FileType, XattrFlags};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::time::Instant;

/// Unmounts on drop, whatever happened.
struct Guard(RootfsMount);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = unmount_path(&self.0.target);
    }
}

/// The mount points at or under `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = fs::canonicalize(dir).unwrap();
    let text = fs::read("/proc/self/mountinfo").unwrap();
    mount_points(&text)
        .filter(|p| Path::new(std::ffi::OsStr::from_bytes(p)).starts_with(&dir))
        .map(|p| String::from_utf8_lossy(&p).into_owned())
        .collect()
}

fn whiteout(path: &Path) {
    rfs::mknodat(
        CWD,
        path,
        FileType::CharacterDevice,
        Mode::from_raw_mode(0),
        0,
    )
    .unwrap();
}

fn opaque(path: &Path) {
    rfs::setxattr(path, "trusted.overlay.opaque", b"y", XattrFlags::empty()).unwrap();
}

/// Two layers: bottom has a/file, b/x, d/keep; top whites out b/x and makes d opaque
/// with d/new. Returns (tempdir, lowers top-most first).
fn two_layers() -> (tempfile::TempDir, Vec<PathBuf>) {
    let tmp = tempfile::tempdir().unwrap();
    let bottom = tmp.path().join("layers/bottom");
    let top = tmp.path().join("layers/top");
    for d in ["a", "b", "d"] {
        fs::create_dir_all(bottom.join(d)).unwrap();
    }
    fs::write(bottom.join("a/file"), b"from bottom").unwrap();
    fs::write(bottom.join("b/x"), b"x").unwrap();
    fs::write(bottom.join("b/y"), b"y").unwrap();
    fs::write(bottom.join("d/keep"), b"hidden by opaque").unwrap();
    fs::create_dir_all(top.join("b")).unwrap();
    fs::create_dir_all(top.join("d")).unwrap();
    whiteout(&top.join("b/x"));
    opaque(&top.join("d"));
    fs::write(top.join("d/new"), b"new").unwrap();
    (tmp, vec![top, bottom])
}

fn check_two_layer_view(merged: &Path) {
    assert_eq!(fs::read(merged.join("a/file")).unwrap(), b"from bottom");
    assert!(!merged.join("b/x").exists(), "whiteout did not hide b/x");
    assert_eq!(fs::read(merged.join("b/y")).unwrap(), b"y");
    assert!(!merged.join("d/keep").exists(), "opaque dir leaked d/keep");
    assert_eq!(fs::read(merged.join("d/new")).unwrap(), b"new");
}

fn overlay_view(api: Api) {
    let (tmp, lowers) = two_layers();
    let cdir = tmp.path().join("containers/c1");
    let m = prepare(&cdir, &lowers).unwrap();
    assert!(matches!(m.kind, RootfsKind::Overlay { .. }));
    assert_eq!(m.target, fs::canonicalize(&cdir).unwrap().join("merged"));
    let g = Guard(m.clone());
    mount_using(&m, api).unwrap();
    assert!(is_mounted(&m).unwrap());
    check_two_layer_view(&m.target);

    // Writes land in the upper dir; lower dirs are untouched.
    fs::write(m.target.join("c"), b"written").unwrap();
    fs::write(m.target.join("a/file"), b"changed").unwrap();
    fs::remove_file(m.target.join("b/y")).unwrap();
    assert_eq!(fs::read(cdir.join("upper/c")).unwrap(), b"written");
    assert_eq!(fs::read(cdir.join("upper/a/file")).unwrap(), b"changed");
    assert_eq!(fs::read(lowers[1].join("a/file")).unwrap(), b"from bottom");
    assert!(lowers[1].join("b/y").exists());
    assert!(!lowers[0].join("c").exists());

    unmount(&m).unwrap();
    assert!(!is_mounted(&m).unwrap());
    assert!(
        mounts_under(tmp.path()).is_empty(),
        "{:?}",
        mounts_under(tmp.path())
    );
    // No temp link dirs left beside the upper dir.
    let mut names: Vec<_> = fs::read_dir(&cdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["merged", "upper", "work"]);
    // Unmounting what is not mounted is fine.
    unmount(&m).unwrap();

    // Prepare again (restart): the upper dir is kept, and mounts again.
    let m2 = prepare(&cdir, &lowers).unwrap();
    assert_eq!(m2, m);
    mount(&m2).unwrap();
    assert_eq!(fs::read(m2.target.join("c")).unwrap(), b"written");
    assert!(!m2.target.join("b/y").exists());
    drop(g);
    assert!(mounts_under(tmp.path()).is_empty());
}

#[test]
fn overlay_with_new_mount_api() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    overlay_view(Api::Auto);
}

#[test]
fn overlay_with_legacy_mount() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    overlay_view(Api::Legacy);
}

/// 70 layers under long paths: absolute lowerdirs alone are over 4.7 KB.
fn many_layers(tmp: &Path, n: usize) -> Vec<PathBuf> {
    let mut lowers = Vec::new();
    for i in 0..n {
        let hex = format!("{:064x}", i as u128 * 0x9e37_79b9_7f4a_7c15);
        let d = tmp.join("layers").join(hex);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join(format!("f{i}")), i.to_string()).unwrap();
        fs::write(d.join("common"), i.to_string()).unwrap();
        lowers.push(d);
    }
    lowers.reverse(); // top-most (the last written) first
    lowers
}

fn seventy_layers(api: Api) {
    let tmp = tempfile::tempdir().unwrap();
    let lowers = many_layers(tmp.path(), 70);
    let total: usize = lowers.iter().map(|l| l.as_os_str().len() + 1).sum();
    assert!(total > PAGE_LIMIT, "test lowers only {total} bytes");
    let m = prepare(&tmp.path().join("c"), &lowers).unwrap();
    assert!(m.overlay_options().unwrap().len() > PAGE_LIMIT);
    let _g = Guard(m.clone());
    let t = Instant::now();
    mount_using(&m, api).unwrap();
    let mounted = t.elapsed();
    for i in 0..70 {
        assert_eq!(
            fs::read_to_string(m.target.join(format!("f{i}"))).unwrap(),
            i.to_string()
        );
    }
    assert_eq!(fs::read_to_string(m.target.join("common")).unwrap(), "69");
    let t = Instant::now();
    unmount(&m).unwrap();
    let unmounted = t.elapsed();
    eprintln!("70-layer overlay ({api:?}): mount {mounted:?}, unmount {unmounted:?}");
    assert!(mounts_under(tmp.path()).is_empty());
}

#[test]
fn seventy_layers_new_mount_api() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    seventy_layers(Api::Auto);
}

#[test]
fn seventy_layers_legacy_mount_through_short_links() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    seventy_layers(Api::Legacy);
}

#[test]
fn busy_mount_is_detached() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let (tmp, lowers) = two_layers();
    let m = prepare(&tmp.path().join("c"), &lowers).unwrap();
    let _g = Guard(m.clone());
    mount(&m).unwrap();
    // An open file and a process cwd keep the mount busy.
    let f = fs::File::open(m.target.join("a/file")).unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .current_dir(&m.target)
        .spawn()
        .unwrap();
    let r = unmount(&m);
    let _ = child.kill();
    let _ = child.wait();
    r.unwrap();
    assert!(!is_mounted(&m).unwrap());
    assert!(mounts_under(tmp.path()).is_empty());
    drop(f);
}

#[test]
fn stacked_mounts_are_all_removed() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let (tmp, lowers) = two_layers();
    let m = prepare(&tmp.path().join("c"), &lowers).unwrap();
    let _g = Guard(m.clone());
    mount(&m).unwrap();
    rustix::mount::mount_bind(&lowers[1], &m.target).unwrap();
    assert_eq!(mounts_under(tmp.path()).len(), 2);
    unmount(&m).unwrap();
    assert!(mounts_under(tmp.path()).is_empty());
}

#[test]
fn image_without_layers_mounts_an_empty_root() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let m = prepare(&tmp.path().join("c"), &[]).unwrap();
    let _g = Guard(m.clone());
    mount(&m).unwrap();
    assert_eq!(fs::read_dir(&m.target).unwrap().count(), 0);
    fs::write(m.target.join("x"), b"x").unwrap();
    unmount(&m).unwrap();
    assert!(tmp.path().join("c/upper/x").exists());
}

#[test]
fn mount_errors_name_the_cause() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let (tmp, lowers) = two_layers();
    let m = prepare(&tmp.path().join("c"), &lowers).unwrap();
    let _g = Guard(m.clone());
    fs::remove_dir_all(&lowers[1]).unwrap();
    let e = mount(&m).unwrap_err();
    let s = e.to_string();
    assert!(s.contains("bottom"), "{s}");
    assert!(!is_mounted(&m).unwrap());
    // prepare itself refuses a missing layer dir.
    let e = prepare(&tmp.path().join("d"), &lowers).unwrap_err();
    assert_eq!(e.kind(), coracle_core::ErrorKind::NotFound, "{e}");
}

#[test]
fn copy_backend_applies_whiteouts_and_keeps_metadata() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let (tmp, lowers) = two_layers();
    let bottom = &lowers[1];
    // Metadata to keep: owner, setuid mode, xattr, device, fifo, symlink, hard link.
    fs::write(bottom.join("suid"), b"s").unwrap();
    rfs::chown(
        bottom.join("suid").as_path(),
        Some(rfs::Uid::from_raw(1000)),
        Some(rfs::Gid::from_raw(1001)),
    )
    .unwrap();
    rfs::chmod(bottom.join("suid").as_path(), Mode::from_raw_mode(0o4755)).unwrap();
    rfs::setxattr(
        bottom.join("suid").as_path(),
        "user.k",
        b"v",
        XattrFlags::empty(),
    )
    .unwrap();
    rfs::mknodat(
        CWD,
        bottom.join("null").as_path(),
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        rfs::makedev(1, 3),
    )
    .unwrap();
    symlink("/etc/passwd", bottom.join("link")).unwrap();
    fs::hard_link(bottom.join("a/file"), bottom.join("a/hard")).unwrap();

    let cdir = tmp.path().join("c");
    let opts = PrepareOptions {
        backend: Backend::Copy,
        ..Default::default()
    };
    let m = prepare_with(&cdir, &lowers, &opts).unwrap();
    assert_eq!(m.kind, RootfsKind::Copy);
    assert!(is_mounted(&m).unwrap());
    mount(&m).unwrap(); // no-op
    check_two_layer_view(&m.target);
    let md = fs::symlink_metadata(m.target.join("suid")).unwrap();
    assert_eq!(
        (md.uid(), md.gid(), md.mode() & 0o7777),
        (1000, 1001, 0o4755)
    );
    let mut v = [0u8; 8];
    let n = rfs::getxattr(m.target.join("suid").as_path(), "user.k", &mut v).unwrap();
    assert_eq!(&v[..n], b"v");
    let md = fs::symlink_metadata(m.target.join("null")).unwrap();
    assert_eq!(md.rdev(), rfs::makedev(1, 3));
    assert_eq!(
        fs::read_link(m.target.join("link")).unwrap(),
        Path::new("/etc/passwd")
    );
    let (a, h) = (
        fs::metadata(m.target.join("a/file")).unwrap(),
        fs::metadata(m.target.join("a/hard")).unwrap(),
    );
    assert_eq!(a.ino(), h.ino());
    // Whiteout devices and overlay xattrs do not appear in the copy.
    let mut buf = [0u8; 4];
    assert!(rfs::getxattr(
        m.target.join("d").as_path(),
        "trusted.overlay.opaque",
        &mut buf
    )
    .is_err());
    // Prepared again, the copy (with the container's changes) stays.
    fs::write(m.target.join("mine"), b"m").unwrap();
    let m2 = prepare_with(&cdir, &lowers, &opts).unwrap();
    assert!(m2.target.join("mine").exists());
    unmount(&m2).unwrap();
    assert!(mounts_under(tmp.path()).is_empty());
    // No temp copy dirs left.
    assert!(fs::read_dir(&cdir).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with('.')));
}

#[test]
fn options_string_and_mountinfo_parsing() {
    let m = RootfsMount {
        target: "/c/merged".into(),
        kind: RootfsKind::Overlay {
            lowers: vec!["/l/b".into(), "/l/a:x,y".into()],
            upper: "/c/upper".into(),
            work: "/c/work".into(),
            options: OverlayOptions {
                rootless: true,
                volatile: true,
            },
        },
    };
    assert_eq!(
        m.overlay_options().unwrap(),
        "lowerdir=/l/b:/l/a\\:x\\,y,upperdir=/c/upper,workdir=/c/work,index=off,userxattr,volatile"
    );
    let info =
        b"36 35 98:0 / /mnt/with\\040space rw - ext3 /dev/root rw\n37 35 98:0 / /x rw - ext3 a b\n";
    let pts: Vec<_> = mount_points(info).collect();
    assert_eq!(pts, vec![b"/mnt/with space".to_vec(), b"/x".to_vec()]);
    assert!(overlay_supported());
    assert_eq!(parse_release("6.18.44-fc-v782\n"), Some((6, 18)));
    assert_eq!(parse_release("5.4.0"), Some((5, 4)));
    assert_eq!(parse_release("6.8-rc1"), Some((6, 8)));
    assert_eq!(parse_release("x"), None);
}

/// The engine's fallback: an overlay prepared, its mount refused (a store on
/// overlayfs), then a copy into the same container dir. The copy must replace the
/// empty mount point the overlay prepare made, not take it for a finished copy.
#[test]
fn copy_after_a_failed_overlay_prepare_fills_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let layer = tmp.path().join("layer");
    fs::create_dir_all(layer.join("bin")).unwrap();
    fs::write(layer.join("bin/echo"), b"#!").unwrap();
    let cdir = tmp.path().join("c");
    let overlay = PrepareOptions {
        backend: Backend::Overlay,
        ..Default::default()
    };
    let m = prepare_with(&cdir, std::slice::from_ref(&layer), &overlay).unwrap();
    assert!(m.target.is_dir());
    let copy = PrepareOptions {
        backend: Backend::Copy,
        ..Default::default()
    };
    let m = prepare_with(&cdir, &[layer], &copy).unwrap();
    assert_eq!(m.kind, RootfsKind::Copy);
    assert_eq!(fs::read(m.target.join("bin/echo")).unwrap(), b"#!");
    assert!(!cdir.join("upper").exists() && !cdir.join("work").exists());
}
