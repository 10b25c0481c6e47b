//! Smaller faults and script-facing output (Issue 11 B.7, C.6): `--cpus` above the
//! host's CPUs, `stop` of many containers at once, `load -q`, and `--format`
//! templates as docker renders them.

use crate::common::*;

#[test]
fn cpus_above_the_hosts_are_refused_as_docker_refuses_them() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let out = c.run(["run", "--rm", "--cpus", "1000", "box", "true"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("range of CPUs is from 0.01 to ")
            && out.stderr.contains("CPUs available"),
        "{}",
        out.stderr
    );
    assert!(
        c.run(["ps", "-aq"]).stdout.trim().is_empty(),
        "nothing created"
    );
    run(&c, &["--cpus", "0.5", "box", "true"]).assert_success();
}

/// Ten containers that ignore TERM: each, once it got TERM, waits until all ten got
/// it and then leaves an `all-` marker. A `stop` that stops one container after the
/// other KILLs the first before the second ever gets TERM, so no `all-` marker
/// could appear but the last one's.
#[test]
fn stop_of_many_containers_stops_them_all_at_once() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let dir = tempfile::tempdir().unwrap();
    let bind = format!("{}:/m", dir.path().display());
    let script = "trap 'touch /m/term-$N; T=1' TERM; T=0; \
        while :; do \
          if [ $T = 1 ] && [ $(ls /m | grep -c ^term-) -ge 10 ]; then touch /m/all-$N; fi; \
          touch /m/up-$N; sleep 0.1; \
        done";
    let names: Vec<String> = (0..10).map(|i| format!("ign{i}")).collect();
    for n in &names {
        let env = format!("N={n}");
        c.run([
            "run", "-d", "--name", n, "-e", &env, "-v", &bind, "box", "sh", "-c", script,
        ])
        .assert_success();
    }
    wait_until(
        "every container is up",
        std::time::Duration::from_secs(30),
        || {
            names
                .iter()
                .all(|n| dir.path().join(format!("up-{n}")).exists())
        },
    );
    let mut args = vec!["stop", "-t", "2"];
    args.extend(names.iter().map(String::as_str));
    let out = c.run(args);
    out.assert_success();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        names,
        "argument order"
    );
    let marks = entries(dir.path());
    for n in &names {
        assert!(
            marks.contains(&format!("term-{n}")),
            "{n} got TERM: {marks:?}"
        );
        assert!(
            marks.contains(&format!("all-{n}")),
            "{n} saw every container get TERM before it was killed: {marks:?}"
        );
        let code = c.run(["inspect", "-f", "{{.State.ExitCode}}", n]);
        assert_eq!(code.stdout.trim(), "137", "{n} was killed");
    }
    // rm -f of them all at once (also in parallel) removes every one.
    let mut args = vec!["rm", "-f"];
    args.extend(names.iter().map(String::as_str));
    let out = c.run(args);
    out.assert_success();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        names,
        "argument order"
    );
    assert!(c.run(["ps", "-aq"]).stdout.trim().is_empty());
}

#[test]
fn stop_reports_each_failure_in_argument_order() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    for n in ["s1", "s2"] {
        c.run(["create", "--name", n, "box", "true"])
            .assert_success();
    }
    let out = c.run(["stop", "s1", "nosuch", "s2"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, "s1\ns2\n");
    assert!(out.stderr.contains("nosuch"), "{}", out.stderr);
}

#[test]
fn load_quiet_still_names_what_it_loaded() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let tar = c.tmp().join("box.tar");
    c.run(["save", "-o", tar.to_str().unwrap(), "box"])
        .assert_success();
    c.run(["rmi", "box"]).assert_success();
    let out = c.run(["load", "-q", "-i", tar.to_str().unwrap()]);
    out.assert_success();
    assert_eq!(out.stdout, "Loaded image: box:latest\n");
}

