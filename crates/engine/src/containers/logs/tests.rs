//! The reader against files the monitor's writer produces.

use super::*;
use coracle_model::LogOptions;
use coracle_runtime::monitor::logfile::{LogWriter, Stream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

fn at(secs: u64, nanos: u32) -> SystemTime {
    UNIX_EPOCH + Duration::new(secs, nanos)
}

fn rotating(max_size: Option<u64>, max_file: u32) -> LogOptions {
    LogOptions {
        enabled: true,
        max_size,
        max_file,
    }
}

struct Read {
    out: String,
    err: String,
}

fn read_with(
    path: &Path,
    max_file: u32,
    opts: &LogsOptions,
    tty: bool,
    active: &mut dyn FnMut() -> Result<bool, EngineError>,
) -> Read {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut o = Output::new(&mut out, &mut err, tty, opts);
    read_logs(path, max_file, opts, &mut o, active).unwrap();
    Read {
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

fn read(path: &Path, max_file: u32, opts: &LogsOptions) -> Read {
    read_with(path, max_file, opts, false, &mut || Ok(false))
}

/// `n` lines `line I` on stdout, one second apart from t=1000.
fn numbered_lines(path: &Path, log: &LogOptions, n: usize) {
    let mut w = LogWriter::open(path, log).unwrap();
    for i in 0..n {
        w.write(
            Stream::Stdout,
            format!("line {i}\n").as_bytes(),
            at(1000 + i as u64, 0),
        );
    }
}

fn expected(range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("line {i}\n")).collect()
}

#[test]
fn what_the_writer_writes_reads_back_on_its_streams() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    let mut w = LogWriter::open(&path, &LogOptions::default()).unwrap();
    let t = at(1_795_428_000, 120_000_000);
    w.write(Stream::Stdout, b"out <a & b> \"q\" \\ \t\n", t);
    w.write(Stream::Stderr, b"err \xe2\x82 bad\nno newline", t);
    w.write(Stream::Stdout, "ünï 🚀\n".as_bytes(), t);
    w.flush(t);
    drop(w);
    let r = read(&path, 1, &LogsOptions::default());
    assert_eq!(r.out, "out <a & b> \"q\" \\ \t\nünï 🚀\n");
    // Invalid UTF-8 comes back as one U+FFFD per bad byte; the held rest without \n.
    assert_eq!(r.err, "err \u{fffd}\u{fffd} bad\nno newline");

    let r = read(
        &path,
        1,
        &LogsOptions {
            timestamps: true,
            details: true,
            ..Default::default()
        },
    );
    // docker: timestamp with 9 digits, a space, then --details' (empty) attributes
    // and a space.
    assert_eq!(
        r.out,
        "2026-11-23T10:00:00.120000000Z  out <a & b> \"q\" \\ \t\n\
         2026-11-23T10:00:00.120000000Z  ünï 🚀\n"
    );
    let r = read(
        &path,
        1,
        &LogsOptions {
            timestamps: true,
            ..Default::default()
        },
    );
    assert!(
        r.err.starts_with("2026-11-23T10:00:00.120000000Z err "),
        "{}",
        r.err
    );

    // A -t container's output is one stream: everything goes to stdout.
    let r = read_with(&path, 1, &LogsOptions::default(), true, &mut || Ok(false));
    assert_eq!(r.err, "");
    assert!(r.out.contains("err ") && r.out.contains("ünï"));
}

#[test]
fn details_show_docker_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    std::fs::write(
        &path,
        concat!(
            r#"{"log":"hi\n","stream":"stdout","attrs":{"tag":"a b","env":"x=1"},"time":"2026-11-23T10:00:00Z"}"#,
            "\n"
        ),
    )
    .unwrap();
    let r = read(
        &path,
        1,
        &LogsOptions {
            details: true,
            ..Default::default()
        },
    );
    assert_eq!(r.out, "env=x%3D1,tag=a+b hi\n");
}

#[test]
fn tail_counts_back_across_rotated_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    numbered_lines(&path, &rotating(Some(1024), 3), 100);
    let all = read(&path, 3, &LogsOptions::default()).out;
    let first: usize = all["line ".len()..all.find('\n').unwrap()].parse().unwrap();
    assert!(
        first > 50,
        "rotation dropped the oldest entries: first is {first}"
    );
    assert_eq!(all, expected(first..100));
    let tail = |n| {
        read(
            &path,
            3,
            &LogsOptions {
                tail: Some(n),
                ..Default::default()
            },
        )
        .out
    };
    assert_eq!(tail(0), "");
    assert_eq!(tail(1), expected(99..100));
    assert_eq!(tail(5), expected(95..100));
    // More than the current file holds (14 entries of ~70 bytes fit in 1 KiB).
    assert_eq!(tail(30), expected(70..100));
    assert_eq!(tail(1000), all);
}

