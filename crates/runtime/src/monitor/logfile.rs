//! The container's log in docker's json-file format, written by the monitor: one JSON
//! object per line, `{"log":"hello\n","stream":"stdout","time":"2026-11-23T10:00:00.1Z"}`,
//! byte for byte as moby's `jsonfilelog` writes it (key order, its JSON escaping, Go's
//! RFC 3339 nano timestamps), rotated as moby's `loggerutils.LogFile` rotates.
//!
//! The monitor's RSS target is 1 MiB: the only buffers are one line per stream (at most
//! docker's 16 KiB partial-message size) and one reused entry buffer.
//!
//! A log that cannot be written (a full disk) never stops the container or its
//! monitor: entries are dropped and counted while writes fail (docker's json-file
//! driver only returns the error), an entry the file took only part of is completed
//! first once it takes data again (no torn JSON lines), and the first entry after that
//! is a report on stderr, `coracle: N log lines dropped: no space left on device`,
//! also noted once in the monitor's own log.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use coracle_model::LogOptions;

/// docker's copier buffer: a line that grows to this many bytes without a newline is
/// written as a partial entry (no `\n` at the end of its `log`).
pub const PARTIAL_SIZE: usize = 16 * 1024;

/// The entry buffer is kept between entries; one that grew past this (an escaped 16 KiB
/// line can take ~100 KiB) is given back so a single odd line does not pin the memory.
const KEEP_ENTRY_CAPACITY: usize = 32 * 1024;

/// Owner only: logs carry whatever the container prints, secrets included (docker's
/// json-file is 0640, readable by root's group too).
const FILE_MODE: u32 = 0o600;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The `stream` field's value.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// What arrived on a stream after its last newline.
#[derive(Default)]
struct Held {
    line: Vec<u8>,
    /// docker stamps every piece of a long line with the time of its first piece.
    partial_since: Option<SystemTime>,
}

pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
    held: [Held; 2],
    entry: Vec<u8>,
    /// The rest of an entry the file took only part of.
    tail: Vec<u8>,
    /// Entries dropped since writes began to fail.
    dropped: u64,
    /// Why writes fail (None while they succeed).
    failure: Option<io::Error>,
}