#[test]
fn formats_render_as_docker_renders_them() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let f = |args: &[&str]| {
        let out = c.run(args);
        out.assert_success();
        out.stdout
    };
    // The test busybox image has no entrypoint and no labels.
    assert_eq!(
        f(&["image", "inspect", "-f", "{{.Config.Entrypoint}}", "box"]),
        "[]\n"
    );
    assert_eq!(
        f(&["image", "inspect", "-f", "{{.Config.Labels}}", "box"]),
        "map[]\n"
    );
    assert_eq!(
        f(&["image", "inspect", "-f", "[{{.Comment}}]", "box"]),
        "[]\n"
    );
    let mut create = vec!["create", "--name", "lab"];
    for l in [
        "zeta=1", "alpha=2", "mid=3", "beta=4", "omega=5", "gamma=6", "kappa=7",
    ] {
        create.extend(["--label", l]);
    }
    create.extend(["box", "true"]);
    c.run(create).assert_success();
    let t = "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}},{{end}}";
    for _ in 0..5 {
        assert_eq!(
            f(&["inspect", "-f", t, "lab"]),
            "alpha=2,beta=4,gamma=6,kappa=7,mid=3,omega=5,zeta=1,\n"
        );
    }
    let out = c.run(["image", "inspect", "-f", "{{.Foo}}", "box"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(
            r#"template parsing error: template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo""#
        ),
        "{}",
        out.stderr
    );
    let out = c.run(["ps", "-a", "--format", "{{.Nope}}"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("map has no entry for key \"Nope\""),
        "{}",
        out.stderr
    );
}

/// `exec` while `stop` ends the container: the exec runs, or it is refused with
/// docker's "container X is not running" (exit 1), or its process dies with the
/// container; never an internal error.
#[test]
fn exec_racing_stop_says_not_running() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let mut seen = std::collections::BTreeMap::<i32, usize>::new();
    for i in 0..20 {
        let name = format!("race{i}");
        c.run(["run", "-d", "--name", &name, "box", "sleep", "1000"])
            .assert_success();
        let out = std::thread::scope(|s| {
            let stopper = s.spawn(|| c.run(["stop", "-t", "0", &name]));
            let mut outs = Vec::new();
            loop {
                let out = c.run(["exec", &name, "true"]);
                let done = out.code != 0;
                outs.push(out);
                if done {
                    break;
                }
            }
            stopper.join().unwrap().assert_success();
            outs
        });
        for o in &out {
            *seen.entry(o.code).or_default() += 1;
            assert!(
                !o.stderr.contains("Internal error") && !o.stderr.contains("bug"),
                "exec racing stop: {o:?}"
            );
            assert!(
                o.code == 0
                    || (o.code == 1 && o.stderr.contains(" is not running"))
                    || o.code == 137,
                "exec racing stop: {o:?}"
            );
        }
        c.run(["rm", "-f", &name]).assert_success();
    }
    eprintln!("exec exit codes: {seen:?}");
}

/// `run -d` on a store that is full and kept full (whatever space the command frees is
/// taken again at once): every attempt that fails names the full disk and leaves
/// either nothing (no container, no container directory, no mount) or, as docker does
/// when a start fails, a complete Created container that starts once there is room.
#[test]
fn run_on_a_full_store_leaves_no_half_made_container() {
    if skip_unless_root() {
        return;
    }
    let (reg, _image) = registry_with_busybox();
    let mut store = TmpfsStore::new(coracle(), "64m");
    let c = store.c.as_mut().unwrap();
    let name = format!("{}/test/busybox", reg.host());
    c.run(["pull", "-q", &name]).assert_success();
    c.run(["tag", &name, "box"]).assert_success();
    c.isolate_network();
    let c = store.c.as_ref().unwrap();
    let containers_dir = c.root().join("containers");
    let before = entries(&containers_dir);
    let mounts_before = mounts_under(&c.root()).len();
    let filler = c.root().join("filler");
    let mut failures = Vec::new();
    for _ in 0..8 {
        let keep = KeepFull::start(fill(&filler));
        let out = c.run(["run", "-d", "--name", "full", "box", "sleep", "100"]);
        drop(keep);
        std::fs::remove_file(&filler).unwrap();
        if out.code == 0 {
            c.run(["rm", "-f", "full"]).assert_success();
            continue;
        }
        assert!(
            out.stderr.to_lowercase().contains("no space left on device")
                || out.stderr.contains("disk is full")
                // the database cannot even open: B.6's message, not this test's concern
                || out.stderr.contains("disk I/O error"),
            "{out:?}"
        );
        let ps = c.run(["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
        ps.assert_success();
        if !ps.stdout.trim().is_empty() {
            // Created completely, then its start failed: docker leaves it Created
            // (as after `run -d IMG nonexistent`); it must start once there is room,
            // and go without a trace.
            assert_eq!(ps.stdout, "full Created\n", "left by {out:?}");
            c.run(["start", "full"]).assert_success();
            c.run(["rm", "-f", "full"]).assert_success();
        }
        assert_eq!(
            entries(&containers_dir),
            before,
            "a directory left by {out:?}"
        );
        assert_eq!(
            mounts_under(&c.root()).len(),
            mounts_before,
            "a mount left by {out:?}"
        );
        failures.push(out.stderr);
    }
    eprintln!("failures: {failures:#?}");
    assert!(!failures.is_empty(), "some attempt ran out of space");
    c.run(["run", "-d", "--name", "full", "box", "sleep", "100"])
        .assert_success();
}
