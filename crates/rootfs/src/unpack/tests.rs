//! Unpack tests on tempdirs (they need root for owners, devices and trusted xattrs,
//! which is how this project's tests run).

use super::*;
use crate::testutil::{Sandbox, Tar, DEFAULT, M};
use rustix::fs as rfs;
use std::fs;
use std::io::{Cursor, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;
use tar::EntryType as T;

fn overlay() -> UnpackOptions {
    UnpackOptions::new(WhiteoutMode::Overlay, "sha256:test")
}

fn apply() -> UnpackOptions {
    UnpackOptions::new(WhiteoutMode::Apply, "sha256:test")
}

fn unpack(tar: &[u8], dest: &Path, opts: &UnpackOptions) -> Result<UnpackStats, UnpackError> {
    unpack_layer(tar, dest, opts)
}

fn lmeta(p: impl AsRef<Path>) -> fs::Metadata {
    fs::symlink_metadata(p.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
}

fn xattr(p: impl AsRef<Path>, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    match rfs::lgetxattr(p.as_ref(), name, &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(rustix::io::Errno::NODATA) => None,
        Err(e) => panic!("lgetxattr {}: {e}", p.as_ref().display()),
    }
}

fn names(dir: impl AsRef<Path>) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir.as_ref())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn every_entry_type() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let s = Sandbox::new();
    let mut t = Tar::new();
    t.dir("d/", M::mode(0o755))
        .file("d/f", b"hello", M::mode(0o644))
        .symlink("d/sym", "f", DEFAULT)
        .symlink("d/abs", "/etc/passwd", DEFAULT)
        .hardlink("d/hard", "d/f")
        .node("d/fifo", T::Fifo, 0, 0, M::mode(0o640))
        .node("d/null", T::Char, 1, 3, M::mode(0o666))
        .node("d/loop9", T::Block, 7, 9, M::mode(0o660));
    let stats = unpack(&t.finish(), &s.dest, &overlay()).unwrap();
    assert_eq!(stats.entries, 8);
    assert_eq!(stats.size, 5);
    let d = s.dest.join("d");
    assert!(lmeta(&d).is_dir());
    assert_eq!(fs::read(d.join("f")).unwrap(), b"hello");
    assert_eq!(fs::read_link(d.join("sym")).unwrap(), PathBuf::from("f"));
    assert_eq!(
        fs::read_link(d.join("abs")).unwrap(),
        PathBuf::from("/etc/passwd")
    );
    assert_eq!(lmeta(d.join("hard")).ino(), lmeta(d.join("f")).ino());
    assert_eq!(lmeta(d.join("f")).nlink(), 2);
    let fifo = lmeta(d.join("fifo"));
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o640);
    let null = lmeta(d.join("null"));
    assert!(null.file_type().is_char_device());
    assert_eq!((rfs::major(null.rdev()), rfs::minor(null.rdev())), (1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    let blk = lmeta(d.join("loop9"));
    assert!(blk.file_type().is_block_device());
    assert_eq!((rfs::major(blk.rdev()), rfs::minor(blk.rdev())), (7, 9));
    s.assert_outside_untouched();
}

#[test]
fn owners_and_special_modes_survive() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let s = Sandbox::new();
    let own = |mode, uid, gid| M {
        mode,
        uid,
        gid,
        ..DEFAULT
    };
    let mut t = Tar::new();
    t.dir("tmp", own(0o1777, 0, 0))
        .dir("shared", own(0o2775, 1000, 50))
        .file("bin/su", b"#!", own(0o4755, 0, 0))
        .file("bin/wall", b"#!", own(0o2755, 0, 5))
        .file("home/u/secret", b"s", own(0o600, 1234, 5678))
        .file("bin/owned-suid", b"x", own(0o6711, 1001, 1002))
        .file("ro", b"r", own(0o000, 7, 7))
        .symlink("link", "ro", own(0o777, 42, 43))
        .dir("locked", own(0o500, 9, 9))
        .file("locked/inside", b"i", own(0o400, 9, 9));
    unpack(&t.finish(), &s.dest, &overlay()).unwrap();
    let check = |p: &str, mode: u32, uid: u32, gid: u32| {
        let m = lmeta(s.dest.join(p));
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid()),
            (mode, uid, gid),
            "{p}"
        );
    };
    check("tmp", 0o1777, 0, 0);
    check("shared", 0o2775, 1000, 50);
    check("bin/su", 0o4755, 0, 0);
    check("bin/wall", 0o2755, 0, 5);
    check("home/u/secret", 0o600, 1234, 5678);
    check("bin/owned-suid", 0o6711, 1001, 1002);
    check("ro", 0o000, 7, 7);
    check("locked", 0o500, 9, 9);
    check("locked/inside", 0o400, 9, 9);
    let l = lmeta(s.dest.join("link"));
    assert!(l.file_type().is_symlink());
    assert_eq!((l.uid(), l.gid()), (42, 43));
    // Implicit parents (bin/, home/u/) are made 0755 root-owned, as docker does.
    check("home/u", 0o755, 0, 0);
}