impl LogWriter {
    /// Opens (appending: restarts of a container keep one log) `path` with the
    /// json-file options.
    pub fn open(path: &Path, opts: &LogOptions) -> io::Result<LogWriter> {
        let file = open_append(path, false)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size: opts.max_size,
            max_file: opts.max_file.max(1),
            held: Default::default(),
            entry: Vec::new(),
            tail: Vec::new(),
            dropped: 0,
            failure: None,
        })
    }

    /// Entries dropped since writes began to fail (0 while the log is written).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Feeds bytes just read from the container's stream. Complete lines become
    /// entries; a partial line is held per stream and written when its newline
    /// arrives, at [`flush`](Self::flush), or when it reaches [`PARTIAL_SIZE`].
    /// Entries the file does not take are dropped and counted, never an error.
    pub fn write(&mut self, stream: Stream, mut data: &[u8], now: SystemTime) {
        let i = stream.index();
        while !data.is_empty() {
            let room = PARTIAL_SIZE - self.held[i].line.len();
            let window = &data[..room.min(data.len())];
            match window.iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    let held = &mut self.held[i];
                    let time = held.partial_since.take().unwrap_or(now);
                    if held.line.is_empty() {
                        self.write_entry(stream, &window[..nl], true, time);
                    } else {
                        let mut line = std::mem::take(&mut held.line);
                        line.extend_from_slice(&window[..nl]);
                        self.write_entry(stream, &line, true, time);
                        line.clear();
                        self.held[i].line = line;
                    }
                    data = &data[nl + 1..];
                }
                None => {
                    let held = &mut self.held[i];
                    held.line.extend_from_slice(window);
                    data = &data[window.len()..];
                    if held.line.len() == PARTIAL_SIZE {
                        let time = *held.partial_since.get_or_insert(now);
                        self.write_held(stream, time);
                    }
                }
            }
        }
    }

    /// Writes held partial lines (container exited).
    pub fn flush(&mut self, now: SystemTime) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let held = &mut self.held[stream.index()];
            let time = held.partial_since.take().unwrap_or(now);
            if !held.line.is_empty() {
                self.write_held(stream, time);
            }
        }
    }

    /// The held line of `stream` as a partial entry; the buffer is kept for reuse.
    fn write_held(&mut self, stream: Stream, time: SystemTime) {
        let mut line = std::mem::take(&mut self.held[stream.index()].line);
        self.write_entry(stream, &line, false, time);
        line.clear();
        self.held[stream.index()].line = line;
    }

    fn write_entry(&mut self, stream: Stream, line: &[u8], complete: bool, time: SystemTime) {
        if !self.recover(time) {
            self.dropped += 1;
            return;
        }
        let mut entry = std::mem::take(&mut self.entry);
        entry.clear();
        encode_entry(&mut entry, stream, line, complete, time);
        if let Err((e, written)) = self.append(&entry) {
            if written == 0 {
                self.dropped += 1;
            }
            self.failed(e);
        }
        if entry.capacity() <= KEEP_ENTRY_CAPACITY {
            self.entry = entry;
        }
    }

    /// Before an entry after failed writes: the torn entry's rest, then the report of
    /// what was dropped. Whether the file takes data again.
    fn recover(&mut self, time: SystemTime) -> bool {
        if !self.tail.is_empty() {
            let tail = std::mem::take(&mut self.tail);
            match write_some(&mut self.file, &tail) {
                Ok(()) => self.size += tail.len() as u64,
                Err((e, n)) => {
                    self.size += n as u64;
                    self.tail = tail[n..].to_vec();
                    self.failed(e);
                    return false;
                }
            }
        }
        if self.dropped > 0 {
            let reason = self.failure.as_ref().map_or_else(String::new, describe);
            let n = self.dropped;
            let noun = if n == 1 { "line" } else { "lines" };
            let report = format!("coracle: {n} log {noun} dropped: {reason}");
            let mut entry = Vec::with_capacity(report.len() + 64);
            encode_entry(&mut entry, Stream::Stderr, report.as_bytes(), true, time);
            let out = self.append(&entry);
            if let Err((e, 0)) = out {
                self.failed(e);
                return false;
            }
            // The report is out (or its rest waits in `tail`): later drops are new.
            self.dropped = 0;
            super::note(format_args!(
                "coracle: container log {}: {n} log {noun} dropped: {reason}",
                self.path.display()
            ));
            if let Err((e, _)) = out {
                self.failed(e);
                return false;
            }
        }
        self.failure = None;
        true
    }

    /// A write failed: noted once per run of failures (on a full disk the note itself
    /// may not be written).
    fn failed(&mut self, e: io::Error) {
        if self.failure.is_none() {
            super::note(format_args!(
                "coracle: container log {}: {}: dropping log lines until it can be written",
                self.path.display(),
                describe(&e)
            ));
            self.failure = Some(e);
        }
    }

    /// Writes a whole entry (rotating first if it would not fit). On failure, the
    /// error and how much was written; the rest of a torn entry is kept in `tail`.
    fn append(&mut self, entry: &[u8]) -> Result<(), (io::Error, usize)> {
        let len = entry.len() as u64;
        if self
            .max_size
            .is_some_and(|max| self.size > 0 && self.size + len > max)
        {
            self.rotate().map_err(|e| (e, 0))?;
        }
        match write_some(&mut self.file, entry) {
            Ok(()) => {
                self.size += len;
                Ok(())
            }
            Err((e, n)) => {
                self.size += n as u64;
                if n > 0 {
                    self.tail = entry[n..].to_vec();
                }
                Err((e, n))
            }
        }
    }

    /// moby's rotation: drop the oldest, shift `log.N-1` → `log.N` ... `log` → `log.1`,
    /// write a new `log`. With one file the current one is unlinked and recreated
    /// rather than truncated, so a `logs -f` reading it finishes it by its descriptor.
    fn rotate(&mut self) -> io::Result<()> {
        let numbered = |n: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        let ignore_missing = |r: io::Result<()>| match r {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
        if self.max_file >= 2 {
            ignore_missing(std::fs::remove_file(numbered(self.max_file - 1)))?;
            for n in (2..self.max_file).rev() {
                ignore_missing(std::fs::rename(numbered(n - 1), numbered(n)))?;
            }
            ignore_missing(std::fs::rename(&self.path, numbered(1)))?;
        } else {
            ignore_missing(std::fs::remove_file(&self.path))?;
        }
        // Truncate too, in case the rename or unlink did not happen (moby does the same).
        self.file = open_append(&self.path, true)?;
        self.size = 0;
        Ok(())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if self.dropped > 0 {
            super::note(format_args!(
                "coracle: container log {}: {} log lines dropped: {}",
                self.path.display(),
                self.dropped,
                self.failure.as_ref().map_or_else(String::new, describe)
            ));
        }
    }
}

