//! `top`, `stats` and `cp` through the real binary, against real running and stopped
//! containers.

use crate::common::*;
use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `run -d ARGS`, the container's full id.
fn detached(c: &Coracle, args: &[&str]) -> String {
    let mut all = vec!["run", "-d"];
    all.extend_from_slice(args);
    let out = c.run(all);
    out.assert_success();
    out.stdout.trim().to_string()
}

fn no_mounts_left(c: &Coracle, running: usize) {
    assert_eq!(
        mounts_under(&c.root()).len(),
        running,
        "mounts under the store: {:?}",
        mounts_under(&c.root())
    );
}

// ---------------------------------------------------------------- top

#[test]
fn top_lists_the_containers_processes_only() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let id = detached(
        &c,
        &[
            "--name",
            "tp",
            "box",
            "sh",
            "-c",
            "sleep 1000 & sleep 2000 & wait",
        ],
    );
    let out = c.run(["top", "tp"]);
    out.assert_success();
    let mut lines = out.stdout.lines();
    let header = lines.next().unwrap();
    // docker's layout: ps -ef's titles in columns at least 20 wide.
    assert!(
        header.starts_with(&format!("UID{}PID", " ".repeat(17))),
        "{header:?}"
    );
    assert!(header.ends_with("CMD"), "{header:?}");
    let rows: Vec<&str> = lines.collect();
    assert!(
        rows.iter().any(|r| r.ends_with("sleep 1000")),
        "{}",
        out.stdout
    );
    assert!(
        rows.iter().any(|r| r.ends_with("sleep 2000")),
        "{}",
        out.stdout
    );
    assert!(
        rows.iter()
            .any(|r| r.ends_with("sh -c sleep 1000 & sleep 2000 & wait")),
        "{}",
        out.stdout
    );
    assert_eq!(
        rows.len(),
        3,
        "only the container's processes: {}",
        out.stdout
    );
    let me = std::process::id().to_string();
    assert!(!rows
        .iter()
        .any(|r| r.split_whitespace().nth(1) == Some(me.as_str())));

    // ps options pass through; the PID column is what rows are kept by.
    let out = c.run(["top", "tp", "-o", "pid,comm"]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("PID") && lines[0].ends_with("COMMAND"),
        "{}",
        out.stdout
    );
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert!(
        lines.iter().filter(|l| l.ends_with("sleep")).count() == 2,
        "{}",
        out.stdout
    );
    let out = c.run(["top", "tp", "aux"]);
    out.assert_success();
    assert!(out.stdout.starts_with("USER"), "{}", out.stdout);
    // A forest listing refuses -q: filtered here instead.
    let out = c.run(["top", "tp", "-ef", "f"]);
    out.assert_success();
    assert_eq!(out.stdout.lines().count(), 4, "{}", out.stdout);
    let out = c.run(["top", "tp", "-o", "user=PID"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("specifying \"user=PID\" is not allowed"),
        "{}",
        out.stderr
    );

    c.run(["rm", "-f", "tp"]).assert_success();
    let out = c.run(["top", "tp"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("No such container: tp"),
        "{}",
        out.stderr
    );
    // Stopped: docker's words, with the full id.
    c.run(["run", "--name", "done", "box", "true"])
        .assert_success();
    let out = c.run(["top", "done"]);
    assert_eq!(out.code, 1);
    let done = c.run(["ps", "-aq", "--no-trunc"]).stdout.trim().to_string();
    assert_eq!(
        out.stderr.trim(),
        format!("Error: container {done} is not running")
    );
    assert_ne!(done, id);
}

// ---------------------------------------------------------------- stats

const STATS_HEADER: &str =
    "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS";

#[test]
fn stats_no_stream_shows_limits_pids_and_zeros_for_stopped() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    // --network none: no interface, so no traffic (the bridge's counters see IPv6
    // neighbour discovery).
    let id = detached(
        &c,
        &[
            "--name",
            "lim",
            "--network",
            "none",
            "--memory",
            "64m",
            "box",
            "sleep",
            "1000",
        ],
    );
    let out = c.run(["stats", "--no-stream"]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], STATS_HEADER, "{}", out.stdout);
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    let cells: Vec<&str> = lines[1]
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(cells[0], &id[..12], "{cells:?}");
    assert_eq!(cells[1], "lim");
    assert!(cells[2].ends_with('%'), "{cells:?}");
    assert!(cells[3].ends_with(" / 64MiB"), "{cells:?}");
    assert!(!cells[3].starts_with("0B"), "memory is used: {cells:?}");
    assert_eq!(cells[5], "0B / 0B", "no network traffic: {cells:?}");
    assert_eq!(*cells.last().unwrap(), "1", "PIDS: {cells:?}");

    // JSON with docker's keys; an unlimited container's limit is the host's memory.
    detached(
        &c,
        &[
            "--name",
            "three",
            "box",
            "sh",
            "-c",
            "sleep 1000 & sleep 1000 & wait",
        ],
    );
    let out = c.run(["stats", "--no-stream", "--format", "json", "three", "lim"]);
    out.assert_success();
    let rows: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["Name"], "three");
    assert_eq!(rows[0]["Container"], "three");
    assert_eq!(rows[0]["PIDs"], "3");
    let host = fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = host
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let gib = format!("{:.2}", kb as f64 / (1 << 20) as f64);
    let limit = rows[0]["MemUsage"]
        .as_str()
        .unwrap()
        .split(" / ")
        .nth(1)
        .unwrap();
    assert!(
        limit.ends_with("GiB") && gib.starts_with(limit.trim_end_matches("GiB")),
        "{limit} vs {gib}"
    );
    assert_eq!(rows[1]["ID"], &id[..12]);
    assert!(rows[1]["MemPerc"].as_str().unwrap().ends_with('%'));

    // Templates, and docker's headers for table templates.
    let out = c.run([
        "stats",
        "--no-stream",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Name}} {{.PIDs}}",
        "lim",
    ]);
    out.assert_success();
    assert_eq!(out.stdout, format!("{id} lim 1\n"));
    let out = c.run([
        "stats",
        "--no-stream",
        "--format",
        "table {{.Name}}\t{{.MemUsage}}",
        "lim",
    ]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "NAME      MEM USAGE / LIMIT");
    assert!(
        lines[1].starts_with("lim       ") && lines[1].ends_with("/ 64MiB"),
        "{}",
        out.stdout
    );

    // Stopped containers: zeros, with -a or by name.
    c.run(["run", "--name", "stopped", "box", "true"])
        .assert_success();
    let out = c.run(["stats", "--no-stream", "--format", "{{.Name}}"]);
    assert!(!out.stdout.contains("stopped"), "{}", out.stdout);
    let out = c.run(["stats", "--no-stream", "-a", "--format", "{{.Name}}"]);
    assert!(out.stdout.lines().any(|l| l == "stopped"), "{}", out.stdout);
    let out = c.run(["stats", "--no-stream", "stopped"]);
    out.assert_success();
    let row = out.stdout.lines().nth(1).unwrap();
    assert!(
        row.ends_with("stopped   0.00%     0B / 0B             0.00%     0B / 0B   0B / 0B     0"),
        "{row:?}"
    );
    let out = c.run(["stats", "--no-stream", "nosuch", "lim"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("No such container: nosuch"),
        "{}",
        out.stderr
    );
}

