//! `logs`: reads a container's json-file log (written by its monitor, see
//! `coracle_runtime::monitor::logfile`) the way dockerd's json-file reader does: rotated
//! files oldest first, then the current one; `--tail` counted from the end before
//! `--since`/`--until` filter (moby's order); `-f` follows the file through rotations
//! and restarts until the container stops.
//!
//! There is no daemon to tell a reader that the writer rotated: the monitor renames
//! `log` to `log.1` and creates a new `log`, so a follower notices that the name points
//! at another file, finishes the one it holds by its descriptor and moves on.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::{Containers, Engine, EngineError};

/// How often `-f` looks for new entries.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// Opening the files can race a rotation; it is retried this many times.
const SNAPSHOT_ATTEMPTS: usize = 10;
/// The monitor stamps an entry when it reads the output and writes it just after;
/// `-f --until` stops once the clock is this far past `until`.
const UNTIL_GRACE: Duration = Duration::from_secs(1);

/// What `logs` prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsOptions {
    /// `-f`: keep printing new entries until the container stops.
    pub follow: bool,
    /// `--tail N`: only the last N entries that were there when `logs` started.
    pub tail: Option<usize>,
    /// `--since`: entries from this time on.
    pub since: Option<SystemTime>,
    /// `--until`: entries up to this time.
    pub until: Option<SystemTime>,
    /// `-t`: each entry prefixed with its time (RFC 3339, 9 fraction digits).
    pub timestamps: bool,
    /// `--details`: each entry prefixed with its extra attributes and a space.
    pub details: bool,
}

impl Engine {
    /// The container's json-file log; rotated files are `<this>.1`, `<this>.2`, ...
    pub(crate) fn log_path(&self, id: &str) -> PathBuf {
        self.containers_dir()
            .join(id)
            .join(format!("{id}-json.log"))
    }
}

impl Containers<'_> {
    /// Prints the container's log: stdout entries to `stdout`, stderr entries to
    /// `stderr` (everything to `stdout` for a `-t` container, whose output is one
    /// stream), as docker's CLI does.
    pub fn logs(
        &mut self,
        key: &str,
        opts: &LogsOptions,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> Result<(), EngineError> {
        let c = self.find_container(key)?;
        let cfg = self.container_config(&c.id)?;
        if !cfg.log.enabled {
            return Err(EngineError::InvalidArgument(
                "configured logging driver does not support reading".into(),
            ));
        }
        let path = self.log_path(&c.id);
        let mut out = Output::new(stdout, stderr, cfg.tty, opts);
        let id = c.id;
        let mut active = || match self.find_container(&id) {
            Ok(c) => Ok(c.is_active()),
            // Removed while we follow it: nothing more will be written.
            Err(EngineError::NoSuchContainer(_)) => Ok(false),
            Err(e) => Err(e),
        };
        read_logs(&path, cfg.log.max_file, opts, &mut out, &mut active)
    }
}

/// The reading itself, apart from the engine: `active` says whether the container
/// may still write (checked before each read, so what it wrote before stopping is
/// printed).
pub(crate) fn read_logs(
    path: &Path,
    max_file: u32,
    opts: &LogsOptions,
    out: &mut Output,
    active: &mut dyn FnMut() -> Result<bool, EngineError>,
) -> Result<(), EngineError> {
    let files = snapshot(path, max_file)?;
    let starts = tail_starts(&files, opts.tail)?;
    let mut newest = None;
    for (f, start) in files.into_iter().zip(starts) {
        let pos = read_lines(&f, start, f.end, out)?;
        out.flush(&f.path)?;
        if out.done {
            return Ok(());
        }
        newest = Some((f, pos));
    }
    if !opts.follow {
        return Ok(());
    }
    Follower {
        path,
        max_file,
        until: opts.until,
        cur: newest,
    }
    .run(out, active)
}

/// One log file as opened: where it was, and how much of it counts.
struct Opened {
    path: PathBuf,
    file: File,
    id: (u64, u64),
    end: u64,
}

fn identity(m: &std::fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{n}"));
    PathBuf::from(p)
}

fn open_existing(path: &Path) -> Result<Option<Opened>, EngineError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(EngineError::io("open", path)(e)),
    };
    let m = file.metadata().map_err(EngineError::io("stat", path))?;
    Ok(Some(Opened {
        path: path.to_path_buf(),
        file,
        id: identity(&m),
        end: m.len(),
    }))
}