#[test]
fn since_and_until_filter_by_entry_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    numbered_lines(&path, &LogOptions::default(), 10);
    let window = |since: Option<SystemTime>, until: Option<SystemTime>, tail: Option<usize>| {
        read(
            &path,
            1,
            &LogsOptions {
                since,
                until,
                tail,
                ..Default::default()
            },
        )
        .out
    };
    assert_eq!(window(Some(at(1005, 0)), None, None), expected(5..10));
    assert_eq!(window(Some(at(1004, 1)), None, None), expected(5..10));
    assert_eq!(window(None, Some(at(1003, 0)), None), expected(0..4));
    assert_eq!(
        window(Some(at(1002, 0)), Some(at(1006, 0)), None),
        expected(2..7)
    );
    assert_eq!(window(Some(at(2000, 0)), None, None), "");
    // The tail is taken first, then filtered (moby's order).
    assert_eq!(window(Some(at(1002, 0)), None, Some(3)), expected(7..10));
    assert_eq!(window(None, Some(at(1005, 0)), Some(3)), "");
}

#[test]
fn missing_log_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    let r = read(&path, 2, &LogsOptions::default());
    assert_eq!((r.out.as_str(), r.err.as_str()), ("", ""));
    let follow = LogsOptions {
        follow: true,
        ..Default::default()
    };
    let r = read_with(&path, 2, &follow, false, &mut || Ok(false));
    assert_eq!(r.out, "");
}

#[test]
fn torn_and_unterminated_lines_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    std::fs::write(
        &path,
        concat!(
            r#"{"log":"a\n","stream":"stdout","time":"2026-11-23T10:00:00Z"}"#,
            "\n",
            r#"{"log":"torn"#,
            "\n",
            r#"{"log":"b\n","stream":"stdout","time":"2026-11-23T10:00:01Z"}"#,
            "\n",
            r#"{"log":"being written"#,
        ),
    )
    .unwrap();
    let r = read(&path, 1, &LogsOptions::default());
    assert_eq!(r.out, "a\nb\n");
    let r = read(
        &path,
        1,
        &LogsOptions {
            tail: Some(1),
            ..Default::default()
        },
    );
    assert_eq!(r.out, "b\n");
}

/// A writer thread logs while rotating often; the follower must print every entry
/// once, in order, and end after the writer is done.
#[test]
fn follow_survives_rotation_and_ends_when_inactive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    let log = rotating(Some(1024), 8);
    let mut w = LogWriter::open(&path, &log).unwrap();
    w.write(Stream::Stdout, b"line 0\n", SystemTime::now());
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let done = done.clone();
        std::thread::spawn(move || {
            for i in 1..300 {
                let stream = if i % 7 == 0 {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                };
                w.write(stream, format!("line {i}\n").as_bytes(), SystemTime::now());
                // ~85 ms per file, 8 files: the reader may lag ~600 ms without losing any.
                std::thread::sleep(Duration::from_millis(6));
            }
            // Partial, then flushed at exit.
            w.write(Stream::Stdout, b"last", SystemTime::now());
            w.flush(SystemTime::now());
            done.store(true, Ordering::SeqCst);
        })
    };
    let follow = LogsOptions {
        follow: true,
        ..Default::default()
    };
    let r = read_with(&path, 8, &follow, false, &mut || {
        Ok(!done.load(Ordering::SeqCst))
    });
    writer.join().unwrap();
    let out: String = (0..300)
        .filter(|i| i % 7 != 0 || *i == 0)
        .map(|i| format!("line {i}\n"))
        .chain(["last".to_string()])
        .collect();
    let err: String = (1..300)
        .filter(|i| i % 7 == 0)
        .map(|i| format!("line {i}\n"))
        .collect();
    assert_eq!(r.out, out);
    assert_eq!(r.err, err);
    assert!(
        numbered(&path, 7).exists(),
        "the test must rotate through every file"
    );
}

#[test]
fn follow_waits_for_the_log_to_appear_and_stops_past_until() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    let writer = {
        let path = path.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(250));
            let mut w = LogWriter::open(&path, &LogOptions::default()).unwrap();
            w.write(Stream::Stdout, b"hello\n", SystemTime::now());
        })
    };
    let until = SystemTime::now() + Duration::from_millis(500);
    let follow = LogsOptions {
        follow: true,
        until: Some(until),
        ..Default::default()
    };
    // Still "running" throughout: only --until ends the follow.
    let r = read_with(&path, 1, &follow, false, &mut || Ok(true));
    writer.join().unwrap();
    assert_eq!(r.out, "hello\n");
    assert!(SystemTime::now() > until + UNTIL_GRACE);
}

#[test]
fn follow_with_tail_zero_prints_only_new_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c-json.log");
    numbered_lines(&path, &LogOptions::default(), 3);
    let mut w = LogWriter::open(&path, &LogOptions::default()).unwrap();
    let follow = LogsOptions {
        follow: true,
        tail: Some(0),
        ..Default::default()
    };
    let mut polls = 0;
    let r = read_with(&path, 1, &follow, false, &mut || {
        polls += 1;
        if polls == 1 {
            w.write(Stream::Stdout, b"new\n", SystemTime::now());
        }
        Ok(polls < 3)
    });
    assert_eq!(r.out, "new\n");
}
