//! Snapshots of unpacked trees, and the umoci/skopeo cross-check.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

use crate::error::{Context, Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
}

/// What a snapshot records about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    pub kind: Kind,
    /// Permission bits incl. setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Size of regular files; 0 for everything else.
    pub size: u64,
    pub link_target: Option<PathBuf>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// `sha256:<hex>` of regular files' content.
    pub sha256: Option<String>,
    /// (major, minor) of devices.
    pub rdev: Option<(u32, u32)>,
    /// Link count of regular files (hard links show as nlink > 1).
    pub nlink: u64,
    /// Seconds since the epoch, when recorded (see [`SnapshotOptions`]).
    pub mtime: Option<i64>,
}

/// What to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotOptions {
    /// Record mtimes of regular files (and fifos, devices).
    pub file_mtimes: bool,
    /// Record mtimes of directories (unpackers often change them while adding children).
    pub dir_mtimes: bool,
    /// Record mtimes of symlinks.
    pub symlink_mtimes: bool,
    /// Record xattrs whose name starts with one of these (default: `user.`, `security.capability`).
    pub xattr_prefixes: Vec<String>,
}

impl Default for SnapshotOptions {
    fn default() -> SnapshotOptions {
        SnapshotOptions {
            file_mtimes: true,
            dir_mtimes: false,
            symlink_mtimes: false,
            xattr_prefixes: vec!["user.".into(), "security.capability".into()],
        }
    }
}

/// [`tree_snapshot_with`] with the default options.
pub fn tree_snapshot(dir: &Path) -> Result<BTreeMap<PathBuf, EntryInfo>> {
    tree_snapshot_with(dir, &SnapshotOptions::default())
}

/// Every path below `dir` (relative, `dir` itself excluded), never following symlinks.
pub fn tree_snapshot_with(
    dir: &Path,
    opts: &SnapshotOptions,
) -> Result<BTreeMap<PathBuf, EntryInfo>> {
    let mut out = BTreeMap::new();
    walk(dir, dir, opts, &mut out)?;
    Ok(out)
}

fn walk(
    root: &Path,
    dir: &Path,
    opts: &SnapshotOptions,
    out: &mut BTreeMap<PathBuf, EntryInfo>,
) -> Result<()> {
    let rd = fs::read_dir(dir).context(format!("read dir {}", dir.display()))?;
    for ent in rd {
        let ent = ent?;
        let path = ent.path();
        let md = fs::symlink_metadata(&path).context(format!("lstat {}", path.display()))?;
        let ft = md.file_type();
        let kind = if ft.is_file() {
            Kind::File
        } else if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_fifo() {
            Kind::Fifo
        } else if ft.is_char_device() {
            Kind::CharDevice
        } else if ft.is_block_device() {
            Kind::BlockDevice
        } else {
            Kind::Socket
        };
        let rel = path.strip_prefix(root).unwrap().to_path_buf();
        let sha256 = if kind == Kind::File {
            let mut f = fs::File::open(&path).context(format!("open {}", path.display()))?;
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Some(format!("sha256:{}", hex::encode(h.finalize())))
        } else {
            None
        };
        let record_mtime = match kind {
            Kind::Dir => opts.dir_mtimes,
            Kind::Symlink => opts.symlink_mtimes,
            _ => opts.file_mtimes,
        };
        let rdev = matches!(kind, Kind::CharDevice | Kind::BlockDevice).then(|| {
            let d = md.rdev();
            (rustix::fs::major(d), rustix::fs::minor(d))
        });
        let info = EntryInfo {
            kind,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            size: if kind == Kind::File { md.size() } else { 0 },
            link_target: if kind == Kind::Symlink {
                Some(fs::read_link(&path)?)
            } else {
                None
            },
            xattrs: xattrs(&path, &opts.xattr_prefixes),
            sha256,
            rdev,
            nlink: if kind == Kind::File { md.nlink() } else { 1 },
            mtime: record_mtime.then(|| md.mtime()),
        };
        out.insert(rel, info);
        if kind == Kind::Dir {
            walk(root, &path, opts, out)?;
        }
    }
    Ok(())
}

fn xattrs(path: &Path, prefixes: &[String]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 64 * 1024];
    let Ok(n) = rustix::fs::llistxattr(path, &mut names[..]) else {
        return out;
    };
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if !prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            continue;
        }
        let mut value = vec![0u8; 64 * 1024];
        if let Ok(len) = rustix::fs::lgetxattr(path, name.as_str(), &mut value[..]) {
            value.truncate(len);
            out.insert(name, value);
        }
    }
    out
}

/// Human-readable differences between two snapshots (empty when equal).
pub fn diff_snapshots(
    a: &BTreeMap<PathBuf, EntryInfo>,
    b: &BTreeMap<PathBuf, EntryInfo>,
) -> Vec<String> {
    let mut d = Vec::new();
    for (p, ea) in a {
        match b.get(p) {
            None => d.push(format!("only in first: {}", p.display())),
            Some(eb) if ea != eb => d.push(format!("{}:\n  {ea:?}\n  {eb:?}", p.display())),
            _ => {}
        }
    }
    for p in b.keys() {
        if !a.contains_key(p) {
            d.push(format!("only in second: {}", p.display()));
        }
    }
    d
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().context(format!("spawn {cmd:?}"))?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(())
}

/// `skopeo copy docker://HOST/REPO:TAG oci:DIR:TAG` over plain HTTP.
pub fn skopeo_copy_to_oci(
    host: &str,
    repo: &str,
    tag: &str,
    oci_dir: &Path,
    creds: Option<(&str, &str)>,
) -> Result<()> {
    let mut c = Command::new("skopeo");
    c.arg("copy")
        .arg("--src-tls-verify=false")
        .arg("--insecure-policy");
    if let Some((u, p)) = creds {
        c.arg(format!("--src-creds={u}:{p}"));
    }
    c.arg(format!("docker://{host}/{repo}:{tag}"))
        .arg(format!("oci:{}:{tag}", oci_dir.display()));
    run(&mut c)
}

/// `umoci unpack --image DIR:TAG OUT`; returns `OUT/rootfs`.
pub fn umoci_unpack(oci_layout_dir: &Path, tag: &str, out_dir: &Path) -> Result<PathBuf> {
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:{tag}", oci_layout_dir.display()))
        .arg(out_dir))?;
    Ok(out_dir.join("rootfs"))
}