#[test]
fn mtimes_of_files_dirs_and_symlinks() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let s = Sandbox::new();
    let at = |mtime| M { mtime, ..DEFAULT };
    let mut t = Tar::new();
    t.dir("a", M::mode(0o755))
        .dir("a/b", at(1_000_000_000))
        .file("a/b/f", b"x", at(1_100_000_000))
        .symlink("a/b/l", "f", at(1_200_000_000))
        .file("a/b/g", b"y", at(1_300_000_000))
        // PAX mtime with nanoseconds overrides the header's.
        .pax(&[("mtime", b"1400000000.25")])
        .file("a/pax", b"z", at(5));
    unpack(&t.finish(), &s.dest, &overlay()).unwrap();
    let m = |p: &str| lmeta(s.dest.join(p));
    // The dir's time is set after its children were written into it.
    assert_eq!(m("a/b").mtime(), 1_000_000_000);
    assert_eq!(m("a").mtime(), DEFAULT.mtime as i64);
    assert_eq!(m("a/b/f").mtime(), 1_100_000_000);
    assert_eq!(m("a/b/l").mtime(), 1_200_000_000);
    assert_eq!(m("a/b/g").mtime(), 1_300_000_000);
    assert_eq!(
        (m("a/pax").mtime(), m("a/pax").mtime_nsec()),
        (1_400_000_000, 250_000_000)
    );
}

#[test]
fn hardlinks_to_files_symlinks_and_across_dirs() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let s = Sandbox::new();
    let mut t = Tar::new();
    t.file("x/data", b"payload", DEFAULT)
        .symlink("x/sl", "/nowhere", DEFAULT)
        .hardlink("y/z/link-to-data", "x/data")
        .hardlink("./x/link-to-sl", "/x/sl")
        .file("x/replaced", b"old", DEFAULT)
        .hardlink("x/replaced", "x/data");
    unpack(&t.finish(), &s.dest, &overlay()).unwrap();
    let d = &s.dest;
    assert_eq!(lmeta(d.join("x/data")).nlink(), 3);
    assert_eq!(
        lmeta(d.join("y/z/link-to-data")).ino(),
        lmeta(d.join("x/data")).ino()
    );
    assert_eq!(fs::read(d.join("x/replaced")).unwrap(), b"payload");
    // A hard link to a symlink links the symlink itself, not its target.
    let l = lmeta(d.join("x/link-to-sl"));
    assert!(l.file_type().is_symlink());
    assert_eq!(l.ino(), lmeta(d.join("x/sl")).ino());
}

#[test]
fn hardlink_to_a_missing_target_fails_naming_the_entry() {
    let s = Sandbox::new();
    let mut t = Tar::new();
    t.hardlink("h", "not/there");
    let err = unpack(&t.finish(), &s.dest, &overlay()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("\"h\"") && msg.contains("sha256:test"),
        "{msg}"
    );
    assert!(msg.contains("linkat") || msg.contains("openat2"), "{msg}");
}

#[test]
fn xattrs_from_pax_records() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let s = Sandbox::new();
    // security.capability v2: cap_net_bind_service (bit 10) permitted + effective.
    let mut cap = vec![0u8; 20];
    cap[..4].copy_from_slice(&0x0200_0001u32.to_le_bytes());
    cap[4..8].copy_from_slice(&(1u32 << 10).to_le_bytes());
    let mut t = Tar::new();
    t.pax(&[
        ("SCHILY.xattr.security.capability", &cap),
        ("SCHILY.xattr.user.comment", b"hello \xff binary"),
        ("SCHILY.xattr.trusted.overlay.opaque", b"y"), // reserved: must be dropped
    ])
    .file("bin/ping", b"elf", M::mode(0o755))
    .pax(&[("SCHILY.xattr.user.dir", b"d")])
    .dir("data", M::mode(0o755))
    .pax(&[("SCHILY.xattr.trusted.sym", b"s")])
    .symlink("sym", "bin/ping", DEFAULT)
    // user.* is not allowed on special files (the kernel says EPERM): trusted.* is.
    .pax(&[
        ("SCHILY.xattr.trusted.fifo", b"f"),
        ("SCHILY.xattr.user.fifo", b"f"),
    ])
    .node("fifo", T::Fifo, 0, 0, M::mode(0o644));
    unpack(&t.finish(), &s.dest, &overlay()).unwrap();
    let d = &s.dest;
    assert_eq!(xattr(d.join("bin/ping"), "security.capability"), Some(cap));
    assert_eq!(
        xattr(d.join("bin/ping"), "user.comment").as_deref(),
        Some(&b"hello \xff binary"[..])
    );
    assert_eq!(xattr(d.join("bin/ping"), "trusted.overlay.opaque"), None);
    assert_eq!(
        xattr(d.join("data"), "user.dir").as_deref(),
        Some(&b"d"[..])
    );
    assert_eq!(
        xattr(d.join("sym"), "trusted.sym").as_deref(),
        Some(&b"s"[..])
    );
    assert_eq!(
        xattr(d.join("fifo"), "trusted.fifo").as_deref(),
        Some(&b"f"[..])
    );
    assert_eq!(xattr(d.join("fifo"), "user.fifo"), None);
    // Set after chown and chmod (chown clears security.capability).
    assert_eq!(lmeta(d.join("bin/ping")).mode() & 0o7777, 0o755);
}

#[test]
fn pax_uid_gid_override_the_header() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let s = Sandbox::new();
    let mut t = Tar::new();
    t.pax(&[("uid", b"3000000"), ("gid", b"3000001")])
        .file("big-ids", b"x", DEFAULT);
    unpack(&t.finish(), &s.dest, &overlay()).unwrap();
    let m = lmeta(s.dest.join("big-ids"));
    assert_eq!((m.uid(), m.gid()), (3_000_000, 3_000_001));
}

