//! `coracle logs`: the json-file log the monitor writes, read back as docker's CLI
//! prints it.

use crate::common::*;
use std::io::Read;

/// The only container of the store (these tests make one per store where it matters).
fn only_container_dir(c: &Coracle) -> std::path::PathBuf {
    let ids = entries(&c.root().join("containers"));
    assert_eq!(ids.len(), 1, "{ids:?}");
    c.root().join("containers").join(&ids[0])
}

/// `2026-11-23T10:00:00.123456789Z ` (docker's RFC3339NanoFixed and a space).
fn is_fixed_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 31
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            29 => *c == b'Z',
            30 => *c == b' ',
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn logs_print_each_stream_to_its_own() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let out = c.run([
        "run",
        "--name",
        "streams",
        "box",
        "sh",
        "-c",
        "echo out; echo err >&2; printf 'no newline'",
    ]);
    out.assert_success();
    let logs = c.run(["logs", "streams"]);
    logs.assert_success();
    assert_eq!(logs.stdout, "out\nno newline");
    assert_eq!(logs.stderr, "err\n");

    // The file is docker's json-file format.
    let dir = only_container_dir(&c);
    let id = dir.file_name().unwrap().to_str().unwrap().to_string();
    let text = std::fs::read_to_string(dir.join(format!("{id}-json.log"))).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["log"], "out\n");
    assert_eq!(first["stream"], "stdout");
    assert!(
        text.starts_with(r#"{"log":"out\n","stream":"stdout","time":""#),
        "{text}"
    );

    // By id prefix too, and docker's error for an unknown container.
    c.run(["logs", &id[..12]]).assert_success();
    let missing = c.run(["logs", "nosuch"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("No such container: nosuch"),
        "{}",
        missing.stderr
    );
}

#[test]
fn tail_timestamps_and_details() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run([
        "run",
        "--name",
        "tailed",
        "box",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo $i; done",
    ])
    .assert_success();
    let tail = |n: &str| {
        let out = c.run(["logs", "--tail", n, "tailed"]);
        out.assert_success();
        out.stdout
    };
    assert_eq!(tail("2"), "4\n5\n");
    assert_eq!(tail("0"), "");
    assert_eq!(tail("all"), "1\n2\n3\n4\n5\n");
    assert_eq!(tail("100"), "1\n2\n3\n4\n5\n");
    let out = c.run(["logs", "-n", "1", "tailed"]);
    assert_eq!(out.stdout, "5\n");

    let out = c.run(["logs", "-t", "tailed"]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 5);
    for (i, l) in lines.iter().enumerate() {
        let (stamp, rest) = l.split_at(31);
        assert!(is_fixed_timestamp(stamp), "{l:?}");
        assert_eq!(rest, (i + 1).to_string());
    }
    // --details: the attributes (none without --log-opt labels/env) and a space.
    let out = c.run(["logs", "--details", "--tail", "1", "tailed"]);
    assert_eq!(out.stdout, " 5\n");
}

#[test]
fn since_and_until_take_dockers_values() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run(["run", "--name", "since", "box", "echo", "hello"])
        .assert_success();
    let logs = |flag: &str, v: &str| c.run(["logs", flag, v, "since"]);
    let ok = |flag: &str, v: &str| {
        let out = logs(flag, v);
        out.assert_success();
        out.stdout
    };
    // A negative duration is in the future: nothing was logged after it.
    assert_eq!(ok("--since", "-1h"), "");
    assert_eq!(ok("--since", "1h"), "hello\n");
    assert_eq!(ok("--since", "2000-01-01T00:00:00Z"), "hello\n");
    assert_eq!(ok("--since", "2000-01-01"), "hello\n");
    assert_eq!(ok("--since", "946684800.5"), "hello\n");
    assert_eq!(ok("--since", "4102444800"), "", "2100-01-01");
    assert_eq!(ok("--until", "1h"), "");
    assert_eq!(ok("--until", "-1m"), "hello\n");
    assert_eq!(ok("--until", "0"), "hello\n", "0: no limit");

    let bad = logs("--since", "yesterday");
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains(
            r#"invalid value for "since": failed to parse value as time or duration: "yesterday""#
        ),
        "{}",
        bad.stderr
    );
    let bad = logs("--until", "2024-13-01");
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains(
            r#"invalid value for "until": parsing time "2024-13-01": month out of range"#
        ),
        "{}",
        bad.stderr
    );
}

