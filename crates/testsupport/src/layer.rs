//! Layer tarballs built entry by entry, plus malicious layers written by hand.

use std::path::Path;

/// Default mtime for entries (2020-09-13T12:26:40Z): deterministic layers.
pub const DEFAULT_MTIME: u64 = 1_600_000_000;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    /// Hard link to another path in the archive (as written in the tar: no leading `/`).
    Hardlink(String),
    Fifo,
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
}

/// One tar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

/// Builds an uncompressed layer tarball. Entry methods add an entry; `owner`, `mtime`
/// and `xattr` change the entry added last.
///
/// ```
/// use coracle_testsupport::Layer;
/// let tar = Layer::new()
///     .dir("etc", 0o755)
///     .file("etc/motd", b"hi\n", 0o644).owner(1000, 1000).xattr("user.test", b"v")
///     .symlink("etc/link", "motd")
///     .to_tar();
/// assert!(!tar.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layer {
    pub entries: Vec<Entry>,
}

fn clean(path: &str) -> String {
    path.trim_start_matches('/').to_string()
}

impl Layer {
    pub fn new() -> Layer {
        Layer::default()
    }

    pub fn entry(mut self, path: &str, kind: EntryKind, mode: u32) -> Layer {
        self.entries.push(Entry {
            path: clean(path),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: DEFAULT_MTIME,
            xattrs: Vec::new(),
        });
        self
    }

    pub fn file(self, path: &str, content: impl AsRef<[u8]>, mode: u32) -> Layer {
        self.entry(path, EntryKind::File(content.as_ref().to_vec()), mode)
    }

    pub fn dir(self, path: &str, mode: u32) -> Layer {
        self.entry(path, EntryKind::Dir, mode)
    }

    pub fn symlink(self, path: &str, target: &str) -> Layer {
        self.entry(path, EntryKind::Symlink(target.to_string()), 0o777)
    }

    /// `target` is another entry's path in the archive.
    pub fn hardlink(self, path: &str, target: &str) -> Layer {
        self.entry(path, EntryKind::Hardlink(clean(target)), 0o644)
    }

    pub fn fifo(self, path: &str) -> Layer {
        self.entry(path, EntryKind::Fifo, 0o644)
    }

    pub fn char_device(self, path: &str, major: u32, minor: u32) -> Layer {
        self.entry(path, EntryKind::CharDevice { major, minor }, 0o666)
    }

    pub fn block_device(self, path: &str, major: u32, minor: u32) -> Layer {
        self.entry(path, EntryKind::BlockDevice { major, minor }, 0o660)
    }

    /// Whiteout of `path` from lower layers (`dir/.wh.name`).
    pub fn whiteout(self, path: &str) -> Layer {
        let p = Path::new(path.trim_start_matches('/'));
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let wh = match p.parent().map(|d| d.to_string_lossy().into_owned()) {
            Some(d) if !d.is_empty() => format!("{d}/.wh.{name}"),
            _ => format!(".wh.{name}"),
        };
        self.file(&wh, b"", 0o644)
    }

    /// Opaque marker for `dir` (`dir/.wh..wh..opq`): hides everything below from lower layers.
    pub fn opaque(self, dir: &str) -> Layer {
        let d = dir.trim_matches('/');
        self.file(&format!("{d}/.wh..wh..opq"), b"", 0o644)
    }

    fn last(&mut self) -> &mut Entry {
        self.entries
            .last_mut()
            .expect("Layer: owner/mtime/xattr/mode need an entry added first")
    }

    /// Owner of the entry added last.
    pub fn owner(mut self, uid: u64, gid: u64) -> Layer {
        let e = self.last();
        e.uid = uid;
        e.gid = gid;
        self
    }

    /// Modification time (seconds since the epoch) of the entry added last.
    pub fn mtime(mut self, secs: u64) -> Layer {
        self.last().mtime = secs;
        self
    }

    /// Mode of the entry added last.
    pub fn mode(mut self, mode: u32) -> Layer {
        self.last().mode = mode;
        self
    }

    /// Extended attribute on the entry added last (written as a PAX `SCHILY.xattr.*` record).
    pub fn xattr(mut self, name: &str, value: impl AsRef<[u8]>) -> Layer {
        self.last()
            .xattrs
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }

    /// Appends another layer's entries.
    pub fn extend(mut self, other: Layer) -> Layer {
        self.entries.extend(other.entries);
        self
    }