#[test]
fn stats_cpu_percent_and_streaming() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    detached(
        &c,
        &[
            "--name",
            "busy",
            "box",
            "sh",
            "-c",
            "while true; do :; done",
        ],
    );
    let out = c.run(["stats", "--no-stream", "--format", "{{.CPUPerc}}", "busy"]);
    out.assert_success();
    let cpu: f64 = out.stdout.trim().trim_end_matches('%').parse().unwrap();
    // A busy loop: well above zero even on a loaded machine, at most all CPUs.
    let cpus = std::thread::available_parallelism().unwrap().get() as f64;
    assert!(cpu > 5.0 && cpu <= 100.0 * cpus + 1.0, "{cpu}");

    // Streaming redraws (docker's clear-screen) until interrupted. SIGINT back to its
    // default in the child: a test run started in the background (no job control)
    // inherits it ignored, as an interactive ctrl-c never is.
    let mut cmd = c.command(["stats", "--format", "{{.Name}}"]);
    cmd.stdout(Stdio::piped());
    // SAFETY: only async-signal-safe signal(2) between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    // Read until three whole frames are in; the interrupt comes after the last.
    const CLEAR: &str = "\x1b[2J\x1b[H";
    let mut stdout = child.stdout.take().unwrap();
    let (mut raw, mut buf) = (Vec::new(), [0u8; 4096]);
    let mut first = None;
    let frames_in = |raw: &[u8]| {
        let text = String::from_utf8_lossy(raw);
        let started = text.matches(CLEAR).count();
        started.saturating_sub(usize::from(!text.ends_with("busy\n")))
    };
    while frames_in(&raw) < 3 {
        let n = stdout.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "stats ended early: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
        first.get_or_insert_with(Instant::now);
    }
    // Redrawn about once a second, not in a busy loop: two redraws take over a second
    // (a lower bound only, which a slow machine cannot break).
    let redraws = first.unwrap().elapsed();
    assert!(
        redraws >= Duration::from_millis(1500),
        "3 frames in {redraws:?}"
    );
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::INT,
    )
    .unwrap();
    stdout.read_to_end(&mut raw).unwrap();
    let status = child.wait().unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.matches(CLEAR).count() >= 3, "{status:?}: {text:?}");
    assert!(text.ends_with("busy\n"), "{status:?}: {text:?}");
}

