//! Named volumes, laid out like docker's `local` driver: `<store>/volumes/<name>/_data`
//! is what gets mounted, `<store>/volumes/<name>/volume.json` its metadata (labels,
//! creation time). A volume is made in a temp dir `.tmp-<pid>-…` and renamed into
//! place, so a directory under a volume's name is always complete. A volume made with
//! driver options (`-o type=tmpfs ...`) is mounted on its `_data` while used, see
//! [`mount`].

use crate::error::VolumeError;
use crate::fsutil::remove_tree;
use crate::treecopy::{copy_tree, dir_is_empty, CopyOptions};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const DATA: &str = "_data";
const META: &str = "volume.json";

/// A volume as `volume inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// The host directory mounted into containers (`…/<name>/_data`).
    pub mountpoint: PathBuf,
    /// RFC 3339, UTC.
    pub created_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The local driver's options (`type`, `o`, `device`, `size`), as given.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// What is stored in `volume.json` (the mountpoint is derived from the location).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    name: String,
    driver: String,
    created_at: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    options: BTreeMap<String, String>,
}

/// Checks a volume name against docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (so at
/// least two characters), with docker's message otherwise.
pub fn validate_volume_name(name: &str) -> Result<(), VolumeError> {
    let b = name.as_bytes();
    let ok = b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(VolumeError::InvalidName(name.to_owned()))
    }
}

/// The volumes under one directory (normally `<store root>/volumes`).
#[derive(Debug, Clone)]
pub struct VolumeStore {
    dir: PathBuf,
}

