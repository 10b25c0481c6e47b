//! Who may reach the store: its owner only. Layer and container directories hold
//! setuid files and device nodes (from images, or made by container root in its upper
//! dir), and container configs and the database hold `-e` secrets, so every directory
//! that leads to them is 0700 and every config or state file 0600 (docker keeps
//! /var/lib/docker 0710 and container configs 0600). Host users then reach nothing:
//! the permission check fails at the store root. Containers are unaffected: overlayfs
//! reads lower dirs with its mounter's (root's) credentials, and bind mounts (volumes,
//! /etc/hosts) are reached through the container's own mounts, never through the
//! store's path.

use crate::{EngineError, RunDir, StorePaths};
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every store and runtime directory that leads to container or layer content.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of files holding configuration or state.
pub(crate) const FILE_MODE: u32 = 0o600;

/// The runtime directory (tmpfs) every rootful store shares, and what is made in it:
/// runtime state and console sockets, network namespaces, attach sockets.
fn run_dirs(run_dir: &RunDir) -> [PathBuf; 4] {
    let attach = run_dir.attach_socket("id");
    [
        run_dir.path().to_path_buf(),
        run_dir.runtime_state(),
        run_dir.netns_dir(),
        attach.parent().unwrap_or(run_dir.path()).to_path_buf(),
    ]
}

/// Creates `dir` (its parents as usual) with mode 0700, or makes an existing `dir`
/// 0700. Returns whether an existing directory had another mode. A symlink is
/// followed: a store (or its `layers`) may be a link to another disk.
pub(crate) fn private_dir(dir: &Path) -> io::Result<bool> {
    match fs::metadata(dir) {
        Ok(md) if md.mode() & 0o7777 == DIR_MODE => Ok(false),
        Ok(_) => fs::set_permissions(dir, Permissions::from_mode(DIR_MODE)).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent)?;
            }
            match fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
                // A concurrent open made it first: check its mode as for an old one.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => private_dir(dir),
                // The umask may have taken bits we do not want anyway; never adds any.
                r => r.map(|()| false),
            }
        }
        Err(e) => Err(e),
    }
}