/// The rotated files (oldest first) and the current one, as they are at one moment:
/// a rotation while opening them shows as a name that no longer names what was
/// opened, and the whole set is opened again.
fn snapshot(path: &Path, max_file: u32) -> Result<Vec<Opened>, EngineError> {
    let names: Vec<PathBuf> = (1..max_file.max(1))
        .rev()
        .map(|n| numbered(path, n))
        .chain([path.to_path_buf()])
        .collect();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut opened = Vec::new();
        let mut ids = Vec::new();
        for name in &names {
            let o = open_existing(name)?;
            ids.push(o.as_ref().map(|o| o.id));
            opened.extend(o);
        }
        let stable = names
            .iter()
            .zip(&ids)
            .all(|(name, id)| std::fs::metadata(name).ok().map(|m| identity(&m)) == *id);
        if stable || attempt == SNAPSHOT_ATTEMPTS {
            return Ok(opened);
        }
    }
}

/// Where reading starts in each file so that only the last `tail` complete lines
/// (one entry each) are read.
fn tail_starts(files: &[Opened], tail: Option<usize>) -> Result<Vec<u64>, EngineError> {
    let Some(mut want) = tail else {
        return Ok(vec![0; files.len()]);
    };
    let mut starts = vec![0; files.len()];
    for (i, f) in files.iter().enumerate().rev() {
        if want == 0 {
            starts[i] = f.end;
            continue;
        }
        let (start, found) =
            last_lines_start(&f.file, f.end, want).map_err(EngineError::io("read", &f.path))?;
        starts[i] = start;
        want -= found;
    }
    Ok(starts)
}

/// Scans back from `end` for the start of the last `want` complete lines; returns it
/// and how many lines there are from it (fewer than `want` when the file is short).
fn last_lines_start(file: &File, end: u64, want: usize) -> io::Result<(u64, usize)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = end;
    let mut found = 0;
    // The newline ending the last complete line; bytes after it are a torn write.
    let mut last_seen = false;
    while pos > 0 {
        let n = buf.len().min(pos as usize);
        pos -= n as u64;
        file.read_exact_at(&mut buf[..n], pos)?;
        for i in (0..n).rev() {
            if buf[i] != b'\n' {
                continue;
            }
            if !last_seen {
                last_seen = true;
                continue;
            }
            found += 1;
            if found == want {
                return Ok((pos + i as u64 + 1, found));
            }
        }
    }
    Ok((0, found + usize::from(last_seen)))
}

/// Prints the complete lines of `f` in `[start, end)`; returns the offset after the
/// last one (an unterminated line at the end is being written, or was torn by a crash).
fn read_lines(f: &Opened, start: u64, end: u64, out: &mut Output) -> Result<u64, EngineError> {
    if end <= start {
        return Ok(start);
    }
    let read_err = EngineError::io("read", &f.path);
    let mut file = &f.file;
    if let Err(e) = file.seek(SeekFrom::Start(start)) {
        return Err(read_err(e));
    }
    let mut r = BufReader::with_capacity(64 * 1024, file.take(end - start));
    let mut line = Vec::new();
    let mut pos = start;
    loop {
        line.clear();
        let n = match r.read_until(b'\n', &mut line) {
            Ok(n) => n,
            Err(e) => return Err(read_err(e)),
        };
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(pos);
        }
        pos += n as u64;
        out.entry(&line)
            .map_err(EngineError::io("write logs of", &f.path))?;
        if out.done {
            return Ok(pos);
        }
    }
}

/// `-f`: the newest file read so far and how far.
struct Follower<'p> {
    path: &'p Path,
    max_file: u32,
    until: Option<SystemTime>,
    cur: Option<(Opened, u64)>,
}

impl Follower<'_> {
    fn run(
        mut self,
        out: &mut Output,
        active: &mut dyn FnMut() -> Result<bool, EngineError>,
    ) -> Result<(), EngineError> {
        loop {
            let still_active = active()?;
            let checked_at = SystemTime::now();
            self.read_current(out)?;
            if out.done {
                return Ok(());
            }
            let now_at_name = std::fs::metadata(self.path).ok().map(|m| identity(&m));
            let held = self.cur.as_ref().map(|(f, _)| f.id);
            if now_at_name.is_some() && now_at_name != held {
                self.rotated(out)?;
                if out.done {
                    return Ok(());
                }
                // The new file may hold more already: read it before sleeping.
                continue;
            }
            let past_until = self.until.is_some_and(|u| checked_at > u + UNTIL_GRACE);
            if !still_active || past_until {
                return Ok(());
            }
            std::thread::sleep(FOLLOW_POLL);
        }
    }

    fn read_current(&mut self, out: &mut Output) -> Result<(), EngineError> {
        let Some((f, pos)) = &mut self.cur else {
            return Ok(());
        };
        let end = f
            .file
            .metadata()
            .map_err(EngineError::io("stat", &f.path))?
            .len();
        // Truncated in place by something else than our writer: start over.
        if end < *pos {
            *pos = 0;
        }
        *pos = read_lines(f, *pos, end, out)?;
        out.flush(&f.path)
    }

    /// The name now points at a newer file. What we hold is finished first; files
    /// rotated in between (several rotations within one poll) are read whole, oldest
    /// first, down to the file we held; then the new current file from its start.
    fn rotated(&mut self, out: &mut Output) -> Result<(), EngineError> {
        self.read_current(out)?;
        if out.done {
            return Ok(());
        }
        let held = self.cur.as_ref().map(|(f, _)| f.id);
        let mut newer = Vec::new();
        for n in 1..self.max_file.max(1) {
            match open_existing(&numbered(self.path, n))? {
                Some(o) if Some(o.id) == held => break,
                Some(o) => newer.push(o),
                None => {}
            }
        }
        for f in newer.into_iter().rev() {
            read_lines(&f, 0, f.end, out)?;
            out.flush(&f.path)?;
            if out.done {
                return Ok(());
            }
        }
        // Between the rename and the creation of the new file the name is missing
        // for a moment: keep holding the finished file, so that the next poll knows
        // where it stands among the rotated ones.
        if let Some(o) = open_existing(self.path)? {
            self.cur = Some((o, 0));
        }
        Ok(())
    }
}

