//! Copies between real directory trees (ownership and device nodes need root, as the
//! other filesystem tests of this crate).

use super::*;
use crate::testutil::{Sandbox, Tar, DEFAULT, M};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::PathBuf;

const TO_ROOT: ExtractOptions = ExtractOptions {
    owner: Owner::Fixed { uid: 0, gid: 0 },
    no_overwrite_dir_non_dir: true,
};
const KEEP: ExtractOptions = ExtractOptions {
    owner: Owner::Archive,
    no_overwrite_dir_non_dir: true,
};

#[test]
fn docker_path_rules() {
    assert_eq!(clean("a/../../b//c/."), "/b/c");
    assert_eq!(clean(""), "/");
    assert_eq!(container_path("etc/"), "/etc/");
    assert_eq!(container_path("/etc/."), "/etc/.");
    assert_eq!(container_path("/etc/./"), "/etc/./");
    assert_eq!(container_path("/"), "/");
    assert_eq!(container_path("."), "/.");
    assert!(asserts_directory("/x/") && asserts_directory("/x/.") && !asserts_directory("/x"));
    assert_eq!(split_path_dir_entry("/a/b"), ("/a".into(), "b".into()));
    assert_eq!(split_path_dir_entry("/a/b/"), ("/a".into(), "b".into()));
    assert_eq!(split_path_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
    assert_eq!(split_path_dir_entry("/a"), ("/".into(), "a".into()));
    assert_eq!(split_path_dir_entry("/"), ("/".into(), "/".into()));
    assert_eq!(archive_name("/etc/hosts"), "hosts");
    assert_eq!(archive_name("/etc/"), "etc");
    assert_eq!(archive_name("/etc/."), ".");
    assert_eq!(archive_name("/"), ".");
    assert_eq!(base("/a/b//"), "b");
}

#[test]
fn docker_copy_plans() {
    let dst = |path: &str, exists, is_dir| CopyInfo {
        path: path.into(),
        exists,
        is_dir,
    };
    let plan = |dir: &str, name: &str| CopyPlan {
        dir: dir.into(),
        name: name.into(),
    };
    // Onto an existing directory: inside it, under the source's name.
    assert_eq!(
        plan_copy(true, "src", &dst("/d", true, true)).unwrap(),
        plan("/d", "src")
    );
    assert_eq!(
        plan_copy(false, "f", &dst("/d/", true, true)).unwrap(),
        plan("/d/", "f")
    );
    // The contents of a directory (`src/.`) go straight in.
    assert_eq!(
        plan_copy(true, ".", &dst("/d", true, true)).unwrap(),
        plan("/d", ".")
    );
    // A new name: created in the parent under that name.
    assert_eq!(
        plan_copy(true, "src", &dst("/d/new", false, false)).unwrap(),
        plan("/d", "new")
    );
    assert_eq!(
        plan_copy(true, ".", &dst("/d/new", false, false)).unwrap(),
        plan("/d", "new")
    );
    assert_eq!(
        plan_copy(false, "f", &dst("/d/g", false, false)).unwrap(),
        plan("/d", "g")
    );
    // Over an existing file.
    assert_eq!(
        plan_copy(false, "f", &dst("/d/g", true, false)).unwrap(),
        plan("/d", "g")
    );
    // docker's refusals.
    let e = plan_copy(true, "src", &dst("/d/g", true, false)).unwrap_err();
    assert_eq!(e.to_string(), "cannot copy directory");
    let e = plan_copy(false, "f", &dst("/d/nodir/", false, false)).unwrap_err();
    assert_eq!(e.to_string(), "no such directory");
    // A directory onto a missing path ending in `/` is created there.
    assert_eq!(
        plan_copy(true, "src", &dst("/d/new/", false, false)).unwrap(),
        plan("/d", "new")
    );
}

/// A container-like tree: /etc/passwd, /escape -> /, /up -> ../../.., a directory,
/// and a "host" directory beside it with its own /etc/passwd.
struct T {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    host: PathBuf,
}

fn setup() -> T {
    let tmp = tempfile::tempdir().unwrap();
    let base = fs::canonicalize(tmp.path()).unwrap();
    let root = base.join("root");
    let host = base.join("host");
    fs::create_dir_all(root.join("etc")).unwrap();
    fs::create_dir_all(root.join("data/sub")).unwrap();
    fs::create_dir_all(host.join("etc")).unwrap();
    fs::write(root.join("etc/passwd"), b"container").unwrap();
    fs::write(host.join("etc/passwd"), b"host").unwrap();
    fs::write(root.join("data/a"), b"aaa").unwrap();
    fs::write(root.join("data/sub/b"), b"bb").unwrap();
    symlink("/", root.join("escape")).unwrap();
    symlink("../../..", root.join("data/up")).unwrap();
    symlink(host.join("etc"), root.join("hostetc")).unwrap();
    T {
        _tmp: tmp,
        root,
        host,
    }
}

fn read_entry(tree: &Tree, path: &str) -> Vec<u8> {
    let e = tree.stat(path).unwrap();
    let mut tar = Vec::new();
    write_archive(&e, &archive_name(&container_path(path)), &mut tar).unwrap();
    let mut a = tar::Archive::new(&tar[..]);
    let mut first = a.entries().unwrap().next().unwrap().unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut first, &mut out).unwrap();
    out
}

