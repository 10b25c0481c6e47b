//! A full store: the monitors of running containers survive it. Log lines that cannot
//! be written are dropped and counted, reported once when space returns, and the
//! container keeps running and ends with its real exit code.

use crate::common::*;
use std::path::Path;
use std::time::Duration;

fn free_bytes(path: &Path) -> u64 {
    let s = rustix::fs::statvfs(path).unwrap();
    s.f_bavail * s.f_frsize
}

/// The pid of the `__monitor` process of container `id`.
fn monitor_pid(id: &str) -> Option<i32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.contains(&&b"__monitor"[..]) && args.contains(&id.as_bytes()) {
            return Some(pid);
        }
    }
    None
}

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.to_string()))
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

/// The last number the container wrote to its progress file (None while it rewrites
/// it).
fn progress(dir: &Path) -> Option<u64> {
    std::fs::read_to_string(dir.join("n"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[track_caller]
fn progress_now(dir: &Path) -> u64 {
    let mut n = None;
    wait_until("a progress count", Duration::from_secs(10), || {
        n = progress(dir);
        n.is_some()
    });
    n.unwrap()
}

/// The json log's complete entries: (stream, log text). The last one may still be
/// being written (or, on the full disk, wait for the rest of its bytes).
fn entries_of(log: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(log).unwrap();
    text.split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("a torn entry in the log: {l:?}: {e}"));
            (
                v["stream"].as_str().unwrap().to_string(),
                v["log"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn line_numbers(entries: &[(String, String)]) -> Vec<u64> {
    entries
        .iter()
        .filter(|(s, _)| s == "stdout")
        .map(|(_, l)| {
            l.trim_end()
                .strip_prefix("line ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected stdout entry {l:?}"))
        })
        .collect()
}

/// busybox as `box` in a store on a small tmpfs (keep the registry alive).
fn tmpfs_store_with_busybox() -> (Registry, TmpfsStore) {
    let (reg, _image) = registry_with_busybox();
    let mut store = TmpfsStore::new(coracle(), "48m");
    let name = format!("{}/test/busybox", reg.host());
    store.c().run(["pull", "-q", &name]).assert_success();
    store.c().run(["tag", &name, "box"]).assert_success();
    store.c_mut().isolate_network();
    (reg, store)
}

#[test]
fn a_full_store_drops_log_lines_and_the_container_runs_on() {
    if skip_unless_root() {
        return;
    }
    let (_reg, store) = tmpfs_store_with_busybox();
    let c = store.c();
    let root = c.root();

    // The container counts in its log and, off the store, in a progress file.
    let progress_dir = c.tmp().join("progress");
    std::fs::create_dir(&progress_dir).unwrap();
    let script =
        "i=0; while true; do echo \"line $i\"; echo $i > /p/n; i=$((i+1)); usleep 2000; done";
    c.run([
        "run",
        "-d",
        "--name",
        "talker",
        "-v",
        &format!("{}:/p", progress_dir.display()),
        "box",
        "sh",
        "-c",
        script,
    ])
    .assert_success();
    let id = inspect_container(c, "talker")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let cdir = root.join("containers").join(&id);
    let log = cdir.join(format!("{id}-json.log"));
    wait_until("the first log lines", Duration::from_secs(20), || {
        progress(&progress_dir).is_some_and(|n| n >= 50)
    });
    let monitor = monitor_pid(&id).expect("the container's monitor runs");

    let filler_path = root.join("filler");
    let filler = fill(&filler_path);
    assert_eq!(free_bytes(&root), 0, "the store is full");
    let full_at = progress_now(&progress_dir);
    // Hundreds of lines printed with no room for them.
    wait_until(
        "the container to print on while the store is full",
        Duration::from_secs(30),
        || {
            assert!(
                alive(monitor),
                "the monitor died on the full store; monitor.log: {:?}",
                std::fs::read_to_string(cdir.join("monitor.log"))
            );
            progress(&progress_dir).is_some_and(|n| n >= full_at + 500)
        },
    );
    assert_eq!(free_bytes(&root), 0, "the store stayed full");
    assert!(alive(monitor), "the monitor survives the full store");

    drop(filler);
    std::fs::remove_file(&filler_path).unwrap();
    let freed_at = progress_now(&progress_dir);
    wait_until("logging to resume", Duration::from_secs(30), || {
        assert!(alive(monitor), "the monitor died after space returned");
        line_numbers(&entries_of(&log))
            .last()
            .is_some_and(|n| *n > freed_at + 20)
    });

    // Every line is either in the log or counted in the one drop report, which stands
    // where the lines are missing.
    let entries = entries_of(&log);
    let markers: Vec<(usize, &String)> = entries
        .iter()
        .enumerate()
        .filter(|(_, (s, l))| s == "stderr" && l.contains("log lines dropped"))
        .map(|(i, (_, l))| (i, l))
        .collect();
    assert_eq!(markers.len(), 1, "one drop report: {markers:?}");
    let (at, marker) = markers[0];
    let dropped: u64 = marker
        .strip_prefix("coracle: ")
        .and_then(|m| m.strip_suffix(" log lines dropped: no space left on device\n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("drop report {marker:?}"));
    assert!(dropped > 0);
    let before = line_numbers(&entries[..at]);
    let after = line_numbers(&entries[at + 1..]);
    assert_eq!(
        before,
        (0..before.len() as u64).collect::<Vec<_>>(),
        "nothing lost before the disk filled"
    );
    let first_after = before.len() as u64 + dropped;
    assert_eq!(
        after,
        (first_after..first_after + after.len() as u64).collect::<Vec<_>>(),
        "the dropped lines are exactly those reported"
    );
    let monitor_log = std::fs::read_to_string(cdir.join("monitor.log")).unwrap();
    assert_eq!(
        monitor_log.matches("log lines dropped").count(),
        1,
        "monitor.log: {monitor_log}"
    );

    let out = c.run(["stop", "-t", "1", "talker"]);
    out.assert_success();
    let code = inspect_container(c, "talker")["State"]["ExitCode"]
        .as_i64()
        .unwrap();
    assert!(code == 137 || code == 143, "exit code {code}");
    let ps = c.run(["ps", "-a"]);
    let line = ps
        .stdout
        .lines()
        .find(|l| l.contains("talker"))
        .unwrap_or_else(|| panic!("talker in ps -a: {}", ps.stdout));
    assert!(line.contains(&format!("Exited ({code})")), "ps -a: {line}");
    c.run(["rm", "talker"]).assert_success();
}

#[test]
fn a_container_that_exits_while_the_store_is_full_keeps_its_exit_code() {
    if skip_unless_root() {
        return;
    }
    let (_reg, store) = tmpfs_store_with_busybox();
    let c = store.c();
    let root = c.root();
    let progress_dir = c.tmp().join("progress");
    std::fs::create_dir(&progress_dir).unwrap();
    let script = "i=0; while [ ! -e /p/stop ]; do echo \"line $i\"; echo $i > /p/n; i=$((i+1)); usleep 2000; done; exit 3";
    c.run([
        "run",
        "-d",
        "--name",
        "quitter",
        "-v",
        &format!("{}:/p", progress_dir.display()),
        "box",
        "sh",
        "-c",
        script,
    ])
    .assert_success();
    let id = inspect_container(c, "quitter")["Id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_until("the first log lines", Duration::from_secs(20), || {
        progress(&progress_dir).is_some_and(|n| n >= 20)
    });
    let monitor = monitor_pid(&id).expect("the container's monitor runs");

    let filler_path = root.join("filler");
    let filler = fill(&filler_path);
    let full_at = progress_now(&progress_dir);
    wait_until(
        "lines printed on the full store",
        Duration::from_secs(30),
        || progress(&progress_dir).is_some_and(|n| n >= full_at + 50),
    );
    // The container ends while nothing can be written to the store (what its
    // teardown frees is taken again at once): its monitor records what it can and
    // goes.
    let keep_full = KeepFull::start(std::fs::File::create(root.join("filler2")).unwrap());
    std::fs::write(progress_dir.join("stop"), b"").unwrap();
    wait_until("the monitor to finish", Duration::from_secs(30), || {
        !alive(monitor)
    });
    drop(keep_full);
    assert_eq!(free_bytes(&root), 0, "the store stayed full");

    drop(filler);
    std::fs::remove_file(&filler_path).unwrap();
    std::fs::remove_file(root.join("filler2")).unwrap();
    let state = &inspect_container(c, "quitter")["State"];
    assert_eq!(state["Status"], "exited", "{state}");
    assert_eq!(state["ExitCode"], 3, "{state}");
    let ps = c.run(["ps", "-a"]);
    let line = ps
        .stdout
        .lines()
        .find(|l| l.contains("quitter"))
        .unwrap_or_else(|| panic!("quitter in ps -a: {}", ps.stdout));
    assert!(line.contains("Exited (3)"), "ps -a: {line}");
    c.run(["rm", "quitter"]).assert_success();
}