#[test]
fn long_and_non_ascii_names() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let s = Sandbox::new();
    let long_comp = "c".repeat(150);
    let deep: String = (0..12)
        .map(|i| format!("dir{i:02}-{}/", "x".repeat(20)))
        .collect();
    let deep_file = format!("{deep}{long_comp}.txt");
    assert!(deep_file.len() > 255);
    let pax_name = format!("pax/{}/ünïcødé-日本語-{}", "p".repeat(120), "q".repeat(120));
    let mut t = Tar::new();
    t.file(&long_comp, b"long", DEFAULT) // GNU longname
        .file(&deep_file, b"deep", DEFAULT)
        .file("héllo/日本語.txt", "ça va".as_bytes(), DEFAULT)
        .symlink("long-link", &format!("/{}", "t".repeat(200)), DEFAULT) // GNU longlink
        .hardlink("hard-long", &deep_file)
        .pax(&[("path", pax_name.as_bytes())])
        .file("short-name-overridden", b"pax", DEFAULT);
    unpack(&t.finish(), &s.dest, &overlay()).unwrap();
    let d = &s.dest;
    assert_eq!(fs::read(d.join(&long_comp)).unwrap(), b"long");
    assert_eq!(fs::read(d.join(&deep_file)).unwrap(), b"deep");
    assert_eq!(
        fs::read(d.join("héllo/日本語.txt")).unwrap(),
        "ça va".as_bytes()
    );
    assert_eq!(
        fs::read_link(d.join("long-link")).unwrap(),
        PathBuf::from(format!("/{}", "t".repeat(200)))
    );
    assert_eq!(fs::read(d.join("hard-long")).unwrap(), b"deep");
    assert_eq!(fs::read(d.join(&pax_name)).unwrap(), b"pax");
    assert!(!d.join("short-name-overridden").exists());
}

#[test]
fn overlay_whiteouts_become_devices_and_opaque_xattrs() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    for rootless in [false, true] {
        let s = Sandbox::new();
        let mut t = Tar::new();
        t.dir("etc", M::mode(0o755))
            .file("etc/.wh.motd", b"", DEFAULT)
            .dir("var/cache", M::mode(0o755))
            .file("var/cache/.wh..wh..opq", b"", DEFAULT)
            .file("var/cache/new", b"n", DEFAULT)
            .file(".wh.toplevel", b"", DEFAULT)
            .file("etc/.wh..wh.plnk", b"", DEFAULT)
            .file("etc/.wh..wh.aufs", b"", DEFAULT);
        let opts = UnpackOptions {
            rootless,
            ..overlay()
        };
        unpack(&t.finish(), &s.dest, &opts).unwrap();
        let d = &s.dest;
        for wh in ["etc/motd", "toplevel"] {
            let m = lmeta(d.join(wh));
            assert!(m.file_type().is_char_device(), "{wh}");
            assert_eq!(m.rdev(), 0, "{wh}");
        }
        assert_eq!(names(d.join("etc")), vec!["motd"], "no .wh. files left");
        let (set, unset) = if rootless {
            ("user.overlay.opaque", "trusted.overlay.opaque")
        } else {
            ("trusted.overlay.opaque", "user.overlay.opaque")
        };
        assert_eq!(xattr(d.join("var/cache"), set).as_deref(), Some(&b"y"[..]));
        assert_eq!(xattr(d.join("var/cache"), unset), None);
        assert_eq!(names(d.join("var/cache")), vec!["new"]);
        assert_eq!(xattr(d.join("var"), set), None);
    }
}

#[test]
fn apply_mode_whiteouts_and_opaque_dirs_across_layers() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let s = Sandbox::new();
    let mut l1 = Tar::new();
    l1.file("a/x", b"x", DEFAULT)
        .file("a/y", b"y", DEFAULT)
        .file("a/sub/old", b"old", DEFAULT)
        .file("a/sub/deeper/old2", b"old", DEFAULT)
        .file("b/z", b"z", DEFAULT)
        .file("b/keep", b"k", DEFAULT)
        .file("c/tree/f", b"f", DEFAULT)
        .file("top", b"t", DEFAULT)
        .symlink("c/link-out", "../../sentinel", DEFAULT);
    unpack(&l1.finish(), &s.dest, &apply()).unwrap();

    let mut l2 = Tar::new();
    l2.dir("a", M::mode(0o755))
        .file("a/.wh..wh..opq", b"", DEFAULT) // before a's children, as docker writes it
        .dir("a/sub", M::mode(0o755))
        .file("a/sub/new", b"new", DEFAULT)
        .file("a/y", b"y2", DEFAULT)
        .file("b/.wh.z", b"", DEFAULT)
        .file(".wh.c", b"", DEFAULT)
        .file(".wh.top", b"", DEFAULT)
        .file(".wh.never-existed", b"", DEFAULT)
        .file("gone/.wh.x", b"", DEFAULT) // parent missing: nothing to do
        .file("b/.wh..wh.plnk", b"", DEFAULT);
    let stats = unpack(&l2.finish(), &s.dest, &apply()).unwrap();
    assert_eq!(stats.entries, 11);
    let d = &s.dest;
    assert_eq!(names(d), vec!["a", "b"]);
    assert_eq!(names(d.join("a")), vec!["sub", "y"]);
    // a/sub was re-declared by layer 2, but what layer 1 put in it is hidden too.
    assert_eq!(names(d.join("a/sub")), vec!["new"]);
    assert_eq!(fs::read(d.join("a/y")).unwrap(), b"y2");
    assert_eq!(names(d.join("b")), vec!["keep"]);
    assert!(
        !d.join("gone").exists(),
        "a whiteout must not create its parent"
    );
    s.assert_outside_untouched();

    // Opaque marker after the children: the children of this layer stay.
    let mut l3 = Tar::new();
    l3.file("b/mine", b"m", DEFAULT)
        .file("b/.wh..wh..opq", b"", DEFAULT);
    unpack(&l3.finish(), &s.dest, &apply()).unwrap();
    assert_eq!(names(d.join("b")), vec!["mine"]);
}