// ---------------------------------------------------------------- cp

fn write(p: &Path, data: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

/// `cp SRC DST`, asserting success.
fn cp(c: &Coracle, args: &[&str]) {
    let mut all = vec!["cp"];
    all.extend_from_slice(args);
    c.run(all).assert_success();
}

/// The host's `tar` with `args`, fed `input`; its stdout.
fn tar(args: &[&str], input: &[u8]) -> String {
    let mut t = Command::new("tar")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = t.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &data));
    let out = t.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "tar {args:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// `cp CONTAINER:PATH -`, the tar stream.
fn cp_out(c: &Coracle, container_path: &str) -> Vec<u8> {
    let out = c.command(["cp", container_path, "-"]).output().unwrap();
    assert!(
        out.status.success(),
        "cp {container_path} -: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A file's content in a container, through `cp CONTAINER:PATH -`.
fn cat(c: &Coracle, container_path: &str) -> String {
    tar(&["-xO", "-f", "-"], &cp_out(c, container_path))
}

#[test]
fn cp_out_of_running_and_stopped_containers() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let setup = "mkdir -p /d/sub && echo a > /d/a && echo b > /d/sub/b && ln -s a /d/link";
    detached(
        &c,
        &[
            "--name",
            "run1",
            "box",
            "sh",
            "-c",
            &format!("{setup} && sleep 1000"),
        ],
    );
    c.run(["run", "--name", "stop1", "box", "sh", "-c", setup])
        .assert_success();
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    for (n, ctr) in ["run1", "stop1"].iter().enumerate() {
        let dst = h.join(format!("t{n}"));
        fs::create_dir(&dst).unwrap();
        let d = dst.to_str().unwrap();
        // A file into a directory, and under a new name.
        cp(&c, &[&format!("{ctr}:/d/a"), d]);
        assert_eq!(fs::read_to_string(dst.join("a")).unwrap(), "a\n");
        cp(&c, &[&format!("{ctr}:/d/a"), &format!("{d}/renamed")]);
        assert_eq!(fs::read_to_string(dst.join("renamed")).unwrap(), "a\n");
        // A directory: inside an existing one, or as a new one; `/.` its contents.
        cp(&c, &[&format!("{ctr}:/d"), d]);
        assert_eq!(fs::read_to_string(dst.join("d/sub/b")).unwrap(), "b\n");
        assert_eq!(fs::read_link(dst.join("d/link")).unwrap(), Path::new("a"));
        cp(&c, &[&format!("{ctr}:/d"), &format!("{d}/newdir")]);
        assert_eq!(fs::read_to_string(dst.join("newdir/a")).unwrap(), "a\n");
        fs::create_dir(dst.join("contents")).unwrap();
        cp(&c, &[&format!("{ctr}:/d/."), &format!("{d}/contents")]);
        assert_eq!(
            fs::read_to_string(dst.join("contents/sub/b")).unwrap(),
            "b\n"
        );
        assert!(!dst.join("contents/d").exists());
        // -L copies what the link names, under the link's name.
        cp(
            &c,
            &["-L", &format!("{ctr}:/d/link"), &format!("{d}/followed")],
        );
        assert_eq!(fs::read_to_string(dst.join("followed")).unwrap(), "a\n");
        cp(&c, &[&format!("{ctr}:/d/link"), &format!("{d}/kept")]);
        assert_eq!(fs::read_link(dst.join("kept")).unwrap(), Path::new("a"));

        // docker's refusals and messages.
        let out = c.run(["cp", &format!("{ctr}:/nope"), d]);
        assert_eq!(out.code, 1);
        assert_eq!(
            out.stderr.trim(),
            format!("Error: Could not find the file /nope in container {ctr}")
        );
        let out = c.run(["cp", &format!("{ctr}:/d"), &format!("{d}/a")]);
        assert_eq!(out.stderr.trim(), "Error: cannot copy directory");
        let out = c.run(["cp", &format!("{ctr}:/d/a"), &format!("{d}/missing/")]);
        assert_eq!(out.stderr.trim(), "Error: no such directory");
        let out = c.run(["cp", &format!("{ctr}:/d/a"), &format!("{d}/no/such/x")]);
        assert!(
            out.stderr.contains("invalid output path: directory"),
            "{}",
            out.stderr
        );
    }
    // The stopped container's rootfs was mounted only for the copies.
    no_mounts_left(&c, 1);
    let out = c.run(["cp", "run1:/d", "stop1:/d"]);
    assert_eq!(
        out.stderr.trim(),
        "Error: copying between containers is not supported"
    );
    let out = c.run(["cp", "a", "b"]);
    assert_eq!(
        out.stderr.trim(),
        "Error: must specify at least one container source"
    );
}

#[test]
fn cp_into_containers_owned_by_root_unless_archive() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    detached(&c, &["--name", "in1", "box", "sleep", "1000"]);
    c.run(["run", "--name", "in2", "box", "true"])
        .assert_success();
    let host = tempfile::tempdir().unwrap();
    let src = host.path().join("src");
    write(&src.join("f"), "file\n");
    write(&src.join("sub/g"), "g\n");
    for p in [src.join("f"), src.join("sub/g")] {
        rustix::fs::chown(
            &p,
            Some(rustix::fs::Uid::from_raw(1234)),
            Some(rustix::fs::Gid::from_raw(5678)),
        )
        .unwrap();
    }
    let s = src.to_str().unwrap();
    for ctr in ["in1", "in2"] {
        cp(&c, &[&format!("{s}/f"), &format!("{ctr}:/tmp/")]);
        cp(&c, &[&format!("{s}/f"), &format!("{ctr}:/tmp/renamed")]);
        cp(&c, &[s, &format!("{ctr}:/tmp/")]);
        cp(&c, &[&format!("{s}/."), &format!("{ctr}:/etc/")]);
        cp(&c, &["-a", s, &format!("{ctr}:/kept")]);
        let listing = tar(
            &["-tvf", "-", "--numeric-owner"],
            &cp_out(&c, &format!("{ctr}:/")),
        );
        let owner = |name: &str| {
            listing
                .lines()
                .find(|l| l.ends_with(name))
                .unwrap_or_else(|| panic!("{name} not in {listing}"))
                .split_whitespace()
                .nth(1)
                .unwrap()
                .to_string()
        };
        // The whole root: the kernel's filesystems of a running one are left empty,
        // as in docker's view of a container's files.
        assert!(
            listing.lines().any(|l| l.ends_with(" ./proc/")),
            "{listing}"
        );
        assert!(!listing.contains("./proc/self"), "{listing}");
        assert!(!listing.contains("./sys/kernel"), "{listing}");
        assert_eq!(owner("./tmp/f"), "0/0");
        assert_eq!(owner("./tmp/renamed"), "0/0");
        assert_eq!(owner("./tmp/src/sub/g"), "0/0");
        assert_eq!(owner("./etc/f"), "0/0");
        assert_eq!(owner("./kept/sub/g"), "1234/5678");
        assert_eq!(cat(&c, &format!("{ctr}:/tmp/src/sub/g")), "g\n");

        let out = c.run(["cp", &format!("{s}/f"), &format!("{ctr}:/nodir/")]);
        assert_eq!(out.stderr.trim(), "Error: no such directory");
        let out = c.run(["cp", &format!("{s}/f"), &format!("{ctr}:/nodir/x")]);
        assert_eq!(
            out.stderr.trim(),
            format!("Error: Could not find the file /nodir in container {ctr}")
        );
        let out = c.run(["cp", s, &format!("{ctr}:/tmp/f")]);
        assert_eq!(out.stderr.trim(), "Error: cannot copy directory");
        let out = c.run(["cp", &format!("{s}/nope"), &format!("{ctr}:/tmp")]);
        assert_eq!(
            out.stderr.trim(),
            format!("Error: lstat {s}/nope: no such file or directory")
        );
    }
    no_mounts_left(&c, 1);
}

