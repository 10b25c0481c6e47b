//! The host side of `cp`, as docker's CLI sees it: local paths made absolute, the
//! destination checked and followed, the source located (`archive.CopyInfo*`).

use super::CpError;
use coracle_rootfs::copy::{
    archive_name, asserts_directory, base, clean, preserve_trailing_dot_or_separator,
    split_path_dir_entry, CopyError, CopyInfo, Entry, Tree,
};

/// Go's error text for an errno: "no such file or directory".
fn reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s).to_string();
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => s,
    }
}

pub(super) fn local<'a>(
    op: &'static str,
    path: &'a str,
) -> impl FnOnce(std::io::Error) -> CpError + 'a {
    move |e| CpError::Local {
        op,
        path: path.to_string(),
        reason: reason(&e),
    }
}

/// docker's `resolveLocalPath`: absolute, cleaned, a trailing `/` or `/.` kept.
pub(super) fn resolve_local_path(path: &str) -> Result<String, CpError> {
    let abs = if path.starts_with('/') {
        clean(path)
    } else {
        let cwd = std::env::current_dir().map_err(local("getwd", "."))?;
        clean(&format!("{}/{path}", cwd.to_string_lossy()))
    };
    Ok(preserve_trailing_dot_or_separator(&abs, path))
}

