//! Test helpers: tar streams built entry by entry, including raw headers the `tar`
//! crate's builder refuses to write (`..` paths), and a sandbox that proves nothing
//! outside the destination changed.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Builds a tar stream in memory.
pub struct Tar {
    b: tar::Builder<Vec<u8>>,
}

/// Metadata for an entry.
#[derive(Clone, Copy)]
pub struct M {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

pub const DEFAULT: M = M {
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: 1_600_000_000,
};

impl M {
    pub fn mode(mode: u32) -> M {
        M { mode, ..DEFAULT }
    }
}

impl Default for Tar {
    fn default() -> Self {
        Self::new()
    }
}

impl Tar {
    pub fn new() -> Self {
        Tar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(ty: tar::EntryType, m: M, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(ty);
        h.set_mode(m.mode);
        h.set_uid(m.uid);
        h.set_gid(m.gid);
        h.set_mtime(m.mtime);
        h.set_size(size);
        h
    }

    /// A regular file (GNU long-name headers are written for long paths).
    pub fn file(&mut self, path: &str, data: &[u8], m: M) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Regular, m, data.len() as u64);
        self.b.append_data(&mut h, path, data).unwrap();
        self
    }

    pub fn dir(&mut self, path: &str, m: M) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Directory, m, 0);
        self.b.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str, m: M) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Symlink, m, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Link, DEFAULT, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn node(
        &mut self,
        path: &str,
        ty: tar::EntryType,
        major: u32,
        minor: u32,
        m: M,
    ) -> &mut Self {
        let mut h = Self::header(ty, m, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.b.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    /// A PAX extended header applying to the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
        self.b
            .append_pax_extensions(records.iter().map(|(k, v)| (*k, *v)))
            .unwrap();
        self
    }

    /// A hand-written ustar header (checksum computed here) and its data: for names the
    /// builder would refuse.
    pub fn raw(&mut self, name: &[u8], typeflag: u8, link: &[u8], data: &[u8]) -> &mut Self {
        assert!(name.len() <= 100 && link.len() <= 100);
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name);
        let octal = |field: &mut [u8], v: u64| {
            let s = format!("{:0width$o}\0", v, width = field.len() - 1);
            field.copy_from_slice(s.as_bytes());
        };
        octal(&mut h[100..108], 0o644);
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], data.len() as u64);
        octal(&mut h[136..148], 1_600_000_000);
        h[156] = typeflag;
        h[157..157 + link.len()].copy_from_slice(link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let out = self.b.get_mut();
        out.write_all(&h).unwrap();
        out.write_all(data).unwrap();
        let pad = (512 - data.len() % 512) % 512;
        out.write_all(&vec![0u8; pad]).unwrap();
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

/// A parent tempdir holding `dest` and sentinel files beside it.
pub struct Sandbox {
    pub tmp: tempfile::TempDir,
    pub dest: PathBuf,
    before: BTreeMap<PathBuf, String>,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        // dest is three levels down, so that `..`, `../..` and `../../..` from it (what
        // an escape would reach) are all still inside the sandbox: a regression must
        // show up here, never write to the host.
        let dest = tmp.path().join("l1/l2/dest");
        fs::create_dir_all(&dest).unwrap();
        for p in ["sentinel", "l1/sentinel", "l1/l2/sentinel"] {
            fs::write(tmp.path().join(p), b"original").unwrap();
        }
        fs::create_dir(tmp.path().join("etc")).unwrap();
        fs::write(tmp.path().join("etc/passwd"), b"root:x:0:0").unwrap();
        let mut s = Sandbox {
            tmp,
            dest,
            before: BTreeMap::new(),
        };
        s.before = s.outside();
        s
    }

    /// The sandbox root (dest is `<root>/l1/l2/dest`).
    pub fn parent(&self) -> &Path {
        self.tmp.path()
    }

    /// The sandbox root's absolute path, for symlink targets that would escape to it.
    pub fn abs(&self) -> String {
        self.tmp.path().to_str().unwrap().to_owned()
    }

    /// Everything in the parent except `dest`: path -> type, mode, owner, size, links,
    /// mtime and content.
    fn outside(&self) -> BTreeMap<PathBuf, String> {
        fn walk(dir: &Path, skip: &Path, out: &mut BTreeMap<PathBuf, String>) {
            let md = fs::symlink_metadata(dir).unwrap();
            out.insert(dir.to_path_buf(), describe(dir, &md));
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p == skip {
                    continue;
                }
                let md = fs::symlink_metadata(&p).unwrap();
                if md.is_dir() {
                    walk(&p, skip, out);
                } else {
                    out.insert(p.clone(), describe(&p, &md));
                }
            }
        }
        fn describe(p: &Path, md: &fs::Metadata) -> String {
            let content = if md.is_file() {
                format!("{:?}", fs::read(p).unwrap())
            } else {
                String::new()
            };
            format!(
                "mode={:o} uid={} gid={} size={} nlink={} mtime={} {}",
                md.mode(),
                md.uid(),
                md.gid(),
                if md.is_dir() { 0 } else { md.size() },
                md.nlink(),
                if md.is_dir() { 0 } else { md.mtime() },
                content
            )
        }
        let mut out = BTreeMap::new();
        walk(self.tmp.path(), &self.dest, &mut out);
        out
    }

    /// Panics if anything outside `dest` changed since the sandbox was made.
    pub fn assert_outside_untouched(&self) {
        assert_eq!(
            self.outside(),
            self.before,
            "something outside dest changed"
        );
    }
}