#[test]
fn replacing_existing_paths_of_another_type() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let s = Sandbox::new();
    let mut l1 = Tar::new();
    l1.file("dir-then-file/child", b"c", DEFAULT)
        .file("file-then-dir", b"f", DEFAULT)
        .symlink("link-then-file", "/sentinel", DEFAULT)
        .file("merge/old", b"o", DEFAULT)
        .symlink("link-then-dir", "merge", DEFAULT)
        .node("fifo-then-link", T::Fifo, 0, 0, DEFAULT);
    unpack(&l1.finish(), &s.dest, &apply()).unwrap();
    let mut l2 = Tar::new();
    l2.file("dir-then-file", b"now a file", DEFAULT)
        .dir("file-then-dir", M::mode(0o700))
        .file("file-then-dir/x", b"x", DEFAULT)
        .file("link-then-file", b"replaced", DEFAULT)
        .dir("merge", M::mode(0o711))
        .file("merge/new", b"n", DEFAULT)
        .dir("link-then-dir", M::mode(0o755))
        .symlink("fifo-then-link", "merge", DEFAULT);
    unpack(&l2.finish(), &s.dest, &apply()).unwrap();
    let d = &s.dest;
    assert_eq!(fs::read(d.join("dir-then-file")).unwrap(), b"now a file");
    assert!(lmeta(d.join("file-then-dir")).is_dir());
    assert_eq!(fs::read(d.join("file-then-dir/x")).unwrap(), b"x");
    assert!(lmeta(d.join("link-then-file")).is_file());
    assert_eq!(fs::read(d.join("link-then-file")).unwrap(), b"replaced");
    assert_eq!(names(d.join("merge")), vec!["new", "old"]);
    assert_eq!(lmeta(d.join("merge")).mode() & 0o7777, 0o711);
    assert!(lmeta(d.join("link-then-dir")).is_dir());
    assert!(names(d.join("link-then-dir")).is_empty());
    assert!(lmeta(d.join("fifo-then-link")).file_type().is_symlink());
    s.assert_outside_untouched();
}

// ---- escapes -----------------------------------------------------------------------

/// Builds a tar for a fresh sandbox (given its absolute path: symlink targets aiming
/// at it stand in for `/etc` so that a regression could never touch the host) and
/// unpacks it in both modes. It must either fail naming `entry`, or succeed; either way
/// nothing outside dest may change. Returns the Overlay-mode sandbox and result.
fn escape_attempt(
    build: impl Fn(&str) -> Vec<u8>,
    entry: &str,
) -> (Sandbox, Result<UnpackStats, UnpackError>) {
    let s = Sandbox::new();
    let r = unpack(&build(&s.abs()), &s.dest, &overlay());
    if let Err(e) = &r {
        let msg = e.to_string();
        assert!(
            msg.contains(entry),
            "error {msg:?} does not name entry {entry:?}"
        );
        assert!(
            msg.contains("sha256:test"),
            "error {msg:?} does not name the layer"
        );
    }
    s.assert_outside_untouched();
    let s2 = Sandbox::new();
    let _ = unpack(&build(&s2.abs()), &s2.dest, &apply());
    s2.assert_outside_untouched();
    (s, r)
}

#[test]
fn dotdot_paths_are_rejected() {
    for (name, ty) in [
        (&b"../escape"[..], b'0'),
        (b"a/../../escape", b'0'),
        (b"./../sentinel", b'0'),
        (b"../etc", b'5'),
        (b"../newlink", b'2'),
        (b"../.wh.sentinel", b'0'),
    ] {
        let entry = String::from_utf8_lossy(name).into_owned();
        let build = |_: &str| {
            let mut t = Tar::new();
            t.raw(name, ty, b"target", if ty == b'0' { b"evil" } else { b"" });
            t.finish()
        };
        let (_s, r) = escape_attempt(build, &entry);
        let err = r.expect_err(&entry);
        assert!(
            matches!(err, UnpackError::PathEscapes { .. }),
            "{entry}: {err}"
        );
        assert_eq!(err.kind(), coracle_core::ErrorKind::InvalidArgument);
    }
}

#[test]
fn absolute_paths_land_inside() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let build = |p: &str| {
        let mut t = Tar::new();
        t.raw(b"/abs/file", b'0', b"", b"in");
        t.raw(format!("{p}/sentinel").as_bytes(), b'0', b"", b"in");
        t.finish()
    };
    let (s, r) = escape_attempt(build, "/abs/file");
    r.unwrap();
    assert_eq!(fs::read(s.dest.join("abs/file")).unwrap(), b"in");
    let inside = s
        .dest
        .join(s.abs().trim_start_matches('/'))
        .join("sentinel");
    assert_eq!(fs::read(inside).unwrap(), b"in");
}

