//! Filesystem helpers shared by unpack and the layer store: no-follow recursive removal.

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Removes `path` and everything beneath it, never following symlinks (a symlink is
/// removed, not its target) and giving directories `u+rwx` on the way down so trees with
/// read-only or unreadable directories (layer contents) can be removed even without
/// `CAP_DAC_OVERRIDE`. A missing `path` is not an error.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("remove_tree: {} has no final component", path.display()),
        )
    })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    #[cfg(target_os = "linux")]
    let lookup = OFlags::PATH;
    #[cfg(not(target_os = "linux"))]
    let lookup = OFlags::RDONLY;
    let pfd = match rfs::open(
        parent,
        lookup | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    remove_tree_at(pfd.as_fd(), name)
}

/// Removes `name` in `parent` and everything beneath it, without following symlinks.
/// A missing entry is not an error.
pub(crate) fn remove_tree_at(parent: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let st = match rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return match rfs::unlinkat(parent, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    let cname = CString::new(name.as_bytes())?;
    remove_dir_at(parent, &cname)
}

/// Opens a directory for reading without following a symlink, making it readable and
/// searchable first if needed.
fn open_dir_nofollow(parent: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rfs::openat(parent, name, flags, Mode::empty()) {
        Err(Errno::ACCESS) => {
            // The caller saw a directory here (lstat); give it u+rwx and retry. The
            // retry still refuses a symlink, so a swap in between cannot redirect it.
            let st = rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Err(Errno::NOTDIR);
            }
            rfs::chmodat(
                parent,
                name,
                Mode::from_raw_mode((st.st_mode | 0o700) & 0o7777),
                AtFlags::empty(),
            )?;
            rfs::openat(parent, name, flags, Mode::empty())
        }
        other => other,
    }
}

fn remove_dir_at(parent: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let fd = match open_dir_nofollow(parent, name) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    clear_dir(fd.as_fd(), |_| false)?;
    match rfs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes every child of the directory `dir` for which `keep` returns false (children
/// kept are left alone, including their contents). Makes `dir` writable if needed.
pub(crate) fn clear_dir(
    dir: BorrowedFd<'_>,
    mut keep: impl FnMut(&CStr) -> bool,
) -> io::Result<()> {
    // Without CAP_DAC_OVERRIDE, unlinking children needs u+wx on the directory. The
    // mode is put back afterwards (the directory itself may be kept).
    let st = rfs::fstat(dir)?;
    let locked = st.st_mode & 0o700 != 0o700;
    if locked {
        rfs::fchmod(dir, Mode::from_raw_mode((st.st_mode | 0o700) & 0o7777))?;
    }
    let r = clear_children(dir, &mut keep);
    if locked {
        let restored = rfs::fchmod(dir, Mode::from_raw_mode(st.st_mode & 0o7777));
        r?;
        restored?;
        return Ok(());
    }
    r
}

fn clear_children(dir: BorrowedFd<'_>, keep: &mut impl FnMut(&CStr) -> bool) -> io::Result<()> {
    let mut children: Vec<(CString, FileType)> = Vec::new();
    let listing = rfs::openat(
        dir,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for ent in rfs::Dir::new(listing)? {
        let ent = ent?;
        let n = ent.file_name();
        if n == c"." || n == c".." || keep(n) {
            continue;
        }
        children.push((n.to_owned(), ent.file_type()));
    }
    for (child, ty) in children {
        let ty = if ty == FileType::Unknown {
            match rfs::statat(dir, &*child, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => FileType::from_raw_mode(st.st_mode),
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            }
        } else {
            ty
        };
        if ty == FileType::Directory {
            remove_dir_at(dir, &child)?;
        } else {
            match rfs::unlinkat(dir, &*child, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn removes_tree_with_locked_dirs_without_following_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), b"keep").unwrap();

        let t = tmp.path().join("tree");
        fs::create_dir_all(t.join("a/b/c")).unwrap();
        fs::write(t.join("a/b/c/f"), b"x").unwrap();
        fs::write(t.join("a/ro"), b"x").unwrap();
        fs::set_permissions(t.join("a/ro"), fs::Permissions::from_mode(0o000)).unwrap();
        symlink(&outside, t.join("a/b/link-dir")).unwrap();
        symlink(outside.join("keep"), t.join("a/link-file")).unwrap();
        fs::set_permissions(t.join("a/b/c"), fs::Permissions::from_mode(0o500)).unwrap();
        fs::set_permissions(t.join("a/b"), fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(t.join("a"), fs::Permissions::from_mode(0o500)).unwrap();

        remove_tree(&t).unwrap();
        assert!(fs::symlink_metadata(&t).is_err());
        assert_eq!(fs::read(outside.join("keep")).unwrap(), b"keep");
        // Removing what is already gone is fine.
        remove_tree(&t).unwrap();
    }

    #[test]
    fn removes_a_symlink_not_its_target() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("f"), b"f").unwrap();
        let link = tmp.path().join("link");
        symlink(&target, &link).unwrap();
        remove_tree(&link).unwrap();
        assert!(fs::symlink_metadata(&link).is_err());
        assert!(target.join("f").exists());
    }

    #[test]
    fn clear_dir_keeps_what_it_is_told() {
        let tmp = tempfile::tempdir().unwrap();
        for n in ["a", "b", "c"] {
            fs::create_dir(tmp.path().join(n)).unwrap();
            fs::write(tmp.path().join(n).join("x"), b"x").unwrap();
        }
        let fd = rfs::open(
            tmp.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        clear_dir(fd.as_fd(), |n| n == c"b").unwrap();
        let mut left: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(left, vec![OsStr::new("b")]);
        assert!(tmp.path().join("b/x").exists());
    }
}