#[test]
fn stat_resolves_inside_the_tree() {
    let t = setup();
    let tree = Tree::open(&t.root).unwrap();
    // The last component is not followed...
    let e = tree.stat("/escape").unwrap();
    assert!(e.stat.is_symlink());
    assert_eq!(e.stat.link_target.as_deref(), Some(&b"/"[..]));
    // ...unless the path says "directory".
    assert!(tree.stat("/escape/").unwrap().stat.is_dir());
    // Symlinks before it lead back into the tree, never to the host.
    assert_eq!(read_entry(&tree, "/escape/etc/passwd"), b"container");
    assert_eq!(read_entry(&tree, "/data/up/etc/passwd"), b"container");
    assert_eq!(read_entry(&tree, "../../etc/passwd"), b"container");
    assert!(matches!(
        tree.stat("/hostetc/passwd"),
        Err(CopyError::NotFound { .. })
    ));
    let e = tree.stat("/nope/x").unwrap_err();
    assert_eq!(e.kind(), coracle_core::ErrorKind::NotFound);
    assert!(
        tree.stat("/etc/passwd/").is_err(),
        "a file with a trailing slash"
    );
    // docker's extraction point rules.
    assert!(matches!(
        tree.resolve_dir("/nope"),
        Err(CopyError::NotFound { .. })
    ));
    let e = tree.resolve_dir("/etc/passwd").unwrap_err();
    assert_eq!(e.to_string(), "extraction point is not a directory");
    assert!(tree.resolve_dir("/escape").is_ok());
}

fn entries_of(tar: &[u8]) -> Vec<(String, tar::EntryType, String)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default();
            (
                String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                e.header().entry_type(),
                link,
            )
        })
        .collect()
}

#[test]
fn archive_names_as_docker() {
    let t = setup();
    let tree = Tree::open(&t.root).unwrap();
    let names = |path: &str| {
        let mut tar = Vec::new();
        let e = tree.stat(path).unwrap();
        write_archive(&e, &archive_name(&container_path(path)), &mut tar).unwrap();
        entries_of(&tar)
            .into_iter()
            .map(|(n, _, _)| n)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names("/data"),
        ["data/", "data/a", "data/sub/", "data/sub/b", "data/up"]
    );
    assert_eq!(names("/data/."), ["./", "./a", "./sub/", "./sub/b", "./up"]);
    assert_eq!(names("/data/sub/b"), ["b"]);
    assert_eq!(names("/escape"), ["escape"]);
}

#[test]
fn round_trip_keeps_types_modes_owners_links_and_long_names() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let t = setup();
    let src = t.root.join("data");
    let long_dir = "d".repeat(90);
    let long_file = format!("{long_dir}/{}", "f".repeat(60));
    fs::create_dir(src.join(&long_dir)).unwrap();
    fs::write(src.join(&long_file), b"long").unwrap();
    symlink("t".repeat(150), src.join("longlink")).unwrap();
    fs::hard_link(src.join("a"), src.join("a2")).unwrap();
    fs::set_permissions(src.join("a"), fs::Permissions::from_mode(0o4751)).unwrap();
    rustix::fs::chown(
        src.join("sub/b"),
        Some(rustix::fs::Uid::from_raw(1234)),
        Some(rustix::fs::Gid::from_raw(5678)),
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        src.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        src.join("null"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    let from = Tree::open(&t.root).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let to = Tree::open(dst.path()).unwrap();
    let e = from.stat("/data").unwrap();
    let (a, x) = copy_entry(&e, "copy", &to, "/", &KEEP).unwrap();
    assert_eq!(a.content_bytes, x.content_bytes);
    assert_eq!(x.content_bytes, 3 + 2 + 4);
    let out = dst.path().join("copy");
    assert_eq!(fs::read(out.join(&long_file)).unwrap(), b"long");
    assert_eq!(
        fs::read_link(out.join("longlink")).unwrap(),
        PathBuf::from("t".repeat(150))
    );
    assert_eq!(
        fs::read_link(out.join("up")).unwrap(),
        PathBuf::from("../../..")
    );
    let (m1, m2) = (
        fs::metadata(out.join("a")).unwrap(),
        fs::metadata(out.join("a2")).unwrap(),
    );
    assert_eq!(m1.ino(), m2.ino(), "hard link kept");
    assert_eq!(m1.mode() & 0o7777, 0o4751);
    let b = fs::metadata(out.join("sub/b")).unwrap();
    assert_eq!((b.uid(), b.gid()), (1234, 5678));
    assert_eq!(b.mtime(), fs::metadata(src.join("sub/b")).unwrap().mtime());
    assert_eq!(
        fs::metadata(out.join("sub")).unwrap().mtime(),
        fs::metadata(src.join("sub")).unwrap().mtime()
    );
    let fifo = fs::symlink_metadata(out.join("fifo")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()));
    assert_eq!(fifo.mode() & 0o777, 0o640);
    let null = fs::symlink_metadata(out.join("null")).unwrap();
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));

    // Owned by root when asked, whatever the archive says.
    let dst2 = tempfile::tempdir().unwrap();
    let to2 = Tree::open(dst2.path()).unwrap();
    copy_entry(&e, "copy", &to2, "/", &TO_ROOT).unwrap();
    let b = fs::metadata(dst2.path().join("copy/sub/b")).unwrap();
    assert_eq!((b.uid(), b.gid()), (0, 0));
    assert_eq!(
        fs::metadata(dst2.path().join("copy/a")).unwrap().mode() & 0o7777,
        0o4751
    );
}