#[test]
fn files_beneath_symlinks_stay_inside() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    for target in [
        "{P}",
        "{P}/etc",
        "..",
        "../..",
        "../../..",
        "../../../etc",
        "/../../{P}/etc",
        "a/../../..",
    ] {
        let build = |p: &str| {
            let mut t = Tar::new();
            t.symlink("evil", &target.replace("{P}", p), DEFAULT)
                .file("evil/passwd", b"pwned", DEFAULT)
                .file("evil/sentinel", b"pwned", DEFAULT)
                .dir(
                    "evil/newdir",
                    M {
                        mode: 0o777,
                        uid: 5,
                        gid: 5,
                        ..DEFAULT
                    },
                );
            t.finish()
        };
        let (s, r) = escape_attempt(build, "evil/");
        if r.is_ok() {
            // Resolved as if dest were `/`: it must be somewhere inside dest.
            let found = walk_files(&s.dest)
                .into_iter()
                .any(|(p, c)| c == b"pwned" && p.ends_with("passwd"));
            assert!(found, "symlink {target}: file vanished");
        }
    }
}

#[test]
fn symlink_to_slash_means_dest() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    // A unique name, so that even a regression only leaves a stray file in `/`.
    let name = format!("coracle-rootfs-escape-test-{}", std::process::id());
    let host = Path::new("/").join(&name);
    let s = Sandbox::new();
    let mut t = Tar::new();
    t.symlink("root", "/", DEFAULT)
        .file(&format!("root/{name}"), b"pwned", DEFAULT);
    let r = unpack(&t.finish(), &s.dest, &overlay());
    let escaped = host.exists();
    let _ = fs::remove_file(&host);
    assert!(!escaped, "wrote {}", host.display());
    r.unwrap();
    assert_eq!(fs::read(s.dest.join(&name)).unwrap(), b"pwned");
    s.assert_outside_untouched();
}

fn walk_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = lmeta(&p);
        if m.is_dir() {
            out.extend(walk_files(&p));
        } else if m.is_file() {
            out.push((p.clone(), fs::read(&p).unwrap()));
        }
    }
    out
}

#[test]
fn symlink_as_final_component_is_replaced_not_followed() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let s = Sandbox::new();
    let sentinel = s.parent().join("sentinel");
    let etc = s.parent().join("etc");
    let mut t = Tar::new();
    t.symlink("f", sentinel.to_str().unwrap(), DEFAULT)
        .file("f", b"pwned", M::mode(0o4777))
        .symlink("g", "../sentinel", DEFAULT)
        .node("g", T::Fifo, 0, 0, DEFAULT)
        .symlink("h", etc.to_str().unwrap(), DEFAULT)
        .dir(
            "h",
            M {
                mode: 0o777,
                uid: 99,
                gid: 99,
                ..DEFAULT
            },
        )
        .symlink("i", "../sentinel", DEFAULT)
        .symlink("i", "elsewhere", M { uid: 77, ..DEFAULT })
        .symlink("j", "../sentinel", DEFAULT)
        .hardlink("j", "f");
    unpack(&t.finish(), &s.dest, &overlay()).unwrap();
    assert_eq!(fs::read(s.dest.join("f")).unwrap(), b"pwned");
    assert!(lmeta(s.dest.join("g")).file_type().is_fifo());
    assert!(lmeta(s.dest.join("h")).is_dir());
    assert_eq!(
        fs::read_link(s.dest.join("i")).unwrap(),
        PathBuf::from("elsewhere")
    );
    assert_eq!(lmeta(s.dest.join("j")).ino(), lmeta(s.dest.join("f")).ino());
    s.assert_outside_untouched();
}

#[test]
fn hardlinks_cannot_reach_outside() {
    // Lexical escapes.
    for (entry, target) in [("h", &b"../sentinel"[..]), ("h2", b"../../etc/shadow")] {
        let build = |_: &str| {
            let mut t = Tar::new();
            t.raw(entry.as_bytes(), b'1', target, b"");
            t.finish()
        };
        let (_s, r) = escape_attempt(build, entry);
        assert!(matches!(r, Err(UnpackError::LinkEscapes { .. })), "{r:?}");
    }
    // Through a symlink (to the sandbox's absolute path, and relative).
    for target in ["{P}", "..", "../..", "../../.."] {
        let build = |p: &str| {
            let mut t = Tar::new();
            t.symlink("out", &target.replace("{P}", p), DEFAULT)
                .hardlink("h", "out/sentinel")
                .hardlink("h2", "out/etc/passwd");
            t.finish()
        };
        let (s, r) = escape_attempt(build, "h");
        assert!(r.is_err(), "hard link through symlink {target} succeeded");
        assert!(!s.dest.join("h").exists());
    }
    // An absolute target is taken inside dest, where it does not exist.
    let build = |p: &str| {
        let mut t = Tar::new();
        t.raw(b"h3", b'1', format!("{p}/etc/passwd").as_bytes(), b"");
        t.finish()
    };
    let (_s, r) = escape_attempt(build, "h3");
    assert!(r.is_err());
}

#[test]
fn symlink_replacing_a_dir_then_files_beneath() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    for target in ["{P}", "..", "../..", "../../..", "{P}/etc"] {
        let build = |p: &str| {
            let mut t = Tar::new();
            t.dir("d", M::mode(0o755))
                .file("d/ok", b"ok", DEFAULT)
                .symlink("d", &target.replace("{P}", p), DEFAULT)
                .file("d/sentinel", b"pwned", DEFAULT)
                .file("d/etc/passwd", b"pwned", DEFAULT)
                .dir(
                    "d/newdir",
                    M {
                        mode: 0o777,
                        uid: 5,
                        gid: 5,
                        ..DEFAULT
                    },
                );
            t.finish()
        };
        let (s, r) = escape_attempt(build, "d/");
        if r.is_ok() {
            assert!(lmeta(s.dest.join("d")).file_type().is_symlink());
        }
    }
}

