//! Binary data piped into an attached container without a tty arrives intact: the
//! detach keys (ctrl-p ctrl-q = 0x10 0x11) apply only with a tty, as docker's.

use crate::common::*;
use std::time::Duration;

/// 5 MB of pseudo-random bytes (fixed seed) with the default detach sequence, and
/// pieces of it, spread through.
fn payload() -> Vec<u8> {
    let mut data = vec![0u8; 5 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    for (n, i) in (0..data.len() - 3).step_by(4099).enumerate() {
        match n % 3 {
            0 => data[i..i + 2].copy_from_slice(&[0x10, 0x11]),
            1 => data[i..i + 3].copy_from_slice(&[0x10, 0x10, 0x11]),
            _ => data[i] = 0x10,
        }
    }
    data
}

/// `sha256sum` of `data` on the host, as the container's `sha256sum` prints it.
fn host_sha256(data: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run the host's sha256sum");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap().to_string()
}

#[track_caller]
fn assert_digest(out: &Output, want: &str, what: &str) {
    assert_eq!(out.code, 0, "{what}: {out:?}");
    let got = out.stdout.split_whitespace().next().unwrap_or_default();
    assert_eq!(
        got, want,
        "{what}: the container read different bytes than were piped in ({out:?})"
    );
}

#[test]
fn binary_stdin_reaches_run_start_and_attach_without_a_tty() {
    if skip_unless_root() {
        return;
    }
    let data = payload();
    assert!(data.windows(2).filter(|w| w == &[0x10, 0x11]).count() > 800);
    let want = host_sha256(&data);
    let (_reg, c) = with_busybox();

    let out = c.run_stdin(["run", "-i", "--rm", "box", "sha256sum"], &data);
    assert_digest(&out, &want, "run -i");

    c.run(["create", "-i", "--name", "created", "box", "sha256sum"])
        .assert_success();
    let out = c.run_stdin(["start", "-ai", "created"], &data);
    assert_digest(&out, &want, "start -ai");

    // A running `-i` container: attach passes its stdin on.
    c.run(["run", "-d", "-i", "--name", "running", "box", "sha256sum"])
        .assert_success();
    let out = c.run_stdin(["attach", "running"], &data);
    assert_digest(&out, &want, "attach");
    wait_until(
        "the attached container to exit",
        Duration::from_secs(20),
        || {
            c.run(["inspect", "-f", "{{.State.Status}}", "running"])
                .stdout
                .trim()
                == "exited"
        },
    );

    // The detach sequence alone, without a tty, is data too.
    let out = c.run_stdin(
        ["run", "-i", "--rm", "box", "od", "-An", "-tx1"],
        &[b'a', 0x10, 0x11, b'b'],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["61", "10", "11", "62"]
    );
}