#[test]
fn extracting_never_leaves_the_tree() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let s = Sandbox::new();
    fs::create_dir_all(s.dest.join("etc")).unwrap();
    fs::write(s.dest.join("etc/passwd"), b"inside").unwrap();
    symlink("/", s.dest.join("escape")).unwrap();
    symlink(format!("{}/etc", s.abs()), s.dest.join("hostetc")).unwrap();
    let tree = Tree::open(&s.dest).unwrap();
    // Through symlinks of the tree and of the archive itself: all land inside.
    let mut tar = Tar::new();
    tar.file("escape/etc/passwd", b"via escape", DEFAULT)
        .symlink("link", "/", DEFAULT)
        .file("link/written-through-link", b"x", DEFAULT)
        .symlink("up", "../../../..", DEFAULT)
        .file("up/etc/up-file", b"y", DEFAULT)
        .raw(b"/abs-name", b'0', b"", b"abs");
    tree.extract("/escape/", &tar.finish()[..], &TO_ROOT)
        .unwrap();
    assert_eq!(fs::read(s.dest.join("etc/passwd")).unwrap(), b"via escape");
    assert_eq!(fs::read(s.dest.join("written-through-link")).unwrap(), b"x");
    assert_eq!(fs::read(s.dest.join("etc/up-file")).unwrap(), b"y");
    // A dangling link (to the host's path, absent inside) is not created through,
    // as docker's MkdirAll.
    let mut tar = Tar::new();
    tar.file("hostetc/passwd", b"z", DEFAULT);
    let e = tree.extract("/", &tar.finish()[..], &TO_ROOT).unwrap_err();
    assert_eq!(e.kind(), coracle_core::ErrorKind::NotFound, "{e}");
    assert_eq!(fs::read(s.dest.join("abs-name")).unwrap(), b"abs");
    s.assert_outside_untouched();

    // `..` out of the extraction directory and hard links out of it are refused.
    let mut tar = Tar::new();
    tar.raw(b"../../../sentinel", b'0', b"", b"evil");
    let e = tree
        .extract("/etc", &tar.finish()[..], &TO_ROOT)
        .unwrap_err();
    assert!(e.to_string().contains("is outside of"), "{e}");
    let mut tar = Tar::new();
    tar.raw(b"h", b'1', b"../escape", b"");
    let e = tree
        .extract("/etc", &tar.finish()[..], &TO_ROOT)
        .unwrap_err();
    assert!(e.to_string().contains("invalid hardlink"), "{e}");
    s.assert_outside_untouched();
}