#[test]
fn cp_tar_streams_both_ways() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    detached(&c, &["--name", "st", "box", "sleep", "1000"]);
    let host = tempfile::tempdir().unwrap();
    let src = host.path().join("src");
    write(&src.join("x/y"), "y\n");
    let archive = Command::new("tar")
        .args(["-c", "-C", src.to_str().unwrap(), "."])
        .output()
        .unwrap()
        .stdout;
    let out = c.run_stdin(["cp", "-", "st:/tmp"], &archive);
    out.assert_success();
    assert_eq!(cat(&c, "st:/tmp/x/y"), "y\n");
    let out = c.run_stdin(["cp", "-", "st:/tmp/x/y"], &archive);
    assert_eq!(
        out.stderr.trim(),
        "Error: destination \"st:/tmp/x/y\" must be a directory"
    );
    // Out: docker's names, `dir/` entries first, `-L` not needed for plain paths.
    let list = tar(&["-tf", "-"], &cp_out(&c, "st:/tmp/x"));
    assert_eq!(list, "x/\nx/y\n");
    let list = tar(&["-tf", "-"], &cp_out(&c, "st:/tmp/x/."));
    assert_eq!(list, "./\n./y\n");
}

/// A symlink to `/` or up out of the root in the container: reads and writes through
/// it stay inside the container, running or stopped.
#[test]
fn cp_through_escaping_symlinks_stays_inside() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let setup = "ln -s / /escape && ln -s ../../../../.. /up && echo container > /etc/marker";
    detached(
        &c,
        &[
            "--name",
            "esc1",
            "box",
            "sh",
            "-c",
            &format!("{setup} && sleep 1000"),
        ],
    );
    c.run(["run", "--name", "esc2", "box", "sh", "-c", setup])
        .assert_success();
    let host = tempfile::tempdir().unwrap();
    let unique = format!("coracle-cp-escape-{}", std::process::id());
    let payload = host.path().join(&unique);
    fs::write(&payload, "payload\n").unwrap();
    let host_passwd = fs::read_to_string("/etc/passwd").unwrap();
    for ctr in ["esc1", "esc2"] {
        assert_eq!(cat(&c, &format!("{ctr}:/escape/etc/marker")), "container\n");
        assert_eq!(cat(&c, &format!("{ctr}:/up/etc/marker")), "container\n");
        let passwd = cat(&c, &format!("{ctr}:/escape/etc/passwd"));
        assert_eq!(passwd, cat(&c, &format!("{ctr}:/etc/passwd")));
        assert_ne!(passwd, host_passwd);
        let dst = host.path().join(format!("{ctr}-passwd"));
        cp(
            &c,
            &[&format!("{ctr}:/escape/etc/passwd"), dst.to_str().unwrap()],
        );
        assert_eq!(fs::read_to_string(&dst).unwrap(), passwd);

        // Into the link: the container's root, never the host's.
        cp(&c, &[payload.to_str().unwrap(), &format!("{ctr}:/escape/")]);
        cp(&c, &[payload.to_str().unwrap(), &format!("{ctr}:/up/tmp/")]);
        cp(
            &c,
            &[
                "-L",
                payload.to_str().unwrap(),
                &format!("{ctr}:/escape/etc/"),
            ],
        );
        assert!(
            !Path::new("/").join(&unique).exists(),
            "written to the host's /"
        );
        assert!(
            !Path::new("/tmp").join(&unique).exists(),
            "written to the host's /tmp"
        );
        assert!(
            !Path::new("/etc").join(&unique).exists(),
            "written to the host's /etc"
        );
        assert_eq!(cat(&c, &format!("{ctr}:/{unique}")), "payload\n");
        assert_eq!(cat(&c, &format!("{ctr}:/tmp/{unique}")), "payload\n");
        assert_eq!(cat(&c, &format!("{ctr}:/etc/{unique}")), "payload\n");
    }
    no_mounts_left(&c, 1);
}

