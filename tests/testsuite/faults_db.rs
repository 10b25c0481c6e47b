//! A damaged or missing state database is detected when the store opens: commands
//! refuse at once, naming the file, instead of waiting on locks and then starting a
//! fresh, empty database that orphans the store's containers and images.

use crate::common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Runs coracle with `args`; fails (instead of hanging) if it does not end in 60 s.
#[track_caller]
fn run_deadline(c: &Coracle, args: &[&str]) -> Output {
    let mut child = c
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("coracle {args:?} did not end in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

fn damaged_database_is_refused(damage: impl Fn(&std::path::Path)) {
    let (_reg, c) = with_busybox();
    c.run(["create", "--name", "keep", "box", "true"])
        .assert_success();
    let db = c.root().join("state.db");
    let saved = std::fs::read(&db).unwrap();
    damage(&db);
    let before = std::fs::read(&db).ok();

    for args in [
        &["ps", "-a"][..],
        &["images"],
        &["run", "--rm", "box", "true"],
    ] {
        let out = run_deadline(&c, args);
        assert_ne!(out.code, 0, "{args:?} on a damaged database: {out:?}");
        assert!(
            out.stderr.contains(&db.display().to_string())
                && out.stderr.contains("damaged")
                && out.stderr.contains("coracle system check"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // Nothing replaced the damaged file with a fresh database.
    assert_eq!(
        std::fs::read(&db).ok(),
        before,
        "the damaged file was changed"
    );
    let out = run_deadline(&c, &["system", "check"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("damaged"), "{}", out.stdout);
    assert!(
        out.stdout.contains("1 container directories"),
        "{}",
        out.stdout
    );

    // Put back, the store is whole again: its container and image were never lost.
    std::fs::write(&db, saved).unwrap();
    let out = run_deadline(&c, &["system", "check"]);
    assert_eq!(out.code, 0, "{out:?}");
    let ps = run_deadline(&c, &["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(ps.stdout.trim(), "keep", "{ps:?}");
    c.run(["rm", "keep"]).assert_success();
}

#[test]
fn an_emptied_database_is_refused() {
    if skip_unless_root() {
        return;
    }
    damaged_database_is_refused(|db| {
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(db)
            .unwrap();
    });
}

#[test]
fn a_garbage_database_is_refused() {
    if skip_unless_root() {
        return;
    }
    damaged_database_is_refused(|db| std::fs::write(db, vec![0x5au8; 8192]).unwrap());
}

#[test]
fn a_missing_database_is_refused() {
    if skip_unless_root() {
        return;
    }
    damaged_database_is_refused(|db| {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    });
}

/// `inspect -f TEMPLATE NAME`, trimmed.
#[track_caller]
fn inspect_field(c: &Coracle, template: &str, name: &str) -> String {
    let out = run_deadline(c, &["inspect", "-f", template, name]);
    assert_eq!(out.code, 0, "inspect {name}: {out:?}");
    out.stdout.trim().to_string()
}

/// The files beside the database that a repair moved aside, by name.
fn kept_files(c: &Coracle) -> Vec<String> {
    entries(&c.root())
        .into_iter()
        .filter(|e| e.starts_with("state.db.damaged-"))
        .collect()
}

/// A store with an image, a created, an exited (renamed) and a running container (one
/// more on a user network), a volume and a network loses its database; `system check
/// --repair` rebuilds it from the store's files, keeps the damaged file, and every
/// command then works on what came back.
fn repair_rebuilds_the_store(damage: impl Fn(&std::path::Path), kept: bool) {
    let (_reg, c) = with_busybox();
    let image = inspect_field(&c, "{{.Id}}", "box");
    c.run(["create", "--name", "keep", "box", "true"])
        .assert_success();
    c.run(["run", "--name", "done", "box", "sh", "-c", "exit 3"])
        .assert_code(3);
    c.run(["rename", "done", "finished"]).assert_success();
    c.run(["run", "-d", "--name", "live", "box", "sleep", "1000"])
        .assert_success();
    c.run(["volume", "create", "vol1"]).assert_success();
    c.run(["network", "create", "appnet"]).assert_success();
    c.run([
        "create",
        "--name",
        "onnet",
        "--network",
        "appnet",
        "box",
        "sh",
        "-c",
        "ip -4 addr show eth0",
    ])
    .assert_success();
    let live = inspect_field(&c, "{{.Id}}", "live");
    let db = c.root().join("state.db");
    damage(&db);
    let damaged = std::fs::read(&db).ok();
    let out = run_deadline(&c, &["ps", "-a"]);
    assert_ne!(out.code, 0, "ps on a damaged database: {out:?}");
    assert!(
        out.stderr.contains("system check --repair"),
        "{}",
        out.stderr
    );

    let out = run_deadline(&c, &["system", "check", "--repair"]);
    assert_eq!(out.code, 0, "{out:?}");
    for want in [
        "images: 1 recovered",
        "(untagged)",
        "containers: 4 recovered",
        "keep (created)",
        "finished (exited)",
        "live (running)",
        "onnet (created)",
        "networks: 2 recovered: appnet, bridge",
        "volumes: 1 kept",
        "vol1",
    ] {
        assert!(out.stdout.contains(want), "no {want:?} in:\n{}", out.stdout);
    }
    // The damaged file is kept as it was, beside the new database.
    let aside = kept_files(&c);
    let main: Vec<&String> = aside
        .iter()
        .filter(|f| !f.ends_with("-wal") && !f.ends_with("-shm"))
        .collect();
    assert_eq!(main.len(), kept as usize, "{aside:?}");
    if kept {
        let file = std::fs::read(c.root().join(main[0])).unwrap();
        assert_eq!(Some(file), damaged, "the kept file is not the damaged one");
    }
    assert_eq!(run_deadline(&c, &["system", "check"]).code, 0);
    let leftovers: Vec<String> = entries(&c.root())
        .into_iter()
        .filter(|e| e.starts_with("state.db.repair"))
        .chain(entries(&c.root().join("tmp")))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());

    // Everything is back: the image (untagged: tags were only in the database), the
    // containers with their names, state, image and command.
    let ps = run_deadline(&c, &["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    let mut lines: Vec<&str> = ps.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "finished exited",
            "keep created",
            "live running",
            "onnet created"
        ],
        "{ps:?}"
    );
    let images = run_deadline(&c, &["images", "-q", "--no-trunc"]);
    assert_eq!(images.stdout.trim(), image, "{images:?}");
    assert_eq!(inspect_field(&c, "{{.Image}}", "keep"), image);
    assert_eq!(
        inspect_field(&c, "{{json .Config.Cmd}}", "keep"),
        r#"["true"]"#
    );
    assert_eq!(inspect_field(&c, "{{.State.ExitCode}}", "finished"), "3");
    c.run(["tag", &image, "box"]).assert_success();

    // ...and works: the created one starts, the running one stops without leaving a
    // mount behind, and all of it can be removed.
    c.run(["start", "-a", "keep"]).assert_success();
    // On its network again (the network came back from its file, the attachment from
    // the container's record.json).
    let out = c.run(["start", "-a", "onnet"]);
    out.assert_success();
    assert!(out.stdout.contains("inet "), "{out:?}");
    c.run(["stop", "-t", "1", "live"]).assert_success();
    let live_dir = c.root().join("containers").join(&live);
    assert_eq!(mounts_under(&live_dir), Vec::<std::path::PathBuf>::new());
    c.run(["rm", "keep", "finished", "live", "onnet"])
        .assert_success();
    c.run(["network", "rm", "appnet"]).assert_success();
    c.run(["rmi", "box"]).assert_success();
    let ps = run_deadline(&c, &["ps", "-aq"]);
    assert_eq!((ps.code, ps.stdout.trim()), (0, ""), "{ps:?}");

    // On a sound store, a repair changes nothing and says so.
    let out = run_deadline(&c, &["system", "check", "--repair"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("nothing to repair"), "{}", out.stdout);
    assert_eq!(kept_files(&c), aside);
}

#[test]
fn repair_rebuilds_an_emptied_database() {
    if skip_unless_root() {
        return;
    }
    repair_rebuilds_the_store(
        |db| {
            std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(db)
                .unwrap();
        },
        true,
    );
}

#[test]
fn repair_rebuilds_a_garbage_database() {
    if skip_unless_root() {
        return;
    }
    repair_rebuilds_the_store(|db| std::fs::write(db, vec![0x5au8; 8192]).unwrap(), true);
}

#[test]
fn repair_rebuilds_a_missing_database() {
    if skip_unless_root() {
        return;
    }
    repair_rebuilds_the_store(
        |db| {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
            }
        },
        false,
    );
}

/// A database SQLite can still read (here the count of free pages in its header is
/// wrong, which `quick_check` finds) gives back what only it knew: tags and names.
#[test]
fn repair_salvages_what_a_damaged_database_still_holds() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run(["create", "--name", "keep", "box", "true"])
        .assert_success();
    let db = c.root().join("state.db");
    // Every coracle process has ended, so the write-ahead log is in the file.
    let wal = c.root().join("state.db-wal");
    assert!(std::fs::metadata(&wal).map_or(true, |m| m.len() == 0));
    let mut bytes = std::fs::read(&db).unwrap();
    bytes[36..40].copy_from_slice(&5u32.to_be_bytes());
    std::fs::write(&db, &bytes).unwrap();
    let out = run_deadline(&c, &["system", "check"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.to_lowercase().contains("freelist"),
        "{}",
        out.stdout
    );

    let out = run_deadline(&c, &["system", "check", "--repair"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("box:latest") && !out.stdout.contains("untagged"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("keep (created)"), "{}", out.stdout);
    let images = run_deadline(&c, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        images.stdout.lines().any(|l| l == "box:latest"),
        "{images:?}"
    );
    c.run(["run", "--rm", "box", "true"]).assert_success();
    c.run(["rm", "keep"]).assert_success();
}

/// Containers an older coracle made have no `record.json`: they are rebuilt from
/// their other files (container.json, the OCI spec, their layers) and work.
#[test]
fn repair_rebuilds_containers_without_a_record_file() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run(["create", "--name", "old", "box", "echo", "hi"])
        .assert_success();
    let id = inspect_field(&c, "{{.Id}}", "old");
    std::fs::remove_file(c.root().join("containers").join(&id).join("record.json")).unwrap();
    std::fs::write(c.root().join("state.db"), b"").unwrap();

    let out = run_deadline(&c, &["system", "check", "--repair"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("old (created, from its files only)")
            && out.stdout.contains("no record.json"),
        "{}",
        out.stdout
    );
    assert_eq!(
        inspect_field(&c, "{{json .Config.Cmd}}", "old"),
        r#"["echo","hi"]"#
    );
    let out = c.run(["start", "-a", "old"]);
    out.assert_success();
    assert_eq!(out.stdout.trim(), "hi");
    c.run(["rm", "old"]).assert_success();
}

/// Several first commands on a new store at once all succeed: the switch of the new
/// database to WAL needs an exclusive lock, and SQLite answered "database is locked"
/// at once (no busy wait) to the opener that met another's lock: without the retry
/// this failed within 15 rounds, three runs out of three.
#[test]
fn a_new_store_opened_by_many_commands_at_once() {
    for round in 0..25 {
        let c = coracle();
        let procs: Vec<_> = (0..8)
            .map(|_| {
                c.command(["images", "-q"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for p in procs {
            let out = p.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