    /// The uncompressed tar bytes.
    pub fn to_tar(&self) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in &self.entries {
            append_entry(&mut b, e).unwrap_or_else(|err| panic!("tar entry {}: {err}", e.path));
        }
        b.into_inner().expect("finish tar")
    }

    /// `/bin/busybox` (from busybox-static) with a symlink per applet from
    /// `busybox --list`, the usual top-level dirs, `/etc/passwd` and `/etc/group`.
    pub fn busybox() -> Layer {
        let bin = busybox_path();
        let data = std::fs::read(&bin)
            .unwrap_or_else(|e| panic!("read {bin}: {e} (install busybox-static)"));
        let list = std::process::Command::new(&bin)
            .arg("--list")
            .output()
            .unwrap_or_else(|e| panic!("{bin} --list: {e}"));
        let mut applets: Vec<String> = String::from_utf8_lossy(&list.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty() && l != "busybox" && !l.contains('/'))
            .collect();
        applets.sort();
        applets.dedup();
        let mut l = Layer::new()
            .dir("bin", 0o755)
            .file("bin/busybox", &data, 0o755);
        for a in &applets {
            l = l.symlink(&format!("bin/{a}"), "busybox");
        }
        l.dir("dev", 0o755)
            .dir("etc", 0o755)
            .file(
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
                0o644,
            )
            .file("etc/group", "root:x:0:\nnobody:x:65534:\n", 0o644)
            .dir("proc", 0o555)
            .dir("root", 0o700)
            .dir("sys", 0o555)
            .dir("tmp", 0o1777)
            .dir("usr", 0o755)
            .dir("usr/bin", 0o755)
            .dir("var", 0o755)
    }
}

/// Path of the static busybox (override with env `CORACLE_TEST_BUSYBOX`).
pub fn busybox_path() -> String {
    std::env::var("CORACLE_TEST_BUSYBOX").unwrap_or_else(|_| "/bin/busybox".to_string())
}

fn append_entry(b: &mut tar::Builder<Vec<u8>>, e: &Entry) -> std::io::Result<()> {
    let mut header = tar::Header::new_ustar();
    let (etype, data, link): (tar::EntryType, &[u8], Option<&str>) = match &e.kind {
        EntryKind::File(d) => (tar::EntryType::Regular, d, None),
        EntryKind::Dir => (tar::EntryType::Directory, &[], None),
        EntryKind::Symlink(t) => (tar::EntryType::Symlink, &[], Some(t)),
        EntryKind::Hardlink(t) => (tar::EntryType::Link, &[], Some(t)),
        EntryKind::Fifo => (tar::EntryType::Fifo, &[], None),
        EntryKind::CharDevice { .. } => (tar::EntryType::Char, &[], None),
        EntryKind::BlockDevice { .. } => (tar::EntryType::Block, &[], None),
    };
    header.set_entry_type(etype);
    header.set_mode(e.mode);
    header.set_uid(e.uid);
    header.set_gid(e.gid);
    header.set_mtime(e.mtime);
    header.set_size(data.len() as u64);
    if let EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } = e.kind
    {
        header.set_device_major(major)?;
        header.set_device_minor(minor)?;
    }
    let mut path = e.path.clone();
    if matches!(e.kind, EntryKind::Dir) && !path.ends_with('/') {
        path.push('/');
    }
    // PAX records for xattrs, long paths and long link targets.
    let mut pax: Vec<(String, Vec<u8>)> = e
        .xattrs
        .iter()
        .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.clone()))
        .collect();
    if path.len() > 100 || !path.is_ascii() {
        pax.push(("path".into(), path.clone().into_bytes()));
    }
    if let Some(l) = link {
        if l.len() > 100 || !l.is_ascii() {
            pax.push(("linkpath".into(), l.as_bytes().to_vec()));
        }
    }
    if !pax.is_empty() {
        b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
    }
    set_truncated(&mut header.as_old_mut().name, path.as_bytes());
    if let Some(l) = link {
        set_truncated(&mut header.as_old_mut().linkname, l.as_bytes());
    }
    header.set_cksum();
    b.append(&header, data)
}

/// Copies as much of `src` as fits (the PAX record holds the full value).
fn set_truncated(field: &mut [u8], src: &[u8]) {
    field.iter_mut().for_each(|b| *b = 0);
    let n = src.len().min(field.len());
    field[..n].copy_from_slice(&src[..n]);
}

/// Kinds of layers that try to write outside the unpack root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malicious {
    /// A file at `../coracle-escape-dotdot` (and `a/../../coracle-escape-dotdot2`).
    DotDotPath,
    /// A file at the absolute path `/tmp/coracle-escape-abspath`.
    AbsolutePath,
    /// Symlink `escape -> /tmp`, then file `escape/coracle-escape-abs-symlink`.
    AbsoluteSymlinkThenFile,
    /// Symlink `escape -> ../../../../../../../../tmp`, then `escape/coracle-escape-rel-symlink`.
    RelativeSymlinkThenFile,
    /// Hard link `passwd-link` to `../../etc/passwd`.
    HardlinkEscape,
    /// Hard link `passwd-abs` to `/etc/passwd`.
    HardlinkAbsolute,
}

