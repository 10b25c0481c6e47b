//! The attach protocol between a container's monitor and `coracle run`/`start -a`/
//! `attach`, over a unix stream socket the monitor listens on.
//!
//! Frames are `kind: u8, len: u32 (big endian), payload`. Client to monitor: stdin
//! data, stdin closed, window resize. Monitor to client: stdout, stderr (one stream
//! with a tty), and the exit code when the container has stopped and been torn down.
//! A client detaches by closing its socket.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
/// Payload: the exit code in decimal.
pub const EXIT: u8 = 3;
pub const STDIN_CLOSE: u8 = 5;
/// Payload: rows u16, cols u16 (big endian).
pub const RESIZE: u8 = 6;

const HEADER: usize = 5;
/// Frames larger than this are a protocol error (ours are at most one read buffer).
const MAX_FRAME: usize = 1 << 20;
/// A client that lets this much output pile up is too slow: it is dropped rather than
/// making the container block on a full pipe.
const MAX_PENDING: usize = 4 << 20;

/// Where the monitor of container `id` listens. Under /run (a tmpfs: gone after a
/// reboot, like the monitor) rather than in the store, because unix socket paths are
/// limited to 108 bytes.
pub fn socket_path(run_dir: &Path, id: &str) -> PathBuf {
    run_dir.join("attach").join(format!("{id}.sock"))
}

pub fn encode(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Splits complete frames off the front of `buf`.
pub struct FrameReader {
    buf: Vec<u8>,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader::new()
    }
}

impl FrameReader {
    pub fn new() -> FrameReader {
        FrameReader { buf: Vec::new() }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if any.
    pub fn next_frame(&mut self) -> io::Result<Option<(u8, Vec<u8>)>> {
        if self.buf.len() < HEADER {
            return Ok(None);
        }
        let len = u32::from_be_bytes(self.buf[1..5].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("attach frame of {len} bytes"),
            ));
        }
        if self.buf.len() < HEADER + len {
            return Ok(None);
        }
        let kind = self.buf[0];
        let payload = self.buf[HEADER..HEADER + len].to_vec();
        self.buf.drain(..HEADER + len);
        Ok(Some((kind, payload)))
    }
}

/// One attached client, as the monitor holds it: a non-blocking socket, output not
/// yet written to it, input not yet parsed.
pub struct Client {
    pub stream: UnixStream,
    pub pending: Vec<u8>,
    pub input: FrameReader,
    pub closed: bool,
}

impl Client {
    pub fn new(stream: UnixStream) -> io::Result<Client> {
        stream.set_nonblocking(true)?;
        Ok(Client {
            stream,
            pending: Vec::new(),
            input: FrameReader::new(),
            closed: false,
        })
    }

    /// Queues a frame and writes what the socket takes now.
    pub fn send(&mut self, kind: u8, payload: &[u8]) {
        if self.closed {
            return;
        }
        encode(kind, payload, &mut self.pending);
        if self.pending.len() > MAX_PENDING {
            self.closed = true;
            return;
        }
        self.flush();
    }

    /// Writes queued output until the socket would block.
    pub fn flush(&mut self) {
        while !self.pending.is_empty() && !self.closed {
            match self.stream.write(&self.pending) {
                Ok(0) => self.closed = true,
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.closed = true,
            }
        }
    }

    /// Reads what the client sent; returns its complete frames. EOF or an error marks
    /// the client closed (it detached).
    pub fn receive(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut buf = [0u8; 8192];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.closed = true;
                    break;
                }
                Ok(n) => self.input.push(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.closed = true;
                    break;
                }
            }
        }
        let mut frames = Vec::new();
        loop {
            match self.input.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(_) => {
                    self.closed = true;
                    break;
                }
            }
        }
        frames
    }

    /// Sends the exit code and gives the socket up to `timeout` to take it (the
    /// client is waiting for exactly this).
    pub fn finish(mut self, code: i32, timeout: std::time::Duration) {
        self.send(EXIT, code.to_string().as_bytes());
        let deadline = std::time::Instant::now() + timeout;
        while !self.pending.is_empty() && !self.closed {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            crate::tty::poll_one(&self.stream, rustix::event::PollFlags::OUT, Some(left));
            self.flush();
        }
    }
}

/// Parses a RESIZE payload.
pub fn decode_resize(p: &[u8]) -> Option<(u16, u16)> {
    if p.len() != 4 {
        return None;
    }
    Some((
        u16::from_be_bytes([p[0], p[1]]),
        u16::from_be_bytes([p[2], p[3]]),
    ))
}

pub fn encode_resize(rows: u16, cols: u16) -> [u8; 4] {
    let r = rows.to_be_bytes();
    let c = cols.to_be_bytes();
    [r[0], r[1], c[0], c[1]]
}

/// Detects a detach key sequence in a client's input. Bytes that could start the
/// sequence are held back until it is clear they do not complete it.
pub struct DetachKeys {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachKeys {
    pub fn new(keys: Vec<u8>) -> DetachKeys {
        DetachKeys { keys, matched: 0 }
    }

    /// Feeds input; returns the bytes to pass on, and whether the sequence completed
    /// (then the bytes before it are passed on and the rest is dropped).
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            // Not the sequence after all: release what was held, then look at this
            // byte afresh (it may start the sequence).
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_pieces() {
        let mut wire = Vec::new();
        encode(STDOUT, b"hello", &mut wire);
        encode(EXIT, b"3", &mut wire);
        let mut r = FrameReader::new();
        r.push(&wire[..3]);
        assert_eq!(r.next_frame().unwrap(), None);
        r.push(&wire[3..]);
        assert_eq!(r.next_frame().unwrap(), Some((STDOUT, b"hello".to_vec())));
        assert_eq!(r.next_frame().unwrap(), Some((EXIT, b"3".to_vec())));
        assert_eq!(r.next_frame().unwrap(), None);
        let mut bad = FrameReader::new();
        bad.push(&[1, 0xff, 0xff, 0xff, 0xff]);
        assert!(bad.next_frame().is_err());
    }

    #[test]
    fn resize_round_trip() {
        assert_eq!(decode_resize(&encode_resize(24, 80)), Some((24, 80)));
        assert_eq!(decode_resize(b"x"), None);
    }

    #[test]
    fn detach_keys_are_held_back_and_released() {
        let mut d = DetachKeys::new(vec![16, 17]);
        assert_eq!(d.feed(b"ab"), (b"ab".to_vec(), false));
        assert_eq!(d.feed(&[16]), (vec![], false));
        assert_eq!(d.feed(b"x"), (vec![16, b'x'], false));
        assert_eq!(d.feed(&[b'y', 16, 16, 17, b'z']), (vec![b'y', 16], true));
        let mut none = DetachKeys::new(vec![]);
        assert_eq!(none.feed(&[16, 17]), (vec![16, 17], false));
    }
}