/// Makes an existing file or directory `mode` (a missing one is fine). Returns whether
/// the mode was wrong. One stat when it is right. A symlink is left alone: coracle
/// never makes one where this is used, so one found there is not ours to follow.
pub(crate) fn fix_mode(path: &Path, mode: u32) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_symlink() || md.mode() & 0o7777 == mode => Ok(false),
        Ok(_) => fs::set_permissions(path, Permissions::from_mode(mode)).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` with mode 0600 (an existing file is truncated and made
/// 0600 too).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    if f.metadata()?.mode() & 0o7777 != FILE_MODE {
        f.set_permissions(Permissions::from_mode(FILE_MODE))?;
    }
    f.write_all(bytes)
}

/// A store owned by someone else is refused before anything in it is read or
/// created, with the owner's name: otherwise an old, world-readable store would give
/// partial answers and a private one SQLite errors. Root may open any store.
pub(crate) fn check_owner(root: &Path) -> Result<(), EngineError> {
    let euid = rustix::process::geteuid();
    let md = match fs::metadata(root) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(EngineError::StorePermission {
                path: root.to_path_buf(),
                owner: None,
            })
        }
        Err(e) => return Err(EngineError::io("open store", root)(e)),
    };
    if euid.is_root() || md.uid() == euid.as_raw() {
        return Ok(());
    }
    Err(EngineError::StorePermission {
        path: root.to_path_buf(),
        owner: Some(user_name(md.uid())),
    })
}

/// The account name of `uid`, else the number.
fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => format!("uid {uid}"),
    }
}

/// Makes the store private: its directories 0700 (created if missing), the database
/// 0600, and the runtime directory 0700 when running as root. When the root itself was
/// not private (a store made by an older coracle), the files of every container are
/// fixed too; otherwise this is a stat per directory.
pub(crate) fn secure_store(paths: &StorePaths, run_dir: &RunDir) -> Result<(), EngineError> {
    let root_was_open = match fs::metadata(&paths.root) {
        Ok(md) => md.mode() & 0o7777 != DIR_MODE,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            private_dir(&paths.root)
                .map_err(EngineError::io("create store directory", &paths.root))?;
            false
        }
        Err(e) => return Err(EngineError::io("open store", &paths.root)(e)),
    };
    let dirs = [
        paths.blobs(),
        paths.layers(),
        paths.tmp(),
        paths.containers(),
        paths.volumes(),
    ];
    // The root last: an interrupted pass leaves it open, so the next open redoes it.
    for dir in dirs.iter() {
        private_dir(dir).map_err(EngineError::io("create store directory", dir))?;
    }
    let bin = paths.bin();
    fix_mode(&bin, DIR_MODE).map_err(EngineError::io("chmod", &bin))?;
    for file in paths.database_files() {
        fix_mode(&file, FILE_MODE).map_err(EngineError::io("chmod", &file))?;
    }
    if root_was_open {
        secure_entries(&paths.root)?;
        secure_containers(&paths.containers())?;
    }
    private_dir(&paths.root).map_err(EngineError::io("create store directory", &paths.root))?;
    if rustix::process::geteuid().is_root() {
        for dir in run_dirs(run_dir) {
            private_dir(&dir).map_err(EngineError::io("create runtime directory", &dir))?;
        }
    }
    Ok(())
}

/// What an older coracle made at the top of the store (lock files, directories):
/// directories 0700, files 0600.
fn secure_entries(root: &Path) -> Result<(), EngineError> {
    for entry in fs::read_dir(root)
        .map_err(EngineError::io("read", root))?
        .flatten()
    {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let mode = if kind.is_dir() {
            DIR_MODE
        } else if kind.is_file() {
            FILE_MODE
        } else {
            continue;
        };
        let path = entry.path();
        fix_mode(&path, mode).map_err(EngineError::io("chmod", &path))?;
    }
    Ok(())
}

/// Container files an older coracle wrote world-readable.
fn secure_containers(dir: &Path) -> Result<(), EngineError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(EngineError::io("read", dir)(e)),
    };
    for entry in entries.flatten() {
        let cdir = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        fix_mode(&cdir, DIR_MODE).map_err(EngineError::io("chmod", &cdir))?;
        for file in container_private_files(&cdir)? {
            fix_mode(&file, FILE_MODE).map_err(EngineError::io("chmod", &file))?;
        }
    }
    Ok(())
}

/// A container directory's config and state files (not /etc/hosts and friends: they
/// are bind-mounted into the container, where its users must read them).
fn container_private_files(cdir: &Path) -> Result<Vec<PathBuf>, EngineError> {
    let mut out: Vec<PathBuf> = ["config.json", "container.json", "exit", "monitor.log"]
        .iter()
        .map(|f| cdir.join(f))
        .collect();
    // json-file logs and their rotations: ID-json.log, ID-json.log.1, ...
    for entry in fs::read_dir(cdir)
        .map_err(EngineError::io("read", cdir))?
        .flatten()
    {
        if entry.file_name().to_string_lossy().contains("-json.log") {
            out.push(entry.path());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn private_dir_creates_and_fixes() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("a/b");
        assert!(!private_dir(&d).unwrap());
        assert_eq!(mode(&d), 0o700);
        fs::set_permissions(&d, Permissions::from_mode(0o755)).unwrap();
        assert!(private_dir(&d).unwrap(), "reports the wrong mode it fixed");
        assert_eq!(mode(&d), 0o700);
        assert!(!private_dir(&d).unwrap());
    }

    #[test]
    fn file_modes_are_never_changed_through_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("host-dir");
        fs::create_dir(&target).unwrap();
        fs::set_permissions(&target, Permissions::from_mode(0o755)).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(!fix_mode(&link, DIR_MODE).unwrap());
        assert_eq!(mode(&target), 0o755);
        // A store directory that is a link (to another disk) is made private.
        assert!(private_dir(&link).unwrap());
        assert_eq!(mode(&target), 0o700);
        assert!(!fix_mode(&tmp.path().join("missing"), FILE_MODE).unwrap());
    }

    #[test]
    fn write_private_makes_old_files_private() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("config.json");
        fs::write(&f, "old, longer than the new").unwrap();
        fs::set_permissions(&f, Permissions::from_mode(0o644)).unwrap();
        write_private(&f, b"new").unwrap();
        assert_eq!(mode(&f), 0o600);
        assert_eq!(fs::read(&f).unwrap(), b"new");
    }

    #[test]
    fn an_old_store_is_made_private() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = StorePaths::new(tmp.path().join("store"));
        let cdir = paths.containers().join("c1");
        fs::create_dir_all(&cdir).unwrap();
        for f in ["config.json", "container.json", "c1-json.log.1", "hosts"] {
            fs::write(cdir.join(f), "x").unwrap();
            fs::set_permissions(cdir.join(f), Permissions::from_mode(0o644)).unwrap();
        }
        fs::write(paths.database(), "").unwrap();
        fs::write(paths.root.join("store.lock"), "").unwrap();
        for p in [&paths.root, &paths.containers(), &cdir] {
            fs::set_permissions(p, Permissions::from_mode(0o755)).unwrap();
        }
        fs::set_permissions(paths.database(), Permissions::from_mode(0o644)).unwrap();
        secure_store(&paths, &RunDir::new(tmp.path().join("run"))).unwrap();
        for d in [&paths.root, &paths.containers(), &cdir, &paths.layers()] {
            assert_eq!(mode(d), 0o700, "{}", d.display());
        }
        for f in ["config.json", "container.json", "c1-json.log.1"] {
            assert_eq!(mode(&cdir.join(f)), 0o600, "{f}");
        }
        assert_eq!(
            mode(&cdir.join("hosts")),
            0o644,
            "mounted into the container"
        );
        assert_eq!(mode(&paths.database()), 0o600);
        assert_eq!(mode(&paths.root.join("store.lock")), 0o600);
    }

    #[test]
    fn the_refusal_names_owner_and_store() {
        let e = EngineError::StorePermission {
            path: "/var/lib/coracle".into(),
            owner: Some("root".into()),
        };
        assert_eq!(
            e.to_string(),
            "permission denied: this store belongs to root (/var/lib/coracle)"
        );
        assert_eq!(user_name(0), "root");
        assert_eq!(user_name(4_000_000_000), "uid 4000000000");
    }
}