#[test]
fn whiteouts_cannot_remove_outside() {
    for mode in [WhiteoutMode::Apply, WhiteoutMode::Overlay] {
        let s = Sandbox::new();
        let mut t = Tar::new();
        t.symlink("up", "../../..", DEFAULT)
            .symlink("abs", s.parent().to_str().unwrap(), DEFAULT)
            .file("up/.wh.sentinel", b"", DEFAULT)
            .file("up/l1/.wh..wh..opq", b"", DEFAULT)
            .file("abs/.wh.sentinel", b"", DEFAULT)
            .file("abs/etc/.wh.passwd", b"", DEFAULT)
            .file("up/etc/.wh..wh..opq", b"", DEFAULT);
        let opts = UnpackOptions::new(mode, "sha256:test");
        let _ = unpack(&t.finish(), &s.dest, &opts);
        s.assert_outside_untouched();
    }
}

#[test]
fn diff_id_is_the_sha256_of_the_whole_stream() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let mut t = Tar::new();
    t.file("a", b"x", DEFAULT).dir("b", DEFAULT);
    let mut raw = t.finish();
    // Pad to a full 10240-byte record as GNU tar does, plus a stray block.
    raw.resize(raw.len().div_ceil(10240) * 10240 + 512, 0);
    let s = Sandbox::new();
    let stats = unpack(&raw, &s.dest, &overlay()).unwrap();
    assert_eq!(stats.diff_id, Digest::sha256_of(&raw));
    assert_eq!((stats.entries, stats.size), (2, 1));
}

#[test]
fn compressed_layers_round_trip_through_flatten() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let mut l1 = Tar::new();
    l1.file("etc/os-release", b"ID=test", DEFAULT)
        .file("etc/motd", b"hi", DEFAULT);
    let l1 = l1.finish();
    let mut l2 = Tar::new();
    l2.file("etc/.wh.motd", b"", DEFAULT)
        .file("usr/bin/tool", &vec![7u8; 300_000], M::mode(0o755));
    let l2 = l2.finish();
    let mut l3 = Tar::new();
    l3.file("var/log/x", b"zz", DEFAULT);
    let l3 = l3.finish();

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&l1).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&l2[..], 3).unwrap();

    let s = Sandbox::new();
    let layers: Vec<Box<dyn Read + Send>> = vec![
        Box::new(Cursor::new(gz)),
        Box::new(Cursor::new(zst)),
        Box::new(Cursor::new(l3.clone())),
    ];
    let stats = flatten_into(layers, &s.dest, false).unwrap();
    assert_eq!(
        stats.iter().map(|s| s.diff_id.clone()).collect::<Vec<_>>(),
        vec![
            Digest::sha256_of(&l1),
            Digest::sha256_of(&l2),
            Digest::sha256_of(&l3)
        ]
    );
    let d = &s.dest;
    assert_eq!(fs::read(d.join("etc/os-release")).unwrap(), b"ID=test");
    assert!(!d.join("etc/motd").exists());
    assert_eq!(fs::read(d.join("usr/bin/tool")).unwrap().len(), 300_000);
    assert_eq!(fs::read(d.join("var/log/x")).unwrap(), b"zz");
    s.assert_outside_untouched();
}

#[test]
fn truncated_and_corrupt_streams_fail() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let mut t = Tar::new();
    t.file("a", &[1u8; 5000], DEFAULT);
    let raw = t.finish();
    let s = Sandbox::new();
    let err = unpack(&raw[..1500], &s.dest, &overlay()).unwrap_err();
    assert!(matches!(err, UnpackError::Read { .. }), "{err}");
    let mut bad = raw.clone();
    bad[148] ^= 0x01; // checksum
    let s = Sandbox::new();
    assert!(unpack(&bad, &s.dest, &overlay()).is_err());
    let s = Sandbox::new();
    let err = unpack_layer(Cursor::new(raw), &s.parent().join("missing"), &overlay()).unwrap_err();
    assert_eq!(err.kind(), coracle_core::ErrorKind::NotFound);
}

#[test]
fn unsupported_entry_types_and_bad_names_are_errors() {
    let mut t = Tar::new();
    t.raw(b"weird", b'X', b"", b"");
    let s = Sandbox::new();
    let err = unpack(&t.finish(), &s.dest, &overlay()).unwrap_err();
    assert!(err.to_string().contains("weird"), "{err}");

    let mut t = Tar::new();
    t.raw(b"d/.wh...", b'0', b"", b"");
    let s = Sandbox::new();
    let r = unpack(&t.finish(), &s.dest, &overlay());
    // ".wh..." names ".." after the prefix: invalid.
    assert!(r.is_err());
    s.assert_outside_untouched();
}

/// Runs `f` on a thread without CAP_MKNOD, CAP_CHOWN and the DAC overrides, like an
/// unprivileged user (capabilities are per thread).
fn unprivileged<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        use rustix::thread::{capabilities, set_capabilities, CapabilitySet as C};
        let mut caps = capabilities(None).unwrap();
        let drop = C::MKNOD | C::CHOWN | C::DAC_OVERRIDE | C::DAC_READ_SEARCH;
        caps.effective.remove(drop);
        caps.permitted.remove(drop);
        set_capabilities(None, caps).unwrap();
        f()
    })
    .join()
    .unwrap()
}

