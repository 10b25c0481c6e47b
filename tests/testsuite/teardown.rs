//! Ending containers never leaks: whatever ends them (`stop`, `stop` after the
//! timeout, `kill`, `kill -s KILL`, `rm -f`, `--rm`), and however many end at once,
//! no cgroup directory (in any hierarchy) and no runtime state of theirs is left.
//!
//! The monitor's teardown races the command that ended the container: the kernel
//! empties a killed container's cgroup asynchronously, and the runtime's `kill`
//! rewrites its `state.json` while the monitor deletes it. Before the fix about one
//! container in ten left its cgroups and runtime state behind for good.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Every cgroup hierarchy mounted on the host (v1 and v2), from mountinfo.
fn cgroup_mounts() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    info.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split_whitespace().next()?;
            (fstype == "cgroup" || fstype == "cgroup2")
                .then(|| PathBuf::from(left.split_whitespace().nth(4).unwrap()))
        })
        .collect()
}

/// What is left of container `id`: its cgroup directories and runtime state dirs.
fn leftovers(id: &str, hierarchies: &[PathBuf]) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = hierarchies
        .iter()
        .map(|h| h.join("coracle").join(id))
        .filter(|p| p.exists())
        .collect();
    let runtimes = Path::new("/run/coracle/runtime");
    for rt in entries(runtimes) {
        let p = runtimes.join(rt).join(id);
        if p.exists() {
            found.push(p);
        }
    }
    found
}

/// The ways a container is ended, in turn.
const WAYS: [&str; 6] = [
    "stop -t 0",
    "stop -t 1",
    "kill",
    "kill -s KILL",
    "rm -f",
    "--rm kill",
];

/// Payloads, in turn: a lone pid 1 (it ignores TERM: no handler), and a shell that
/// ignores TERM with children of its own, so the cgroup holds several processes.
fn payload(i: usize) -> Vec<&'static str> {
    if i.is_multiple_of(2) {
        vec!["sleep", "1000"]
    } else {
        vec![
            "sh",
            "-c",
            "sleep 1000 & sleep 1000 & trap '' TERM; while :; do sleep 1; done",
        ]
    }
}

/// Runs container `name` and ends it the `way`th way; returns its id.
fn run_and_end(c: &Coracle, name: &str, i: usize, runtime: &str) -> String {
    let way = WAYS[i % WAYS.len()];
    let mut args = vec!["run", "-d", "--network", "none", "--runtime", runtime];
    if way == "--rm kill" {
        args.push("--rm");
    }
    args.extend(["--name", name, "box"]);
    args.extend(payload(i / WAYS.len()));
    let out = c.run(&args);
    assert!(out.success(), "{name}: {out:?}");
    let id = out.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "{name}: {out:?}");
    let ok = |out: Output| assert!(out.success(), "{name} ({way}): {out:?}");
    match way {
        "stop -t 0" => ok(c.run(["stop", "-t", "0", name])),
        "stop -t 1" => ok(c.run(["stop", "-t", "1", name])),
        "kill" => ok(c.run(["kill", name])),
        "kill -s KILL" => ok(c.run(["kill", "-s", "KILL", name])),
        "rm -f" => {
            ok(c.run(["rm", "-f", name]));
            return id;
        }
        _ => {
            ok(c.run(["kill", name]));
            // `wait` returns once its monitor has removed it.
            let _ = c.run(["wait", name]);
            let out = c.run(["inspect", name]);
            assert!(!out.success(), "{name} (--rm) is still there: {out:?}");
            return id;
        }
    }
    let out = c.run(["wait", name]);
    assert!(out.success(), "{name} ({way}): {out:?}");
    ok(c.run(["rm", name]));
    id
}

/// `count` containers ended in every way by `threads` concurrent loops; asserts that
/// nothing of them is left.
fn end_many(runtime: &str, count: usize, threads: usize) {
    if skip_unless_root() {
        return;
    }
    let hierarchies = cgroup_mounts();
    assert!(!hierarchies.is_empty(), "no cgroup hierarchy mounted");
    let (_reg, c) = with_busybox();
    let c = Arc::new(c);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let c = c.clone();
            let runtime = runtime.to_string();
            std::thread::spawn(move || {
                (t..count)
                    .step_by(threads)
                    .map(|i| run_and_end(&c, &format!("td{i}"), i, &runtime))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: Vec<String> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker"))
        .collect();
    assert_eq!(ids.len(), count);
    let out = c.run(["ps", "-aq"]);
    out.assert_success();
    assert_eq!(out.stdout, "", "every container is removed");
    let left: Vec<(String, Vec<PathBuf>)> = ids
        .iter()
        .map(|id| (id.clone(), leftovers(id, &hierarchies)))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    let dirs: usize = left.iter().map(|(_, l)| l.len()).sum();
    assert!(
        left.is_empty(),
        "{} of {count} containers left {dirs} cgroup or runtime state directories: {left:#?}",
        left.len()
    );
}

#[test]
fn a_hundred_containers_ended_every_way_leave_no_cgroups_or_runtime_state() {
    end_many("youki", 100, 4);
}

#[test]
fn crun_containers_ended_every_way_leave_no_cgroups_or_runtime_state() {
    end_many("crun", 36, 4);
}

/// A teardown that fails is not forgotten: later commands retry it. The runtime here
/// is crun behind a wrapper that refuses `delete` while a flag file exists.
#[test]
fn a_failed_teardown_is_retried_by_later_commands() {
    if skip_unless_root() {
        return;
    }
    let hierarchies = cgroup_mounts();
    let (_reg, c) = with_busybox();
    let flag = c.tmp().join("refuse-delete");
    let wrapper = c.tmp().join("flaky-crun");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = delete ] && [ -e '{}' ]; then\n    echo 'flaky-crun: delete refused' >&2; exit 1\n  fi\ndone\nexec crun \"$@\"\n",
            flag.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(&flag, "").unwrap();
    let runtime = wrapper.to_str().unwrap();
    let out = c.run([
        "run",
        "-d",
        "--network",
        "none",
        "--runtime",
        runtime,
        "--name",
        "flaky",
        "box",
        "sleep",
        "1000",
    ]);
    out.assert_success();
    let id = out.stdout.trim().to_string();
    c.run(["kill", "flaky"]).assert_success();
    c.run(["wait", "flaky"]).assert_success();
    c.run(["rm", "flaky"]).assert_success();
    let state = Path::new("/run/coracle/runtime/flaky-crun").join(&id);
    assert!(
        state.exists(),
        "the refused delete left the runtime's state"
    );

    std::fs::remove_file(&flag).unwrap();
    let out = c.run(["ps", "-a"]);
    out.assert_success();
    assert_eq!(leftovers(&id, &hierarchies), Vec::<PathBuf>::new());
    // The wrapper's state root (shared by concurrent runs: only if empty).
    let _ = std::fs::remove_dir(state.parent().unwrap());
}