/// `write_all` that says how much was written when it fails.
fn write_some(file: &mut File, data: &[u8]) -> Result<(), (io::Error, usize)> {
    let mut done = 0;
    while done < data.len() {
        match file.write(&data[done..]) {
            Ok(0) => return Err((io::ErrorKind::WriteZero.into(), done)),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((e, done)),
        }
    }
    Ok(())
}

/// An error as Go words it (`no space left on device`), for the drop report.
fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let desc = nix::errno::Errno::from_raw(code).desc();
            let mut chars = desc.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_lowercase().chain(chars).collect::<String>()
            })
        }
        None => e.to_string(),
    }
}

/// Appending, or (after a rotation) truncated: std refuses append with truncate, and
/// with one writer the offset of a truncated file is its end anyway.
fn open_append(path: &Path, truncate: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    if truncate {
        o.write(true).truncate(true);
    } else {
        o.append(true);
    }
    o.create(true).mode(FILE_MODE).open(path)
}

/// One line of the log file, as moby's `JSONLogs.MarshalJSONBuf` + `marshalMessage`.
fn encode_entry(out: &mut Vec<u8>, stream: Stream, line: &[u8], complete: bool, time: SystemTime) {
    out.extend_from_slice(b"{\"log\":");
    out.push(b'"');
    escape_into(out, line);
    if complete {
        out.extend_from_slice(b"\\n");
    }
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    format_rfc3339_nano(out, time);
    out.extend_from_slice(b"\"}\n");
}

/// moby's `ffjsonWriteJSONBytesAsString` (without the quotes): `"` and `\` escaped,
/// `\n` and `\r` by name, other controls and `<`, `>`, `&` as `\u00XX`, U+2028/2029 as
/// `\u202X`, and every byte that does not start a valid UTF-8 sequence as `\ufffd` (Go
/// decodes rune by rune: one replacement per bad byte, unlike Rust's lossy decoding).
fn escape_into(out: &mut Vec<u8>, mut s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    while !s.is_empty() {
        let (valid, bad) = match std::str::from_utf8(s) {
            Ok(v) => (v, false),
            Err(e) => (
                // The prefix up to valid_up_to is valid UTF-8 by definition.
                std::str::from_utf8(&s[..e.valid_up_to()]).unwrap_or_default(),
                true,
            ),
        };
        let mut start = 0;
        let bytes = valid.as_bytes();
        for (i, c) in valid.char_indices() {
            let escaped: Option<&[u8]> = match c {
                '"' => Some(b"\\\""),
                '\\' => Some(b"\\\\"),
                '\n' => Some(b"\\n"),
                '\r' => Some(b"\\r"),
                '\u{2028}' => Some(b"\\u2028"),
                '\u{2029}' => Some(b"\\u2029"),
                c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => None,
                _ => continue,
            };
            out.extend_from_slice(&bytes[start..i]);
            match escaped {
                Some(e) => out.extend_from_slice(e),
                None => {
                    let b = c as u8;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 0xf) as usize]);
                }
            }
            start = i + c.len_utf8();
        }
        out.extend_from_slice(&bytes[start..]);
        s = &s[bytes.len()..];
        if bad {
            out.extend_from_slice(b"\\ufffd");
            s = &s[1..];
        }
    }
}

/// Go's `time.RFC3339Nano` in UTC: `2026-11-23T10:00:00.12345Z`, the fraction without
/// trailing zeros and left out when zero. Times before 1970 are written as the epoch
/// (a container cannot print before it exists).
fn format_rfc3339_nano(out: &mut Vec<u8>, time: SystemTime) {
    let d = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    push2(out, y as u64 / 100);
    push2(out, y as u64 % 100);
    out.push(b'-');
    push2(out, m.into());
    out.push(b'-');
    push2(out, day.into());
    out.push(b'T');
    push2(out, rem / 3600);
    out.push(b':');
    push2(out, rem % 3600 / 60);
    out.push(b':');
    push2(out, rem % 60);
    let mut nanos = d.subsec_nanos();
    if nanos != 0 {
        let mut digits = 9;
        while nanos.is_multiple_of(10) {
            nanos /= 10;
            digits -= 1;
        }
        out.push(b'.');
        let mut buf = [b'0'; 9];
        for slot in buf[..digits].iter_mut().rev() {
            *slot = b'0' + (nanos % 10) as u8;
            nanos /= 10;
        }
        out.extend_from_slice(&buf[..digits]);
    }
    out.push(b'Z');
}

fn push2(out: &mut Vec<u8>, n: u64) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests;
