use super::*;
use std::time::Duration;

/// A scratch directory removed at drop (the runtime crate has no tempfile dependency).
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "coracle-logfile-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn log(&self) -> PathBuf {
        self.0.join("c-json.log")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn at(secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

fn escaped(s: &[u8]) -> String {
    let mut out = Vec::new();
    escape_into(&mut out, s);
    String::from_utf8(out).unwrap()
}

fn stamp(t: SystemTime) -> String {
    let mut out = Vec::new();
    format_rfc3339_nano(&mut out, t);
    String::from_utf8(out).unwrap()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn opts(max_size: Option<u64>, max_file: u32) -> LogOptions {
    LogOptions {
        enabled: true,
        max_size,
        max_file,
    }
}

#[test]
fn escapes_like_moby() {
    // moby's jsonlogbytes_test.go vectors, and the cases its encoder handles by hand.
    assert_eq!(
        escaped(br#""A log line with \""#),
        r#"\"A log line with \\\""#
    );
    assert_eq!(
        escaped(b"A log line with & < >"),
        r"A log line with \u0026 \u003c \u003e"
    );
    assert_eq!(
        escaped(b"cr \r tab \t nul \0 esc \x1b"),
        r"cr \r tab \u0009 nul \u0000 esc \u001b"
    );
    assert_eq!(escaped("utf8 : 🚀 ψ ω β".as_bytes()), "utf8 : 🚀 ψ ω β");
    assert_eq!(escaped("\u{2028} \u{2029}".as_bytes()), r"\u2028 \u2029");
    assert_eq!(escaped(&[0x7f]), "\x7f");
    assert_eq!(escaped(&[0xaf]), r"\ufffd");
    // Go replaces each byte of a broken sequence; Rust's lossy decoding would give one.
    assert_eq!(escaped(&[b'a', 0xe2, 0x82, b'b']), r"a\ufffd\ufffdb");
    assert_eq!(
        escaped(&[0xed, 0xa0, 0x80]),
        r"\ufffd\ufffd\ufffd",
        "surrogate"
    );
    assert_eq!(
        escaped(&[0xf0, 0x9f, 0x9a]),
        r"\ufffd\ufffd\ufffd",
        "truncated at end"
    );
}

#[test]
fn timestamps_are_go_rfc3339_nano() {
    assert_eq!(
        stamp(at(1_432_897_262, 3)),
        "2015-05-29T11:01:02.000000003Z"
    );
    assert_eq!(
        stamp(at(1_795_428_000, 123_456_789)),
        "2026-11-23T10:00:00.123456789Z"
    );
    assert_eq!(
        stamp(at(1_795_428_000, 120_000_000)),
        "2026-11-23T10:00:00.12Z"
    );
    assert_eq!(stamp(at(1_795_428_000, 0)), "2026-11-23T10:00:00Z");
    assert_eq!(
        stamp(at(1_709_251_199, 500)),
        "2024-02-29T23:59:59.0000005Z"
    );
    assert_eq!(stamp(at(951_868_800, 0)), "2000-03-01T00:00:00Z");
    assert_eq!(stamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
}

#[test]
fn complete_lines_become_docker_entries() {
    let s = Scratch::new("lines");
    let mut w = LogWriter::open(&s.log(), &opts(None, 1)).unwrap();
    let t = at(1_795_428_000, 123_456_789);
    w.write(Stream::Stdout, b"out <1>\nerr", t);
    w.write(Stream::Stderr, b"oops\n", t);
    assert_eq!(
        std::fs::read_to_string(s.log()).unwrap(),
        concat!(
            r#"{"log":"out \u003c1\u003e\n","stream":"stdout","time":"2026-11-23T10:00:00.123456789Z"}"#,
            "\n",
            r#"{"log":"oops\n","stream":"stderr","time":"2026-11-23T10:00:00.123456789Z"}"#,
            "\n"
        )
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(s.log()).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn partial_lines_are_held_per_stream() {
    let s = Scratch::new("partial");
    let mut w = LogWriter::open(&s.log(), &opts(None, 1)).unwrap();
    w.write(Stream::Stdout, b"he", at(10, 0));
    w.write(Stream::Stderr, b"e1\n", at(11, 0));
    w.write(Stream::Stdout, b"llo\nwor", at(12, 0));
    w.write(Stream::Stderr, b"tail", at(13, 0));
    w.flush(at(14, 0));
    assert_eq!(
        lines(&s.log()),
        [
            r#"{"log":"e1\n","stream":"stderr","time":"1970-01-01T00:00:11Z"}"#,
            // A line is stamped when its newline arrives (docker's copier).
            r#"{"log":"hello\n","stream":"stdout","time":"1970-01-01T00:00:12Z"}"#,
            // At exit the rest is written without a newline.
            r#"{"log":"wor","stream":"stdout","time":"1970-01-01T00:00:14Z"}"#,
            r#"{"log":"tail","stream":"stderr","time":"1970-01-01T00:00:14Z"}"#,
        ]
    );
    // Nothing held: flushing again writes nothing.
    w.flush(at(15, 0));
    assert_eq!(lines(&s.log()).len(), 4);
}

#[test]
fn long_lines_are_split_at_16k_with_the_first_piece_time() {
    let s = Scratch::new("long");
    let mut w = LogWriter::open(&s.log(), &opts(None, 1)).unwrap();
    // Fits: 16383 bytes + newline is one complete entry.
    let mut fits = vec![b'a'; PARTIAL_SIZE - 1];
    fits.push(b'\n');
    w.write(Stream::Stdout, &fits, at(1, 0));
    // 2 * 16384 + 10 bytes, fed in odd chunks: two partial pieces, then the rest.
    let long = vec![b'b'; 2 * PARTIAL_SIZE + 10];
    for (i, chunk) in long.chunks(5000).enumerate() {
        w.write(Stream::Stdout, chunk, at(2 + i as u64, 0));
    }
    w.write(Stream::Stdout, b"\n", at(20, 0));
    let l = lines(&s.log());
    assert_eq!(l.len(), 4);
    let log = |i: usize| -> (String, String) {
        let v: serde_json::Value = serde_json::from_str(&l[i]).unwrap();
        (
            v["log"].as_str().unwrap().to_string(),
            v["time"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(log(0).0.len(), PARTIAL_SIZE);
    assert!(log(0).0.ends_with("a\n"));
    assert_eq!(log(1).0, "b".repeat(PARTIAL_SIZE), "partial: no newline");
    assert_eq!(log(2).0, "b".repeat(PARTIAL_SIZE));
    assert_eq!(log(3).0, format!("{}\n", "b".repeat(10)));
    // Every piece carries the time the line started arriving (the chunk that filled
    // the first piece, at t=5).
    for i in 1..4 {
        assert_eq!(log(i).1, "1970-01-01T00:00:05Z", "piece {i}");
    }
    // Exactly 16 KiB then a newline: a full piece, then an empty complete line.
    w.write(Stream::Stderr, &vec![b'c'; PARTIAL_SIZE], at(30, 0));
    w.write(Stream::Stderr, b"\nnext\n", at(31, 0));
    let l = lines(&s.log());
    assert!(
        l[5].starts_with(r#"{"log":"\n","stream":"stderr","time":"1970-01-01T00:00:30Z"}"#),
        "{}",
        l[5]
    );
    assert!(l[6].starts_with(r#"{"log":"next\n","stream":"stderr","time":"1970-01-01T00:00:31Z"}"#));
}

#[test]
fn reopening_appends() {
    let s = Scratch::new("append");
    let mut w = LogWriter::open(&s.log(), &opts(None, 1)).unwrap();
    w.write(Stream::Stdout, b"first run\n", at(1, 0));
    drop(w);
    let mut w = LogWriter::open(&s.log(), &opts(None, 1)).unwrap();
    w.write(Stream::Stdout, b"second run\n", at(2, 0));
    let l = lines(&s.log());
    assert_eq!(l.len(), 2);
    assert!(l[0].contains("first run") && l[1].contains("second run"));
}

/// Writes `n` numbered lines and returns every file's lines, oldest file first.
fn rotate_run(s: &Scratch, max_size: u64, max_file: u32, n: usize) -> Vec<Vec<String>> {
    let mut w = LogWriter::open(&s.log(), &opts(Some(max_size), max_file)).unwrap();
    for i in 0..n {
        w.write(
            Stream::Stdout,
            format!("line {i}\n").as_bytes(),
            at(1_795_428_000 + i as u64, 1),
        );
    }
    let mut files = Vec::new();
    for k in (1..max_file + 2).rev() {
        let p = PathBuf::from(format!("{}.{k}", s.log().display()));
        if k >= max_file {
            assert!(
                !p.exists(),
                "{} must not exist with max-file {max_file}",
                p.display()
            );
        } else {
            files.push(p);
        }
    }
    files.push(s.log());
    files
        .iter()
        .map(|p| {
            let size = std::fs::metadata(p).unwrap().len();
            assert!(size <= max_size, "{} is {size} bytes", p.display());
            lines(p)
        })
        .collect()
}

fn numbers(lines: &[String]) -> Vec<usize> {
    lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let log = v["log"].as_str().unwrap();
            log.trim_end()
                .strip_prefix("line ")
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

#[test]
fn rotation_keeps_max_file_files_within_max_size() {
    // Each entry is ~70 bytes: 1 KiB holds 14 of them.
    for max_file in [2, 3, 5] {
        let s = Scratch::new("rotate");
        let files = rotate_run(&s, 1024, max_file, 200);
        assert_eq!(files.len(), max_file as usize);
        let all: Vec<usize> = files.iter().flat_map(|f| numbers(f)).collect();
        // Consecutive, ending with the last line written.
        assert_eq!(*all.last().unwrap(), 199);
        let first = all[0];
        assert_eq!(all, (first..200).collect::<Vec<_>>());
        // A rotated file was only left when the next entry would not fit.
        let entry_len = std::fs::read_to_string(s.log())
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .len()
            + 1;
        for (k, f) in files[..files.len() - 1].iter().enumerate() {
            let bytes: usize = f.iter().map(|l| l.len() + 1).sum();
            assert!(
                bytes + entry_len > 1024,
                "file {k} rotated early at {bytes} bytes"
            );
        }
    }
}

#[test]
fn one_file_is_recreated_in_place() {
    let s = Scratch::new("one");
    let files = rotate_run(&s, 1024, 1, 200);
    assert_eq!(files.len(), 1);
    let n = numbers(&files[0]);
    assert_eq!(*n.last().unwrap(), 199);
    assert!(n.len() < 20, "{n:?}");
}

#[test]
fn an_entry_larger_than_max_size_gets_a_file_of_its_own() {
    let s = Scratch::new("big");
    let mut w = LogWriter::open(&s.log(), &opts(Some(100), 3)).unwrap();
    w.write(Stream::Stdout, b"small\n", at(1, 0));
    w.write(Stream::Stdout, &[b'x'; 300], at(2, 0));
    w.write(Stream::Stdout, b"\nsmall again\n", at(3, 0));
    let log1 = PathBuf::from(format!("{}.1", s.log().display()));
    let log2 = PathBuf::from(format!("{}.2", s.log().display()));
    assert!(lines(&log2)[0].contains("\"small\\n\""));
    assert_eq!(lines(&log1).len(), 1);
    assert!(lines(&log1)[0].contains(&"x".repeat(300)));
    assert!(lines(&s.log())[0].contains("small again"));
}

#[test]
fn entries_the_disk_refuses_are_dropped_counted_and_reported_once() {
    let s = Scratch::new("full");
    let mut w = LogWriter::open(&s.log(), &opts(None, 1)).unwrap();
    w.write(Stream::Stdout, b"before\n", at(1, 0));
    // /dev/full refuses every write with ENOSPC.
    let real = std::mem::replace(
        &mut w.file,
        OpenOptions::new().write(true).open("/dev/full").unwrap(),
    );
    w.write(Stream::Stdout, b"lost 1\nlost 2\n", at(2, 0));
    w.write(Stream::Stderr, b"lost 3\npartial", at(3, 0));
    w.flush(at(4, 0));
    assert_eq!(w.dropped(), 4);
    w.file = real;
    w.write(Stream::Stdout, b"after 1\n", at(5, 0));
    w.write(Stream::Stdout, b"after 2\n", at(6, 0));
    assert_eq!(w.dropped(), 0);
    assert_eq!(
        lines(&s.log()),
        [
            r#"{"log":"before\n","stream":"stdout","time":"1970-01-01T00:00:01Z"}"#,
            r#"{"log":"coracle: 4 log lines dropped: no space left on device\n","stream":"stderr","time":"1970-01-01T00:00:05Z"}"#,
            r#"{"log":"after 1\n","stream":"stdout","time":"1970-01-01T00:00:05Z"}"#,
            r#"{"log":"after 2\n","stream":"stdout","time":"1970-01-01T00:00:06Z"}"#,
        ]
    );
}

#[test]
fn a_torn_entry_is_completed_before_anything_else() {
    let s = Scratch::new("torn");
    let mut w = LogWriter::open(&s.log(), &opts(None, 1)).unwrap();
    // As if the disk had taken only the first 10 bytes of an entry, then refused one.
    let mut entry = Vec::new();
    encode_entry(&mut entry, Stream::Stdout, b"torn", true, at(1, 0));
    w.file.write_all(&entry[..10]).unwrap();
    w.size = 10;
    w.tail = entry[10..].to_vec();
    w.failure = Some(io::Error::from_raw_os_error(libc::ENOSPC));
    w.dropped = 1;
    w.write(Stream::Stdout, b"next\n", at(2, 0));
    let l = lines(&s.log());
    assert_eq!(l.len(), 3, "{l:?}");
    assert!(l[0].contains(r#""log":"torn\n""#), "{}", l[0]);
    assert!(l[1].contains("coracle: 1 log line dropped: no space left on device"));
    assert!(l[2].contains(r#""log":"next\n""#));
    assert_eq!(w.size, std::fs::metadata(s.log()).unwrap().len());
}