impl VolumeStore {
    /// Opens the store at `dir`, creating it (0700) if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, VolumeError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| VolumeError::Io {
            name: String::new(),
            op: "create directory",
            path: dir.clone(),
            source,
        })?;
        Ok(VolumeStore { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data directory of volume `name` (whether or not it exists).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name).join(DATA)
    }

    fn io<'a>(
        &self,
        name: &'a str,
        op: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> VolumeError + 'a {
        move |source| VolumeError::Io {
            name: name.to_owned(),
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// Creates volume `name` with an empty `_data` (0755, like docker's). Creating a
    /// volume that exists returns the existing one unchanged (as `docker volume
    /// create` does).
    pub fn create(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<Volume, VolumeError> {
        self.create_with_options(name, labels, BTreeMap::new())
    }

    /// [`create`](Self::create) with the local driver's options (checked by the
    /// caller), kept for [`acquire`](Self::acquire) to mount.
    pub fn create_with_options(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<Volume, VolumeError> {
        validate_volume_name(name)?;
        if let Ok(v) = self.get(name) {
            return Ok(v);
        }
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".tmp-{}-", std::process::id()))
            .tempdir_in(&self.dir)
            .map_err(self.io(name, "create temp dir in", &self.dir))?;
        let data = tmp.path().join(DATA);
        fs::create_dir(&data).map_err(self.io(name, "create directory", &data))?;
        fs::set_permissions(&data, fs::Permissions::from_mode(0o755))
            .map_err(self.io(name, "chmod", &data))?;
        let meta = Meta {
            name: name.to_owned(),
            driver: "local".into(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            labels,
            options,
        };
        let meta_path = tmp.path().join(META);
        let json = serde_json::to_vec_pretty(&meta).expect("volume metadata serializes");
        // 0600 as docker's opts.json: driver options may hold credentials (`o=password=`).
        write_private(&meta_path, &json).map_err(self.io(name, "write", &meta_path))?;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o701)).map_err(self.io(
            name,
            "chmod",
            tmp.path(),
        ))?;
        let dest = self.dir.join(name);
        match rename_noreplace(tmp.path(), &dest) {
            Ok(()) => {
                let _ = tmp.keep();
                self.get(name)
            }
            // Someone else created it first: theirs stands (tmp is dropped).
            Err(e)
                if e.kind() == io::ErrorKind::AlreadyExists
                    || e.raw_os_error() == Some(rustix::io::Errno::NOTEMPTY.raw_os_error()) =>
            {
                self.get(name)
            }
            Err(e) => Err(self.io(name, "rename", &dest)(e)),
        }
    }

    /// The volume `name`.
    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        validate_volume_name(name)?;
        let meta_path = self.dir.join(name).join(META);
        let bytes = match fs::read(&meta_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(VolumeError::NotFound(name.to_owned()))
            }
            Err(e) => return Err(self.io(name, "read", &meta_path)(e)),
        };
        let meta: Meta =
            serde_json::from_slice(&bytes).map_err(|source| VolumeError::Metadata {
                name: name.to_owned(),
                path: meta_path.clone(),
                source,
            })?;
        Ok(Volume {
            name: name.to_owned(),
            driver: meta.driver,
            mountpoint: self.path(name),
            created_at: meta.created_at,
            labels: meta.labels,
            options: meta.options,
        })
    }

    /// Every volume, by name. Entries that are not complete volumes are skipped.
    pub fn list(&self) -> Result<Vec<Volume>, VolumeError> {
        let rd = fs::read_dir(&self.dir).map_err(self.io("", "read directory", &self.dir))?;
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(self.io("", "read directory", &self.dir))?;
            let Some(name) = ent.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if validate_volume_name(&name).is_err() {
                continue;
            }
            match self.get(&name) {
                Ok(v) => out.push(v),
                Err(VolumeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes volume `name` and its data. Whether a container still uses it is the
    /// caller's check; a volume mounted for a live user (see [`acquire`](Self::acquire))
    /// is refused, a mount left by a dead one is taken down first. The directory is renamed away first, so a removal cut short
    /// leaves a temp dir (see [`gc_incomplete`](Self::gc_incomplete)), never a
    /// half-empty volume.
    pub fn remove(&self, name: &str) -> Result<(), VolumeError> {
        validate_volume_name(name)?;
        let path = self.dir.join(name);
        if !path.join(META).exists() {
            return Err(VolumeError::NotFound(name.to_owned()));
        }
        self.settle(name)?;
        let doomed = self
            .dir
            .join(format!(".tmp-{}-rm-{name}", std::process::id()));
        let _ = remove_tree(&doomed);
        match fs::rename(&path, &doomed) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(VolumeError::NotFound(name.to_owned()))
            }
            Err(e) => return Err(self.io(name, "rename", &path)(e)),
        }
        remove_tree(&doomed).map_err(self.io(name, "remove", &doomed))
    }

    /// Removes temp dirs left by dead processes. Returns how many.
    pub fn gc_incomplete(&self) -> Result<usize, VolumeError> {
        let rd = fs::read_dir(&self.dir).map_err(self.io("", "read directory", &self.dir))?;
        let mut n = 0;
        for ent in rd.flatten() {
            let name = ent.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|s| s.strip_prefix(".tmp-"))
                .and_then(|s| s.split('-').next())
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let alive = pid == std::process::id() as i32
                || rustix::process::Pid::from_raw(pid).is_some_and(|p| {
                    !matches!(
                        rustix::process::test_kill_process(p),
                        Err(rustix::io::Errno::SRCH)
                    )
                });
            if !alive {
                let p = ent.path();
                remove_tree(&p).map_err(self.io("", "remove", &p))?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Fills a new volume with the image's content at its mount point, as docker does: only
/// when `volume_data` is empty and `image_dir_at_target` is a directory (the host path of
/// the target inside the container's rootfs, from [`crate::resolve_in_root`]). Owners,
/// modes, times, xattrs, symlinks, hard links, devices and fifos are copied; no symlink
/// is followed. `volume_data` takes the source directory's owner and mode. Returns
/// whether anything was copied.
pub fn copy_up(image_dir_at_target: &Path, volume_data: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(image_dir_at_target) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    if !dir_is_empty(volume_data)? {
        return Ok(false);
    }
    copy_tree(image_dir_at_target, volume_data, CopyOptions::default())?;
    Ok(true)
}

fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE).map_err(Into::into)
}

pub mod mount;

/// Writes a new file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}

#[cfg(test)]
mod tests;
