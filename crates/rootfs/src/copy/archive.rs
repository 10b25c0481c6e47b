//! Writing a tar stream of one entry of a tree, walking it by descriptors.
//!
//! The stream is what docker's daemon sends for `docker cp CONTAINER:PATH -`: the
//! entry under its top-level name (directories with a trailing `/`), children in name
//! order, hard links as link entries to the first name seen, owners and modes as on
//! disk, `security.capability` as a PAX `SCHILY.xattr` record, sockets left out. Names
//! and link targets too long for the ustar header go in PAX `path`/`linkpath` records.
//!
//! Seen through a running container's `/proc/<pid>/root`, the tree also has the
//! kernel's filesystems mounted (`/proc`, `/sys`, `/dev/pts`, ...), which docker's view
//! of a container's files does not: their directories are archived without contents
//! (their files have no meaningful size, and `/proc/self` names the copying process).

use super::{io_err, At, CopyError, Entry};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use tar::{EntryType, Header};

const NAME_LEN: usize = 100;
/// Largest value of an 8-byte octal header field (uid, gid).
const MAX_OCTAL_ID: u64 = 0o7777777;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveStats {
    /// Bytes of regular file content.
    pub content_bytes: u64,
    /// Bytes of the tar stream.
    pub archive_bytes: u64,
    pub entries: u64,
}

struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A file's content, exactly `len` bytes: a file that shrank since it was stat'ed
/// is padded with zeros, one that grew is cut (the header already says the size).
struct Exact<R> {
    inner: io::Take<R>,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let mut n = self.inner.read(buf)?;
        if n == 0 {
            n = buf.len().min(self.left as usize);
            buf[..n].fill(0);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

struct Writer<W: Write> {
    tar: tar::Builder<Counting<W>>,
    /// (dev, ino) of multiply-linked files already written -> their name.
    links: HashMap<(u64, u64), Vec<u8>>,
    stats: ArchiveStats,
}

/// Writes the tar stream of `entry`, named `name` at the top (`.` for "the contents
/// of"), to `out`, and ends the archive.
pub fn write_archive<W: Write>(
    entry: &Entry,
    name: &str,
    out: W,
) -> Result<ArchiveStats, CopyError> {
    let mut w = Writer {
        tar: tar::Builder::new(Counting { inner: out, n: 0 }),
        links: HashMap::new(),
        stats: ArchiveStats::default(),
    };
    let top = name.trim_end_matches('/').as_bytes().to_vec();
    match &entry.at {
        At::Dir(fd) => {
            let st = rfs::fstat(fd).map_err(io_err("fstat", name))?;
            let dir = rfs::openat(
                fd,
                c".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io_err("open", name))?;
            w.dir(dir, top, &st)?;
        }
        At::Child {
            parent,
            name: cname,
        } => {
            let st = rfs::statat(parent, &**cname, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(io_err("lstat", name))?;
            w.add(parent.as_fd(), cname, top, &st)?;
        }
    }
    w.tar.finish().map_err(CopyError::Write)?;
    w.stats.archive_bytes = w.tar.get_ref().n;
    Ok(w.stats)
}

fn lossy(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

impl<W: Write> Writer<W> {
    fn add(
        &mut self,
        parent: BorrowedFd<'_>,
        cname: &CStr,
        name: Vec<u8>,
        st: &rfs::Stat,
    ) -> Result<(), CopyError> {
        let shown = lossy(&name);
        let ty = FileType::from_raw_mode(st.st_mode);
        if ty != FileType::Directory && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key).cloned() {
                return self.append(
                    &name,
                    EntryType::Link,
                    st,
                    0,
                    Some(&first),
                    None,
                    io::empty(),
                );
            }
            self.links.insert(key, name.clone());
        }
        match ty {
            FileType::Directory => {
                let dir = rfs::openat(
                    parent,
                    cname,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io_err("open", &shown))?;
                self.dir(dir, name, st)
            }
            FileType::RegularFile => {
                // NONBLOCK: should a FIFO have been swapped in, do not wait on it.
                let fd = rfs::openat(
                    parent,
                    cname,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(io_err("open", &shown))?;
                let st = rfs::fstat(&fd).map_err(io_err("fstat", &shown))?;
                if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                    return Err(CopyError::Invalid(format!(
                        "{shown} changed while being copied"
                    )));
                }
                let cap = capability(fd.as_fd());
                let size = st.st_size as u64;
                let data = Exact {
                    inner: File::from(fd).take(size),
                    left: size,
                };
                self.stats.content_bytes += size;
                self.append(&name, EntryType::Regular, &st, size, None, cap, data)
            }
            FileType::Symlink => {
                let target = match rfs::readlinkat(parent, cname, Vec::new()) {
                    Ok(t) => t.into_bytes(),
                    // Gone since the listing: nothing to copy.
                    Err(Errno::NOENT) => return Ok(()),
                    Err(e) => return Err(io_err("readlink", &shown)(e)),
                };
                self.append(
                    &name,
                    EntryType::Symlink,
                    st,
                    0,
                    Some(&target),
                    None,
                    io::empty(),
                )
            }
            FileType::CharacterDevice => {
                self.append(&name, EntryType::Char, st, 0, None, None, io::empty())
            }
            FileType::BlockDevice => {
                self.append(&name, EntryType::Block, st, 0, None, None, io::empty())
            }
            FileType::Fifo => self.append(&name, EntryType::Fifo, st, 0, None, None, io::empty()),
            // docker leaves sockets out: they cannot be recreated from an archive.
            FileType::Socket | FileType::Unknown => Ok(()),
        }
    }

    fn dir(&mut self, dir: OwnedFd, name: Vec<u8>, st: &rfs::Stat) -> Result<(), CopyError> {
        let shown = lossy(&name);
        let cap = capability(dir.as_fd());
        let mut header_name = name.clone();
        header_name.push(b'/');
        self.append(
            &header_name,
            EntryType::Directory,
            st,
            0,
            None,
            cap,
            io::empty(),
        )?;
        if kernel_fs(dir.as_fd()) {
            return Ok(());
        }
        let listing = rfs::openat(
            &dir,
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_err("open", &shown))?;
        let mut children: Vec<CString> = Vec::new();
        for ent in rfs::Dir::new(listing).map_err(io_err("read directory", &shown))? {
            let ent = ent.map_err(io_err("read directory", &shown))?;
            let n = ent.file_name();
            if n != c"." && n != c".." {
                children.push(n.to_owned());
            }
        }
        children.sort();
        for child in children {
            let mut child_name = name.clone();
            child_name.push(b'/');
            child_name.extend_from_slice(child.as_bytes());
            match rfs::statat(&dir, &*child, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => self.add(dir.as_fd(), &child, child_name, &st)?,
                // Removed since the listing: nothing to copy.
                Err(Errno::NOENT) => {}
                Err(e) => return Err(io_err("lstat", &lossy(&child_name))(e)),
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        name: &[u8],
        ty: EntryType,
        st: &rfs::Stat,
        size: u64,
        link: Option<&[u8]>,
        capability: Option<Vec<u8>>,
        data: impl Read,
    ) -> Result<(), CopyError> {
        let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
        let mut h = Header::new_ustar();
        h.set_entry_type(ty);
        h.set_mode(st.st_mode & 0o7777);
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(size);
        let (uid, gid) = (st.st_uid as u64, st.st_gid as u64);
        if uid > MAX_OCTAL_ID {
            pax.push(("uid", uid.to_string().into_bytes()));
        }
        if gid > MAX_OCTAL_ID {
            pax.push(("gid", gid.to_string().into_bytes()));
        }
        h.set_uid(uid.min(MAX_OCTAL_ID));
        h.set_gid(gid.min(MAX_OCTAL_ID));
        if matches!(ty, EntryType::Char | EntryType::Block) {
            let rdev = st.st_rdev;
            h.set_device_major(rfs::major(rdev))
                .and_then(|_| h.set_device_minor(rfs::minor(rdev)))
                .map_err(CopyError::Write)?;
        }
        set_field(&mut h.as_old_mut().name, name, "path", &mut pax);
        if let Some(link) = link {
            set_field(&mut h.as_old_mut().linkname, link, "linkpath", &mut pax);
        }
        if let Some(cap) = capability {
            pax.push(("SCHILY.xattr.security.capability", cap));
        }
        if !pax.is_empty() {
            let records = pax_records(&pax);
            let mut x = Header::new_ustar();
            x.set_entry_type(EntryType::XHeader);
            x.set_mode(0o644);
            x.set_size(records.len() as u64);
            set_field(&mut x.as_old_mut().name, b"PaxHeader", "", &mut Vec::new());
            x.set_cksum();
            self.tar
                .append(&x, &records[..])
                .map_err(CopyError::Write)?;
        }
        h.set_cksum();
        self.tar.append(&h, data).map_err(CopyError::Write)?;
        self.stats.entries += 1;
        Ok(())
    }
}

/// Puts `value` in a fixed header field, or (too long) its start there and the whole
/// in a PAX record.
fn set_field<'a>(
    field: &mut [u8],
    value: &[u8],
    pax_key: &'a str,
    pax: &mut Vec<(&'a str, Vec<u8>)>,
) {
    field.fill(0);
    let n = value.len().min(NAME_LEN).min(field.len());
    field[..n].copy_from_slice(&value[..n]);
    if value.len() > field.len() {
        pax.push((pax_key, value.to_vec()));
    }
}

/// PAX records: `"<len> <key>=<value>\n"`, the length counting its own digits.
fn pax_records(records: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let rest = 1 + key.len() + 1 + value.len() + 1;
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// Whether the directory is on one of the kernel's own filesystems (see the module
/// docs); `linux/magic.h` numbers.
fn kernel_fs(fd: BorrowedFd<'_>) -> bool {
    const KERNEL: &[u64] = &[
        0x9fa0,      // proc
        0x6265_6572, // sysfs
        0x0027_e0eb, // cgroup
        0x6367_7270, // cgroup2
        0x1cd1,      // devpts
        0x1980_0202, // mqueue
        0x6462_6720, // debugfs
        0x7472_6163, // tracefs
        0x7363_6673, // securityfs
        0xcafe_4a11, // bpf
        0x6e73_6673, // nsfs
        0xf97c_ff8c, // selinuxfs
        0x4249_4e4d, // binfmt_misc
        0x6165_676c, // pstore
        0xde5e_81e4, // efivarfs
        0x6265_6570, // configfs
        0x6573_5543, // fusectl
    ];
    rfs::fstatfs(fd).is_ok_and(|s| KERNEL.contains(&(s.f_type as u64)))
}

/// The `security.capability` xattr, the only one docker carries in copies.
fn capability(fd: BorrowedFd<'_>) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rfs::fgetxattr(fd, "security.capability", &mut buf[..]) {
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_lengths_count_themselves() {
        let r = pax_records(&[("path", b"a".to_vec())]);
        assert_eq!(r, b"9 path=a\n");
        let long = vec![b'x'; 95];
        let r = pax_records(&[("path", long.clone())]);
        // 1 + 4 + 1 + 95 + 1 = 102 bytes plus 3 digits.
        assert_eq!(&r[..9], b"105 path=");
        assert_eq!(r.len(), 105);
    }
}