/// One line of the log file.
#[derive(serde::Deserialize)]
struct Entry<'a> {
    #[serde(default, borrow)]
    log: Cow<'a, str>,
    #[serde(default, borrow)]
    stream: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
    /// Extra attributes (docker's `--log-opt labels/env/tag`); coracle writes none,
    /// but a log written by docker may have them.
    #[serde(default)]
    attrs: BTreeMap<String, String>,
}

/// Where entries go, filtered and formatted as dockerd's log stream writer does.
pub(crate) struct Output<'w> {
    stdout: &'w mut dyn Write,
    stderr: &'w mut dyn Write,
    tty: bool,
    timestamps: bool,
    details: bool,
    /// Cleared at the first entry at or after it: later entries are not checked
    /// again, as timestamps need not be monotonic (moby's forwarder).
    since: Option<SystemTime>,
    until: Option<SystemTime>,
    /// An entry after `until` was seen: nothing more is printed.
    pub(crate) done: bool,
    line: Vec<u8>,
}

impl<'w> Output<'w> {
    pub(crate) fn new(
        stdout: &'w mut dyn Write,
        stderr: &'w mut dyn Write,
        tty: bool,
        opts: &LogsOptions,
    ) -> Output<'w> {
        Output {
            stdout,
            stderr,
            tty,
            timestamps: opts.timestamps,
            details: opts.details,
            since: opts.since,
            until: opts.until,
            done: false,
            line: Vec::new(),
        }
    }

    /// One line of the file; what does not decode is skipped (a torn write).
    fn entry(&mut self, raw: &[u8]) -> io::Result<()> {
        let Ok(e) = serde_json::from_slice::<Entry>(raw) else {
            return Ok(());
        };
        let Ok(time) = chrono::DateTime::parse_from_rfc3339(&e.time) else {
            return Ok(());
        };
        let at = SystemTime::from(time);
        if let Some(since) = self.since {
            if at < since {
                return Ok(());
            }
            self.since = None;
        }
        if self.until.is_some_and(|u| at > u) {
            self.done = true;
            return Ok(());
        }
        let to_stdout = match e.stream.as_ref() {
            "stdout" => true,
            "stderr" => self.tty,
            _ => return Ok(()),
        };
        self.line.clear();
        if self.timestamps {
            // Go's RFC3339NanoFixed in the entry's own zone ("Z" for UTC).
            let fmt = if time.offset().local_minus_utc() == 0 {
                "%Y-%m-%dT%H:%M:%S%.9fZ "
            } else {
                "%Y-%m-%dT%H:%M:%S%.9f%:z "
            };
            write!(self.line, "{}", time.format(fmt))?;
        }
        if self.details {
            attrs_into(&mut self.line, &e.attrs);
            self.line.push(b' ');
        }
        self.line.extend_from_slice(e.log.as_bytes());
        let w = if to_stdout {
            &mut *self.stdout
        } else {
            &mut *self.stderr
        };
        w.write_all(&self.line)
    }

    fn flush(&mut self, path: &Path) -> Result<(), EngineError> {
        self.stdout
            .flush()
            .and_then(|()| self.stderr.flush())
            .map_err(EngineError::io("write logs of", path))
    }
}

/// dockerd's `attrsByteSlice`: `k=v` pairs sorted by key, query-escaped, joined by
/// commas (empty without attributes, so `--details` adds just the space).
fn attrs_into(out: &mut Vec<u8>, attrs: &BTreeMap<String, String>) {
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        query_escape(out, k);
        out.push(b'=');
        query_escape(out, v);
    }
}

/// Go's `url.QueryEscape`.
fn query_escape(out: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b),
            b' ' => out.push(b'+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
            }
        }
    }
}

#[cfg(test)]
mod tests;