#[test]
fn rotation_keeps_max_file_files_of_max_size() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run([
        "run",
        "--name",
        "rotor",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "box",
        "sh",
        "-c",
        "i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done",
    ])
    .assert_success();
    let dir = only_container_dir(&c);
    let logs: Vec<String> = entries(&dir)
        .into_iter()
        .filter(|e| e.contains("-json.log"))
        .collect();
    assert!(!logs.is_empty() && logs.len() <= 2, "{logs:?}");
    for l in &logs {
        let size = std::fs::metadata(dir.join(l)).unwrap().len();
        assert!(size <= 1024, "{l} is {size} bytes");
    }
    let out = c.run(["logs", "rotor"]);
    out.assert_success();
    let numbers: Vec<usize> = out
        .stdout
        .lines()
        .map(|l| l.strip_prefix("line ").unwrap().parse().unwrap())
        .collect();
    assert_eq!(*numbers.last().unwrap(), 199);
    assert_eq!(numbers, (numbers[0]..200).collect::<Vec<_>>());
    assert!(
        numbers.len() < 40,
        "rotation must have dropped the oldest lines"
    );
}

#[test]
fn follow_prints_until_the_container_exits() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let out = c.run([
        "run",
        "-d",
        "--name",
        "follower",
        "box",
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.3; done",
    ]);
    out.assert_success();
    let stdout = follow_to_end(&c, "follower");
    assert_eq!(stdout, "1\n2\n3\n");
    // Once it has stopped, -f prints what there is and returns at once.
    let out = c.run(["logs", "-f", "follower"]);
    assert_eq!(out.stdout, "1\n2\n3\n");
}

#[test]
fn a_tty_container_logs_one_stream() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run([
        "run",
        "-d",
        "-t",
        "--name",
        "tt",
        "box",
        "sh",
        "-c",
        "echo out; echo err >&2",
    ])
    .assert_success();
    c.run(["wait", "tt"]).assert_success();
    let out = c.run(["logs", "tt"]);
    out.assert_success();
    assert_eq!(out.stdout, "out\r\nerr\r\n");
    assert_eq!(out.stderr, "");
}

#[test]
fn no_logs_without_a_log_driver_or_before_the_first_start() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run([
        "run",
        "--name",
        "nolog",
        "--log-driver",
        "none",
        "box",
        "echo",
        "hi",
    ])
    .assert_success();
    let out = c.run(["logs", "nolog"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("configured logging driver does not support reading"),
        "{}",
        out.stderr
    );
    c.run(["create", "--name", "created", "box", "echo", "hi"])
        .assert_success();
    let out = c.run(["logs", "created"]);
    out.assert_success();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
    let out = c.run(["logs", "-f", "created"]);
    out.assert_success();
}

/// Reads `logs -f NAME` to its end: it returns only once `logs -f` has ended.
fn follow_to_end(c: &Coracle, name: &str) -> String {
    let mut child = c
        .command(["logs", "-f", name])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(child.wait().unwrap().success());
    stdout
}

#[test]
fn follow_goes_on_across_restarts_and_rotations() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run([
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "on-failure:2",
        "box",
        "sh",
        "-c",
        "echo run; sleep 0.3; exit 1",
    ])
    .assert_success();
    assert_eq!(follow_to_end(&c, "again"), "run\nrun\nrun\n");

    c.run([
        "run",
        "-d",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=5",
        "box",
        "sh",
        "-c",
        "i=0; while [ $i -lt 100 ]; do echo line $i; i=$((i+1)); sleep 0.01; done",
    ])
    .assert_success();
    let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
    assert_eq!(follow_to_end(&c, "chatty"), expected);
}