fn unprivileged_layer() -> Vec<u8> {
    let mut t = Tar::new();
    t.node("dev/null", T::Char, 1, 3, M::mode(0o666))
        .node("dev/sda", T::Block, 8, 0, M::mode(0o660))
        .node("fifo", T::Fifo, 0, 0, M::mode(0o600))
        .file(
            "owned",
            b"o",
            M {
                uid: 1234,
                gid: 1234,
                ..DEFAULT
            },
        )
        .dir("locked", M::mode(0o500))
        .file("locked/f", b"f", M::mode(0o400))
        .dir("locked/sub", M::mode(0o500))
        .file("locked/sub/g", b"g", M::mode(0o400));
    t.finish()
}

#[test]
fn rootless_skips_devices_and_owners_and_defers_dir_modes() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let s = Sandbox::new();
    let dest = s.dest.clone();
    let opts = UnpackOptions {
        rootless: true,
        ..overlay()
    };
    unprivileged(move || unpack(&unprivileged_layer(), &dest, &opts)).unwrap();
    let d = &s.dest;
    assert!(!d.join("dev/null").exists() && !d.join("dev/sda").exists());
    assert!(lmeta(d.join("fifo")).file_type().is_fifo());
    assert_eq!(lmeta(d.join("owned")).uid(), 0, "chown failure skipped");
    assert_eq!(fs::read(d.join("locked/sub/g")).unwrap(), b"g");
    assert_eq!(lmeta(d.join("locked")).mode() & 0o7777, 0o500);
    assert_eq!(lmeta(d.join("locked/sub")).mode() & 0o7777, 0o500);
}

#[test]
fn rootful_fails_on_devices_it_cannot_make() {
    let s = Sandbox::new();
    let dest = s.dest.clone();
    let err = unprivileged(move || unpack(&unprivileged_layer(), &dest, &overlay())).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("dev/null") && msg.contains("mknodat"), "{msg}");
    assert_eq!(err.kind(), coracle_core::ErrorKind::Unavailable);
}

/// Throughput: `cargo test -p coracle-rootfs --lib -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput_many_small_files() {
    let mut t = Tar::new();
    let mut total = 0usize;
    let mut i = 0;
    let data: Vec<u8> = (0..16384u32).map(|i| (i * 31 % 251) as u8).collect();
    while total < 100 << 20 {
        if i % 100 == 0 {
            t.dir(&format!("d{:04}", i / 100), M::mode(0o755));
        }
        let len = 512 + (i * 7919) % 8192; // 0.5–8.5 KiB, like /usr
        t.file(&format!("d{:04}/file-{i}", i / 100), &data[..len], DEFAULT);
        total += len;
        i += 1;
    }
    let raw = t.finish();
    if let Some(out) = std::env::var_os("CORACLE_BENCH_TAR") {
        fs::write(out, &raw).unwrap(); // to compare with `tar -xf` on the same input
    }
    let base = if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let start = std::time::Instant::now();
    let stats = unpack(&raw, base.path(), &overlay()).unwrap();
    let el = start.elapsed();
    eprintln!(
        "unpacked {} entries, {} MiB of content ({} MiB tar) in {:?}: {:.0} MiB/s, {:.0} files/s",
        stats.entries,
        stats.size >> 20,
        raw.len() >> 20,
        el,
        raw.len() as f64 / 1048576.0 / el.as_secs_f64(),
        stats.entries as f64 / el.as_secs_f64()
    );
}

// ---- sparse entries and expansion limits ------------------------------------------

const TEN_GIB: u64 = 10 << 30;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Decompresses `blob` (as pull and load do) and unpacks it with `limits`.
fn unpack_blob(blob: &[u8], dest: &Path, limits: UnpackLimits) -> Result<UnpackStats, UnpackError> {
    let opts = UnpackOptions {
        limits,
        compressed_size: Some(blob.len() as u64),
        ..overlay()
    };
    let tar = crate::compression::decompress(Cursor::new(blob.to_vec())).unwrap();
    unpack_layer(tar, dest, &opts)
}