/// docker's `ValidateOutputPath`: the destination's directory must exist, and an
/// existing destination must be a directory or a regular file.
pub(super) fn validate_output_path(path: &str) -> Result<(), CpError> {
    let (dir, _) = split_path_dir_entry(&clean(path));
    if let Err(e) = std::fs::metadata(&dir) {
        if e.kind() == std::io::ErrorKind::NotFound {
            return Err(CpError::Invalid(format!(
                "invalid output path: directory {dir:?} does not exist"
            )));
        }
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() || m.is_file() => Ok(()),
        Ok(m) => {
            use std::os::unix::fs::FileTypeExt;
            let what = if m.file_type().is_block_device() || m.file_type().is_char_device() {
                "got a device"
            } else {
                return Ok(());
            };
            Err(CpError::Invalid(format!(
                "invalid output path: {path:?} must be a directory or a regular file: {what}"
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(local("stat", path)(e)),
    }
}

/// docker's `CopyInfoDestinationPath` on the host: symlinks at the destination
/// followed (ten at most); a missing destination needs an existing parent directory.
pub(super) fn host_destination(dst: &str) -> Result<CopyInfo, CpError> {
    let mut path = dst.to_string();
    for _ in 0..=10 {
        match std::fs::symlink_metadata(&path) {
            Ok(m) if !m.file_type().is_symlink() => {
                return Ok(CopyInfo {
                    path,
                    exists: true,
                    is_dir: m.is_dir(),
                })
            }
            Ok(_) => {
                let target = std::fs::read_link(&path).map_err(local("readlink", &path))?;
                let target = target.to_string_lossy().into_owned();
                path = if target.starts_with('/') {
                    target
                } else {
                    clean(&format!("{}/{target}", split_path_dir_entry(&path).0))
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (parent, _) = split_path_dir_entry(&path);
                let m = std::fs::metadata(&parent).map_err(local("stat", &parent))?;
                if !m.is_dir() {
                    return Err(CpError::Invalid("not a directory".into()));
                }
                return Ok(CopyInfo {
                    path,
                    exists: false,
                    is_dir: false,
                });
            }
            Err(e) => return Err(local("lstat", &path)(e)),
        }
    }
    Err(CpError::Invalid(format!("too many symlinks in {dst}")))
}

/// docker's `CopyInfoSourcePath` on the host: symlinks before the last component
/// resolved (all of them with `-L`, or with a trailing `/`). Returns the entry and the
/// name the copy takes.
pub(super) fn host_source(src: &str, follow: bool) -> Result<(Entry, String), CpError> {
    let canon = |p: &str| std::fs::canonicalize(p).map_err(local("lstat", src));
    let cleaned = clean(src);
    let whole = follow || asserts_directory(src) || cleaned == "/";
    let (dir, entry) = if whole {
        let real = canon(&cleaned)?;
        match (real.parent(), real.file_name()) {
            (Some(parent), Some(name)) if !asserts_directory(src) => {
                (parent.to_path_buf(), format!("/{}", name.to_string_lossy()))
            }
            _ => (real, "/".to_string()),
        }
    } else {
        let (parent, name) = split_path_dir_entry(&cleaned);
        (canon(&parent)?, format!("/{name}"))
    };
    let name = if whole {
        archive_name(src)
    } else {
        base(&cleaned).to_string()
    };
    let tree = Tree::open(&dir)?;
    let entry = tree.stat(&entry).map_err(|e| match e {
        CopyError::NotFound { .. } => CpError::Local {
            op: "lstat",
            path: src.to_string(),
            reason: "no such file or directory".into(),
        },
        e => e.into(),
    })?;
    Ok((entry, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::FileType;
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    #[test]
    fn host_destination_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let d = fs::canonicalize(tmp.path()).unwrap();
        let s = |p: &Path| p.to_str().unwrap().to_string();
        fs::create_dir(d.join("dir")).unwrap();
        fs::write(d.join("file"), b"x").unwrap();
        symlink(d.join("dir"), d.join("link")).unwrap();
        symlink("nowhere", d.join("dangling")).unwrap();
        let info = host_destination(&s(&d.join("link"))).unwrap();
        assert_eq!(
            (info.path, info.exists, info.is_dir),
            (s(&d.join("dir")), true, true)
        );
        let info = host_destination(&s(&d.join("file"))).unwrap();
        assert!(info.exists && !info.is_dir);
        // A dangling link: its target will be created.
        let info = host_destination(&s(&d.join("dangling"))).unwrap();
        assert_eq!((info.path, info.exists), (s(&d.join("nowhere")), false));
        let e = host_destination(&format!("{}/x", s(&d.join("file")))).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("lstat {}/x: not a directory", s(&d.join("file")))
        );
        // Through a dangling link whose parent is a file: docker's ErrNotDirectory.
        symlink(d.join("file/y"), d.join("badlink")).unwrap();
        let e = host_destination(&s(&d.join("badlink"))).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
        let e = host_destination(&s(&d.join("nope/x"))).unwrap_err();
        assert!(e.to_string().contains("no such file or directory"), "{e}");
    }

    #[test]
    fn host_source_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let d = fs::canonicalize(tmp.path()).unwrap();
        let s = |p: &Path| p.to_str().unwrap().to_string();
        fs::create_dir(d.join("dir")).unwrap();
        fs::write(d.join("dir/f"), b"x").unwrap();
        symlink(d.join("dir"), d.join("link")).unwrap();
        symlink("dir/f", d.join("flink")).unwrap();
        let names = |src: String, follow| {
            let (e, name) = host_source(&src, follow).unwrap();
            (name, e.stat.file_type())
        };
        assert_eq!(
            names(s(&d.join("dir")), false),
            ("dir".into(), FileType::Directory)
        );
        assert_eq!(
            names(s(&d.join("link")), false),
            ("link".into(), FileType::Symlink)
        );
        assert_eq!(
            names(format!("{}/", s(&d.join("link"))), false),
            ("link".into(), FileType::Directory)
        );
        assert_eq!(
            names(format!("{}/.", s(&d.join("link"))), false),
            (".".into(), FileType::Directory)
        );
        assert_eq!(
            names(s(&d.join("flink")), true),
            ("flink".into(), FileType::RegularFile)
        );
        assert_eq!(
            names(s(&d.join("flink")), false),
            ("flink".into(), FileType::Symlink)
        );
        let e = host_source(&s(&d.join("nope")), false).err().unwrap();
        assert_eq!(
            e.to_string(),
            format!("lstat {}: no such file or directory", s(&d.join("nope")))
        );
    }
}