#[test]
fn dir_and_non_dir_never_replace_each_other() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let t = setup();
    let tree = Tree::open(&t.root).unwrap();
    let mut tar = Tar::new();
    tar.file("data", b"x", DEFAULT);
    let e = tree.extract("/", &tar.finish()[..], &TO_ROOT).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"cannot overwrite directory "/data" with non-directory "/""#
    );
    let mut tar = Tar::new();
    tar.dir("etc/passwd", DEFAULT);
    let e = tree.extract("/", &tar.finish()[..], &TO_ROOT).unwrap_err();
    assert!(
        e.to_string().starts_with("cannot overwrite non-directory"),
        "{e}"
    );
    // A file replaces a file; a directory merges into a directory.
    let mut tar = Tar::new();
    tar.dir("data", M::mode(0o700))
        .file("etc/passwd", b"new", DEFAULT);
    tree.extract("/", &tar.finish()[..], &TO_ROOT).unwrap();
    assert_eq!(fs::read(t.root.join("etc/passwd")).unwrap(), b"new");
    assert_eq!(fs::read(t.root.join("data/a")).unwrap(), b"aaa");
    assert_eq!(
        fs::metadata(t.root.join("data")).unwrap().mode() & 0o777,
        0o700
    );
    // Missing parents are made.
    let mut tar = Tar::new();
    tar.file("new/deep/f", b"f", DEFAULT);
    tree.extract("/data", &tar.finish()[..], &TO_ROOT).unwrap();
    assert_eq!(fs::read(t.root.join("data/new/deep/f")).unwrap(), b"f");
    assert_eq!(fs::read(t.host.join("etc/passwd")).unwrap(), b"host");
}

#[test]
fn private_rootfs_has_the_binds_and_vanishes() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("layer");
    fs::create_dir_all(lower.join("etc")).unwrap();
    fs::write(lower.join("etc/os"), b"layer").unwrap();
    let cdir = tmp.path().join("c");
    fs::create_dir(&cdir).unwrap();
    let rootfs = crate::snapshot::prepare(&cdir, std::slice::from_ref(&lower)).unwrap();
    let vol = tmp.path().join("vol");
    let ro = tmp.path().join("ro");
    fs::create_dir_all(&vol).unwrap();
    fs::create_dir_all(&ro).unwrap();
    fs::write(vol.join("in-volume"), b"v").unwrap();
    let binds = [
        BindMount {
            source: vol.clone(),
            destination: "/data".into(),
            read_only: false,
        },
        BindMount {
            source: ro.clone(),
            destination: "/ro".into(),
            read_only: true,
        },
    ];
    let seen = with_private_rootfs(&rootfs, &binds, false, |tree| {
        let os = read_entry(tree, "/etc/os");
        let v = read_entry(tree, "/data/in-volume");
        let mut tar = Tar::new();
        tar.file("new", b"n", DEFAULT);
        tree.extract("/data", &tar.finish()[..], &TO_ROOT).unwrap();
        let rw = tree
            .writability(&tree.resolve_dir("/data").unwrap())
            .unwrap();
        let rof = tree.writability(&tree.resolve_dir("/ro").unwrap()).unwrap();
        let root = tree
            .writability(&tree.resolve_dir("/etc").unwrap())
            .unwrap();
        (os, v, rw, rof, root)
    })
    .unwrap();
    assert_eq!(seen.0, b"layer");
    assert_eq!(seen.1, b"v");
    assert_eq!(
        (seen.2, seen.3, seen.4),
        (
            Writability::Writable,
            Writability::ReadOnlyMount,
            Writability::Writable
        )
    );
    // Written through the bind: it is in the volume.
    assert_eq!(fs::read(vol.join("new")).unwrap(), b"n");
    // Nothing stays mounted here.
    assert!(!crate::snapshot::is_mounted(&rootfs).unwrap());
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(tmp.path().to_str().unwrap()), "{mounts}");

    // A read-only root (`--read-only`): the root says so, the volume does not.
    let (root, data) = with_private_rootfs(&rootfs, &binds, true, |tree| {
        (
            tree.writability(&tree.resolve_dir("/etc").unwrap())
                .unwrap(),
            tree.writability(&tree.resolve_dir("/data").unwrap())
                .unwrap(),
        )
    })
    .unwrap();
    assert_eq!(
        (root, data),
        (Writability::ReadOnlyRoot, Writability::Writable)
    );
    assert!(!crate::snapshot::is_mounted(&rootfs).unwrap());
}

#[test]
fn mounted_rootfs_stays_mounted() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let lower = tmp.path().join("layer");
    fs::create_dir_all(&lower).unwrap();
    fs::write(lower.join("f"), b"f").unwrap();
    let cdir = tmp.path().join("c");
    fs::create_dir(&cdir).unwrap();
    let rootfs = crate::snapshot::prepare(&cdir, std::slice::from_ref(&lower)).unwrap();
    crate::snapshot::mount(&rootfs).unwrap();
    let r = with_private_rootfs(&rootfs, &[], false, |tree| read_entry(tree, "/f"));
    let still = crate::snapshot::is_mounted(&rootfs).unwrap();
    crate::snapshot::unmount(&rootfs).unwrap();
    assert_eq!(r.unwrap(), b"f");
    assert!(still, "the host's mount was taken away");
}