/// An old-GNU sparse entry (type 'S') named `big` declaring `real` bytes: one 512-byte
/// data block at its very end, a hole before it.
fn old_gnu_sparse_layer(real: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path("big").unwrap();
    h.set_entry_type(T::GNUSparse);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    h.set_size(512);
    {
        let gnu = h.as_gnu_mut().unwrap();
        gnu.set_real_size(real);
        gnu.sparse[0].set_offset(real - 512);
        gnu.sparse[0].set_length(512);
    }
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &[7u8; 512][..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn old_gnu_sparse_entry_declaring_10_gib_is_refused() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let mut layer = Tar::new();
    layer.file("etc/motd", b"hi", DEFAULT);
    let mut tar = layer.finish();
    tar.truncate(tar.len() - 1024); // drop the end-of-archive blocks
    tar.extend(old_gnu_sparse_layer(TEN_GIB));
    let blob = gzip(&tar);
    assert!(blob.len() < 200, "a tiny layer: {} bytes", blob.len());
    let s = Sandbox::new();
    let err = unpack_blob(&blob, &s.dest, UnpackLimits::NONE).unwrap_err();
    assert!(matches!(err, UnpackError::Sparse { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("layer sha256:test: entry \"big\": sparse files"),
        "{msg}"
    );
    assert!(msg.contains("declared 10 GiB"), "{msg}");
    assert_eq!(err.kind(), coracle_core::ErrorKind::InvalidArgument);
    assert!(
        !s.dest.join("big").exists(),
        "nothing of the sparse file written"
    );
    s.assert_outside_untouched();
}

#[test]
fn pax_sparse_entries_are_refused() {
    // GNU tar's PAX format 1.0: the map of holes leads the data of a regular entry.
    let mut map = b"1\n10737418239\n1\n".to_vec();
    map.resize(512, 0);
    map.push(b'x');
    let mut t = Tar::new();
    t.pax(&[
        ("GNU.sparse.major", b"1"),
        ("GNU.sparse.minor", b"0"),
        ("GNU.sparse.name", b"var/big"),
        ("GNU.sparse.realsize", b"10737418240"),
    ])
    .file("var/GNUSparseFile.0/big", &map, DEFAULT);
    let s = Sandbox::new();
    let err = unpack(&t.finish(), &s.dest, &overlay()).unwrap_err();
    assert!(matches!(err, UnpackError::Sparse { .. }), "{err}");
    assert!(err.to_string().contains("entry \"var/big\""), "{err}");
    assert!(err.to_string().contains("declared 10 GiB"), "{err}");
    assert!(!s.dest.join("var").exists());

    // Format 0.x: offsets and sizes as PAX records.
    let mut t = Tar::new();
    t.pax(&[
        ("GNU.sparse.size", b"10737418240"),
        ("GNU.sparse.numblocks", b"1"),
        ("GNU.sparse.offset", b"10737418239"),
        ("GNU.sparse.numbytes", b"1"),
    ])
    .file("old", b"x", DEFAULT);
    let s = Sandbox::new();
    let err = unpack(&t.finish(), &s.dest, &overlay()).unwrap_err();
    assert!(err.to_string().contains("entry \"old\": sparse"), "{err}");
}

#[test]
fn budget_takes_the_tighter_limit() {
    let l = UnpackLimits {
        max_size: 64 << 30,
        max_ratio: 100,
        ratio_grace: 1 << 30,
    };
    assert_eq!(l, UnpackLimits::default());
    // Small blobs: the grace applies.
    assert_eq!(l.budget(Some(1000)), Some((1 << 30, LimitKind::Ratio)));
    // 100 MiB compressed: 100x.
    assert_eq!(
        l.budget(Some(100 << 20)),
        Some((10_000 << 20, LimitKind::Ratio))
    );
    // A big blob: the size ceiling is the tighter one.
    assert_eq!(l.budget(Some(10 << 30)), Some((64 << 30, LimitKind::Size)));
    // Unknown compressed size: only the ceiling.
    assert_eq!(l.budget(None), Some((64 << 30, LimitKind::Size)));
    assert_eq!(UnpackLimits::NONE.budget(Some(1)), None);
    let ratio_only = UnpackLimits { max_size: 0, ..l };
    assert_eq!(ratio_only.budget(None), None);
}

#[test]
fn layer_over_the_size_ceiling_fails_naming_the_limit() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let mut t = Tar::new();
    t.file("a", &vec![1u8; 3 << 20], DEFAULT);
    let tar = t.finish();
    let limits = UnpackLimits {
        max_size: 2 << 20,
        ..UnpackLimits::NONE
    };
    let s = Sandbox::new();
    let err = unpack_blob(&tar, &s.dest, limits).unwrap_err();
    assert!(
        matches!(err, UnpackError::TooLarge { limit, kind: LimitKind::Size, .. } if limit == 2 << 20),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("layer sha256:test: unpacks to more than 2 MiB"),
        "{msg}"
    );
    assert!(msg.contains("max_layer_size"), "{msg}");
    assert_eq!(err.kind(), coracle_core::ErrorKind::InvalidArgument);

    // At the ceiling exactly, it unpacks.
    let s = Sandbox::new();
    let exact = UnpackLimits {
        max_size: tar.len() as u64,
        ..UnpackLimits::NONE
    };
    unpack_blob(&tar, &s.dest, exact).unwrap();
}

#[test]
fn zero_bomb_past_the_ratio_is_refused_but_small_zero_layers_pass() {
    if coracle_testsupport::skip_unless_root() {
        return;
    }
    let mut t = Tar::new();
    t.file("zeros", &vec![0u8; 64 << 20], DEFAULT);
    let blob = gzip(&t.finish());
    assert!(blob.len() < 128 << 10, "{} bytes", blob.len());
    let limits = UnpackLimits {
        ratio_grace: 4 << 20,
        ..UnpackLimits::default()
    };
    let s = Sandbox::new();
    let err = unpack_blob(&blob, &s.dest, limits).unwrap_err();
    assert!(
        matches!(
            err,
            UnpackError::TooLarge {
                kind: LimitKind::Ratio,
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("over 100:1 (max_layer_ratio"), "{msg}");
    assert!(msg.contains("past the first 4 MiB"), "{msg}");
    // It stopped at the budget: the file is at most that long.
    let written = fs::metadata(s.dest.join("zeros")).map_or(0, |m| m.len());
    assert!(
        written <= (blob.len() as u64 * 100).max(4 << 20),
        "{written}"
    );

    // With the default grace of 1 GiB the same 64 MiB of zeros is fine.
    let s = Sandbox::new();
    let stats = unpack_blob(&blob, &s.dest, UnpackLimits::default()).unwrap();
    assert_eq!(stats.size, 64 << 20);
}