impl Malicious {
    pub const ALL: [Malicious; 6] = [
        Malicious::DotDotPath,
        Malicious::AbsolutePath,
        Malicious::AbsoluteSymlinkThenFile,
        Malicious::RelativeSymlinkThenFile,
        Malicious::HardlinkEscape,
        Malicious::HardlinkAbsolute,
    ];

    /// Host paths a vulnerable unpacker would create (check they do not exist after).
    pub fn escape_markers(self) -> Vec<&'static str> {
        match self {
            Malicious::DotDotPath => vec![],
            Malicious::AbsolutePath => vec!["/tmp/coracle-escape-abspath"],
            Malicious::AbsoluteSymlinkThenFile => vec!["/tmp/coracle-escape-abs-symlink"],
            Malicious::RelativeSymlinkThenFile => vec!["/tmp/coracle-escape-rel-symlink"],
            Malicious::HardlinkEscape | Malicious::HardlinkAbsolute => vec![],
        }
    }

    /// Raw entries: (path, type flag, link target, content).
    pub fn entries(self) -> Vec<RawEntry> {
        let f = |p: &str, c: &[u8]| RawEntry::new(p, b'0', "", c);
        match self {
            Malicious::DotDotPath => vec![
                f("../coracle-escape-dotdot", b"escaped\n"),
                RawEntry::new("a/", b'5', "", b""),
                f("a/../../coracle-escape-dotdot2", b"escaped\n"),
            ],
            Malicious::AbsolutePath => vec![f("/tmp/coracle-escape-abspath", b"escaped\n")],
            Malicious::AbsoluteSymlinkThenFile => vec![
                RawEntry::new("escape", b'2', "/tmp", b""),
                f("escape/coracle-escape-abs-symlink", b"escaped\n"),
            ],
            Malicious::RelativeSymlinkThenFile => vec![
                RawEntry::new("escape", b'2', "../../../../../../../../tmp", b""),
                f("escape/coracle-escape-rel-symlink", b"escaped\n"),
            ],
            Malicious::HardlinkEscape => {
                vec![RawEntry::new("passwd-link", b'1', "../../etc/passwd", b"")]
            }
            Malicious::HardlinkAbsolute => {
                vec![RawEntry::new("passwd-abs", b'1', "/etc/passwd", b"")]
            }
        }
    }
}

/// One hand-written ustar entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub path: String,
    pub typeflag: u8,
    pub link: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

impl RawEntry {
    pub fn new(path: &str, typeflag: u8, link: &str, content: &[u8]) -> RawEntry {
        let mode = match typeflag {
            b'5' => 0o755,
            b'2' => 0o777,
            _ => 0o644,
        };
        RawEntry {
            path: path.to_string(),
            typeflag,
            link: link.to_string(),
            content: content.to_vec(),
            mode,
        }
    }
}

/// An uncompressed tar of a malicious layer, headers written byte by byte (the `tar`
/// crate's Builder refuses these paths).
pub fn malicious_layer(kind: Malicious) -> Vec<u8> {
    raw_tar(&kind.entries())
}

/// Writes ustar headers by hand (paths up to 100 bytes, links up to 100 bytes).
pub fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&raw_header(e));
        out.extend_from_slice(&e.content);
        let pad = (512 - e.content.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

fn octal(field: &mut [u8], value: u64) {
    // width-1 digits then NUL.
    let w = field.len() - 1;
    let s = format!("{value:0w$o}");
    field[..w].copy_from_slice(s.as_bytes());
    field[w] = 0;
}

/// A 512-byte ustar header with a correct checksum.
pub fn raw_header(e: &RawEntry) -> [u8; 512] {
    assert!(
        e.path.len() <= 100 && e.link.len() <= 100,
        "raw_header: name too long"
    );
    let mut h = [0u8; 512];
    h[..e.path.len()].copy_from_slice(e.path.as_bytes());
    octal(&mut h[100..108], e.mode as u64);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], e.content.len() as u64);
    octal(&mut h[136..148], DEFAULT_MTIME);
    h[156] = e.typeflag;
    h[157..157 + e.link.len()].copy_from_slice(e.link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], 0);
    octal(&mut h[337..345], 0);
    // Checksum: sum of all bytes with the checksum field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}