#[test]
fn cp_into_a_stopped_containers_volume_and_read_only_rules() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run(["volume", "create", "vol"]).assert_success();
    c.run([
        "run",
        "--name",
        "withvol",
        "-v",
        "vol:/data",
        "box",
        "sh",
        "-c",
        "echo v > /data/v",
    ])
    .assert_success();
    let host = tempfile::tempdir().unwrap();
    let f = host.path().join("f");
    fs::write(&f, "f\n").unwrap();
    let f = f.to_str().unwrap();
    cp(&c, &[f, "withvol:/data/"]);
    let data = c.root().join("volumes/vol/_data");
    assert_eq!(fs::read_to_string(data.join("f")).unwrap(), "f\n");
    assert_eq!(fs::metadata(data.join("f")).unwrap().uid(), 0);
    assert_eq!(cat(&c, "withvol:/data/v"), "v\n");
    // The copy is what the next run sees.
    let out = c.run(["run", "--rm", "-v", "vol:/data", "box", "cat", "/data/f"]);
    assert_eq!(out.stdout, "f\n");

    c.run([
        "run",
        "--name",
        "ro",
        "--read-only",
        "-v",
        "vol:/data",
        "box",
        "true",
    ])
    .assert_success();
    let out = c.run(["cp", f, "ro:/tmp/"]);
    assert_eq!(
        out.stderr.trim(),
        "Error: container rootfs is marked read-only"
    );
    cp(&c, &[f, "ro:/data/g"]);
    assert!(data.join("g").is_file());
    c.run([
        "run",
        "--name",
        "rovol",
        "-v",
        "vol:/data:ro",
        "box",
        "true",
    ])
    .assert_success();
    let out = c.run(["cp", f, "rovol:/data/"]);
    assert_eq!(
        out.stderr.trim(),
        "Error: mounted volume is marked read-only"
    );
    assert_eq!(cat(&c, "rovol:/data/g"), "f\n");
    no_mounts_left(&c, 0);
}
