//! A damaged or missing state database is detected when the store opens: commands
//! refuse at once, naming the file, instead of waiting on locks and then starting a
//! fresh, empty database that orphans the store's containers and images.

mod common;
use common::*;
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
    damaged_database_is_refused(|db| std::fs::write(db, vec![0x5au8; 8192]).unwrap());
}

#[test]
fn a_missing_database_is_refused() {
    damaged_database_is_refused(|db| {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
    });
}
