//! `ps`, `inspect`, `rename` and `container prune` against real containers: ones that
//! ran to their end in the foreground and one kept running by a background `run`.

use crate::common::*;
use serde_json::Value;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A container kept running by a foreground `run` in a child process; removed (and
/// the child reaped) when dropped.
struct Running<'a> {
    c: &'a Coracle,
    name: String,
    child: Child,
}

impl<'a> Running<'a> {
    fn start(c: &'a Coracle, name: &str, extra: &[&str]) -> Running<'a> {
        let mut args = vec!["run", "--name", name];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["box", "sleep", "1000"]);
        let child = c
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let r = Running {
            c,
            name: name.to_string(),
            child,
        };
        wait_for("the container to run", || {
            let out = c.run(["ps", "--format", "{{.Names}}"]);
            out.stdout.lines().any(|l| l == name)
        });
        r
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.c.run(["rm", "-f", &self.name]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Our own child, by pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(out: &Output) -> Vec<String> {
    out.stdout.lines().map(str::to_string).collect()
}

fn names(c: &Coracle, args: &[&str]) -> Vec<String> {
    let mut all = vec!["ps", "--format", "{{.Names}}"];
    all.extend_from_slice(args);
    let out = c.run(all);
    out.assert_success();
    lines(&out)
}

fn inspect_one(c: &Coracle, name: &str) -> Value {
    let out = c.run(["inspect", name]);
    out.assert_success();
    let v: Value = serde_json::from_str(&out.stdout).expect("inspect prints JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{}", out.stdout);
    v[0].clone()
}

/// `zero` exited 0, `three` exited 3 (both in the foreground).
fn two_exited(c: &Coracle) {
    c.run(["run", "--name", "zero", "box", "true"])
        .assert_success();
    c.run([
        "run", "--name", "three", "--label", "keep=1", "box", "sh", "-c", "exit 3",
    ])
    .assert_code(3);
}

#[test]
fn ps_columns_states_and_flags() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    two_exited(&c);
    let _r = Running::start(&c, "sleeper", &["--label", "tier=front"]);

    let out = c.run(["ps"]);
    out.assert_success();
    let l = lines(&out);
    assert_eq!(l.len(), 2, "{}", out.stdout);
    assert!(
        l[0].starts_with("CONTAINER ID   IMAGE     COMMAND        CREATED"),
        "{}",
        out.stdout
    );
    assert!(
        l[0].contains("   STATUS   ") && l[0].ends_with("PORTS     NAMES"),
        "{}",
        l[0]
    );
    let row = &l[1];
    assert_eq!(row.split_whitespace().nth(1), Some("box"), "{row}");
    assert!(row.contains("\"sleep 1000\""), "{row}");
    assert!(row.contains(" ago   Up "), "{row}");
    assert!(row.ends_with(" sleeper"), "{row}");
    let id = row.split_whitespace().next().unwrap();
    assert_eq!(id.len(), 12);

    // Newest first; exited containers with their codes.
    let out = c.run(["ps", "-a", "--format", "{{.Names}}|{{.Status}}|{{.State}}"]);
    let l = lines(&out);
    assert_eq!(l.len(), 3, "{}", out.stdout);
    assert!(
        l[0].starts_with("sleeper|Up ") && l[0].ends_with("|running"),
        "{}",
        l[0]
    );
    assert!(
        l[1].starts_with("three|Exited (3) ") && l[1].ends_with(" ago|exited"),
        "{}",
        l[1]
    );
    assert!(l[2].starts_with("zero|Exited (0) "), "{}", l[2]);

    let out = c.run(["ps", "-aq"]);
    assert_eq!(lines(&out).len(), 3);
    assert!(lines(&out).iter().all(|i| i.len() == 12));
    let out = c.run(["ps", "-q", "--no-trunc"]);
    assert_eq!(lines(&out).len(), 1);
    assert_eq!(lines(&out)[0].len(), 64);
    assert!(lines(&out)[0].starts_with(id));
    assert_eq!(names(&c, &["-l"]), ["sleeper"]);
    assert_eq!(names(&c, &["-n", "2"]), ["sleeper", "three"]);

    // Commands are quoted and cut at 20 characters as docker does.
    let out = c.run([
        "ps",
        "-a",
        "--filter",
        "name=^three$",
        "--format",
        "{{.Command}}",
    ]);
    assert_eq!(out.stdout, "\"sh -c 'exit 3'\"\n");
    c.run([
        "run",
        "--name",
        "long",
        "box",
        "echo",
        "a long argument list here",
    ])
    .assert_success();
    let out = c.run(["ps", "-l", "--format", "{{.Command}}"]);
    assert_eq!(out.stdout, "\"echo 'a long argume…\"\n");
    let out = c.run(["ps", "-l", "--no-trunc", "--format", "{{.Command}}"]);
    assert_eq!(out.stdout, "\"echo 'a long argument list here'\"\n");
    c.run(["rm", "long"]).assert_success();

    let out = c.run(["ps", "-a", "--format", "table {{.ID}}\\t{{.Names}}"]);
    let l = lines(&out);
    assert_eq!(l[0], "CONTAINER ID   NAMES");
    assert_eq!(l.len(), 4);

    let out = c.run(["ps", "-a", "--format", "json"]);
    out.assert_success();
    let rows: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3);
    for key in [
        "Command",
        "CreatedAt",
        "ID",
        "Image",
        "Labels",
        "LocalVolumes",
        "Mounts",
        "Names",
        "Networks",
        "Ports",
        "RunningFor",
        "Size",
        "State",
        "Status",
    ] {
        assert!(rows[0].get(key).is_some(), "{key} missing: {}", rows[0]);
    }
    assert_eq!(rows[0]["Labels"], "tier=front");
    assert_eq!(rows[0]["Size"], "0B", "no size unless asked");

    let out = c.run(["ps", "-a", "--format", "{{.Names}}={{.Label \"tier\"}}"]);
    assert_eq!(lines(&out), ["sleeper=front", "three=", "zero="]);

    // -s: the writable layer, and the image beside it.
    let out = c.run(["ps", "-a", "-s", "--filter", "name=^zero$"]);
    let l = lines(&out);
    assert!(l[0].ends_with("NAMES     SIZE"), "{}", l[0]);
    assert!(
        l[1].contains(" zero   ") && l[1].contains("(virtual "),
        "{}",
        l[1]
    );
    let out = c.run([
        "ps",
        "-a",
        "--filter",
        "name=^zero$",
        "--format",
        "{{.Size}}",
    ]);
    assert!(
        out.stdout.contains("(virtual "),
        ".Size asks for sizes: {}",
        out.stdout
    );
}

#[test]
fn ps_filters_follow_docker() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    two_exited(&c);
    let _r = Running::start(&c, "sleeper", &["--label", "tier=front"]);

    assert_eq!(names(&c, &["--filter", "status=exited"]), ["three", "zero"]);
    assert_eq!(names(&c, &["--filter", "status=running"]), ["sleeper"]);
    assert_eq!(
        names(
            &c,
            &["--filter", "status=running", "--filter", "status=exited"]
        ),
        ["sleeper", "three", "zero"],
        "values of one key are alternatives"
    );
    assert_eq!(names(&c, &["-a", "--filter", "exited=3"]), ["three"]);
    assert_eq!(names(&c, &["-a", "--filter", "exited=0"]), ["zero"]);
    assert!(
        names(&c, &["--filter", "exited=0"]).is_empty(),
        "exited= needs -a"
    );
    assert_eq!(names(&c, &["-a", "--filter", "name=^zero$"]), ["zero"]);
    assert_eq!(names(&c, &["-a", "--filter", "name=/three"]), ["three"]);
    assert_eq!(names(&c, &["--filter", "label=tier"]), ["sleeper"]);
    assert_eq!(names(&c, &["-a", "--filter", "label=keep=1"]), ["three"]);
    assert!(names(&c, &["-a", "--filter", "label=keep=2"]).is_empty());
    assert_eq!(
        names(
            &c,
            &["-a", "--filter", "label=keep", "--filter", "status=running"]
        ),
        Vec::<String>::new(),
        "different keys must all hold"
    );
    assert_eq!(
        names(&c, &["-a", "--filter", "ancestor=box"]),
        ["sleeper", "three", "zero"]
    );
    assert!(names(&c, &["-a", "--filter", "ancestor=nosuch:1"]).is_empty());
    assert_eq!(names(&c, &["-a", "--filter", "health=none"]).len(), 3);
    assert_eq!(
        names(&c, &["-a", "--filter", "before=sleeper"]),
        ["three", "zero"]
    );
    assert!(
        names(&c, &["--filter", "before=sleeper"]).is_empty(),
        "without -a only running containers, as docker 25+"
    );
    assert_eq!(
        names(&c, &["-a", "--filter", "since=zero"]),
        ["sleeper", "three"]
    );
    // The default network is docker's `bridge`.
    assert_eq!(names(&c, &["-a", "--filter", "network=bridge"]).len(), 3);
    assert!(names(&c, &["-a", "--filter", "network=none"]).is_empty());
    let id_b = c.run(["ps", "-aq", "--filter", "name=^three$"]).stdout;
    assert_eq!(
        names(
            &c,
            &["-a", "--filter", &format!("id={}", &id_b.trim()[..6])]
        ),
        ["three"]
    );

    let out = c.run(["ps", "--filter", "status=bogus"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("invalid filter 'status=bogus'"),
        "{}",
        out.stderr
    );
    let out = c.run(["ps", "--filter", "color=red"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("invalid filter 'color'"),
        "{}",
        out.stderr
    );
    let out = c.run(["ps", "--filter", "nokey"]);
    assert_eq!(out.code, 125);
    assert!(
        out.stderr
            .contains("bad format of filter (expected name=value)"),
        "{}",
        out.stderr
    );
    let out = c.run(["ps", "--filter", "before=nosuch"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("No such container: nosuch"),
        "{}",
        out.stderr
    );

    // The management-command forms.
    for alias in ["ls", "ps", "list"] {
        let out = c.run(["container", alias, "-aq"]);
        out.assert_success();
        assert_eq!(lines(&out).len(), 3, "container {alias}");
    }
}

#[test]
fn inspect_containers_in_docker_shape() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let host = tempfile::tempdir().unwrap();
    let bind = format!("{}:/data:ro", host.path().display());
    c.run([
        "run",
        "--name",
        "zero",
        "--label",
        "k=v",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-v",
        &bind,
        "-v",
        "named:/vol",
        "box",
        "true",
    ])
    .assert_success();
    c.run(["run", "--name", "three", "box", "sh", "-c", "exit 3"])
        .assert_code(3);

    let v = inspect_one(&c, "zero");
    let id = v["Id"].as_str().unwrap();
    assert_eq!(id.len(), 64);
    assert_eq!(v["Name"], "/zero");
    assert_eq!(v["Path"], "true");
    assert_eq!(v["Args"], serde_json::json!([]));
    assert!(v["Image"].as_str().unwrap().starts_with("sha256:"));
    // RFC 3339 with nanoseconds, as docker: 2024-05-01T12:00:00.123456789Z.
    let created = v["Created"].as_str().unwrap();
    assert_eq!(
        (
            created.len(),
            &created[10..11],
            &created[19..20],
            &created[29..]
        ),
        (30, "T", ".", "Z"),
        "{created}"
    );
    let s = &v["State"];
    assert_eq!(s["Status"], "exited");
    assert_eq!(
        (&s["Running"], &s["Paused"], &s["Restarting"], &s["Dead"]),
        (
            &Value::Bool(false),
            &Value::Bool(false),
            &Value::Bool(false),
            &Value::Bool(false)
        )
    );
    assert_eq!(
        (s["Pid"].as_i64(), s["ExitCode"].as_i64()),
        (Some(0), Some(0))
    );
    assert_ne!(s["StartedAt"], "0001-01-01T00:00:00Z");
    assert_ne!(s["FinishedAt"], "0001-01-01T00:00:00Z");
    assert!(s.get("Health").is_none(), "no check, no Health");
    assert_eq!(v["RestartCount"], 0);
    assert_eq!(v["Platform"], "linux");
    assert!(v["LogPath"]
        .as_str()
        .unwrap()
        .ends_with(&format!("{id}-json.log")));
    assert!(v["HostsPath"].as_str().unwrap().ends_with("/hosts"));
    assert_eq!(v["GraphDriver"]["Name"], "overlay");
    assert!(v["GraphDriver"]["Data"]["UpperDir"].is_string());
    let cfg = &v["Config"];
    assert_eq!(cfg["Image"], "box");
    assert_eq!(cfg["Labels"]["k"], "v");
    assert_eq!(cfg["WorkingDir"], "/tmp");
    assert_eq!(cfg["Hostname"], &id[..12]);
    assert!(cfg["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "FOO=bar"));
    assert_eq!(cfg["Cmd"], serde_json::json!(["true"]));
    let hc = &v["HostConfig"];
    assert_eq!(hc["RestartPolicy"]["Name"], "no");
    assert_eq!(hc["LogConfig"]["Type"], "json-file");
    assert_eq!(hc["Binds"], serde_json::json!([bind, "named:/vol"]));
    let m = v["Mounts"].as_array().unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0]["Type"], "bind");
    assert_eq!(m[0]["Source"], host.path().display().to_string());
    assert_eq!(
        (
            &m[0]["Destination"],
            &m[0]["Mode"],
            &m[0]["RW"],
            &m[0]["Propagation"]
        ),
        (
            &Value::from("/data"),
            &Value::from("ro"),
            &Value::Bool(false),
            &Value::from("rprivate")
        )
    );
    assert_eq!(
        (&m[1]["Type"], &m[1]["Name"], &m[1]["Driver"], &m[1]["RW"]),
        (
            &Value::from("volume"),
            &Value::from("named"),
            &Value::from("local"),
            &Value::Bool(true)
        )
    );
    // docker's 4-space indentation and field order.
    let raw = c.run(["inspect", "zero"]).stdout;
    assert!(raw.starts_with("[\n    {\n        \"Id\": "), "{raw}");
    assert!(raw.find("\"State\"").unwrap() < raw.find("\"HostConfig\"").unwrap());

    let f = |args: &[&str]| {
        let mut all = vec!["inspect", "-f"];
        all.extend_from_slice(args);
        let out = c.run(all);
        out.assert_success();
        out.stdout
    };
    assert_eq!(f(&["{{.State.Status}}", "zero"]), "exited\n");
    assert_eq!(f(&["{{.State.ExitCode}}", "three"]), "3\n");
    assert_eq!(f(&["{{.RestartCount}}", "three"]), "0\n");
    assert_eq!(f(&["{{json .Config.Labels}}", "zero"]), "{\"k\":\"v\"}\n");
    assert_eq!(f(&["{{.Config.Labels.k}}", "zero"]), "v\n");
    assert_eq!(f(&["{{.Config.Cmd}}", "three"]), "[sh -c exit 3]\n");
    assert_eq!(
        f(&["{{.Name}} {{.State.Running}}", "zero", "three"]),
        "/zero false\n/three false\n"
    );
    let out = c.run(["container", "inspect", "--format", "{{.Id}}", "zero"]);
    assert_eq!(out.stdout.trim(), id);

    // Containers before images; --type narrows; several names give one array.
    let out = c.run(["inspect", "zero", "box"]);
    out.assert_success();
    let both: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(both[0]["Name"], "/zero");
    assert!(both[1]["RepoTags"].is_array());
    let out = c.run(["inspect", "--type", "image", "zero"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("No such image"), "{}", out.stderr);
    let out = c.run(["inspect", "--type", "container", "box"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr, "Error: No such container: box\n");
    let out = c.run(["inspect", "nosuch"]);
    assert_eq!((out.code, out.stdout.as_str()), (1, "[]\n"));
    assert_eq!(out.stderr, "Error: No such object: nosuch\n");
    let out = c.run(["inspect", "zero", "nosuch"]);
    assert_eq!(out.code, 1);
    let found: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1);
    let out = c.run(["container", "inspect", "nosuch"]);
    assert_eq!(out.stderr, "Error: No such container: nosuch\n");
    let out = c.run(["inspect", "-f", "{{.State.Status", "zero"]);
    assert_eq!(
        out.code, 64,
        "docker's code for a bad template: {}",
        out.stderr
    );
    let out = c.run(["inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", "zero"]);
    let sizes: Vec<u64> = out
        .stdout
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(sizes[1] > sizes[0], "{}", out.stdout);
}

#[test]
fn inspect_running_container() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let _r = Running::start(&c, "sleeper", &["--restart", "no"]);
    let v = inspect_one(&c, "sleeper");
    let s = &v["State"];
    assert_eq!(s["Status"], "running");
    assert_eq!(s["Running"], true);
    assert_eq!(s["FinishedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(v["Path"], "sleep");
    assert_eq!(v["Args"], serde_json::json!(["1000"]));
    let pid = s["Pid"].as_i64().unwrap();
    assert!(pid > 0, "State.Pid of a running container");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmdline.starts_with(b"sleep\0"),
        "State.Pid is the container's init"
    );
}

#[test]
fn rename_follows_docker() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    two_exited(&c);
    let r = c.run(["rename", "zero", "zero"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("Renaming a container with the same name as its current name"),
        "{}",
        r.stderr
    );
    let id_b = c
        .run(["ps", "-aq", "--no-trunc", "--filter", "name=^three$"])
        .stdout;
    let r = c.run(["rename", "zero", "three"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        format!(
            "Error: failed to rename container: Error when allocating new name: Conflict. The container name \"/three\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.\n",
            id_b.trim()
        )
    );
    let r = c.run(["rename", "zero", "bad/name"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("Invalid container name (/bad/name)"),
        "{}",
        r.stderr
    );
    let r = c.run(["rename", "nosuch", "x"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("No such container: nosuch"),
        "{}",
        r.stderr
    );

    c.run(["rename", "zero", "renamed"]).assert_success();
    assert_eq!(names(&c, &["-a"]), ["three", "renamed"]);
    assert_eq!(inspect_one(&c, "renamed")["Name"], "/renamed");
    c.run(["container", "rename", "renamed", "/again"])
        .assert_success();
    assert_eq!(names(&c, &["-a", "--filter", "name=again"]), ["again"]);

    let _r = Running::start(&c, "sleeper", &[]);
    c.run(["rename", "sleeper", "sleeper2"]).assert_success();
    assert_eq!(names(&c, &[]), ["sleeper2"]);
    // Removal in Running's drop uses the old name: rename it back.
    c.run(["rename", "sleeper2", "sleeper"]).assert_success();
}

#[test]
fn container_prune_removes_stopped_containers() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    two_exited(&c);
    c.run(["create", "--name", "fresh", "box", "true"])
        .assert_success();
    let _r = Running::start(&c, "sleeper", &[]);
    let id = |n: &str| {
        c.run([
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("name=^{n}$"),
        ])
        .stdout
        .trim()
        .to_string()
    };
    let (id_a, id_b, id_fresh) = (id("zero"), id("three"), id("fresh"));

    let out = c.run_stdin(["container", "prune"], b"n\n");
    out.assert_success();
    assert_eq!(
        out.stdout,
        "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(names(&c, &["-a"]).len(), 4, "declined: nothing removed");

    let out = c.run(["container", "prune", "-f", "--filter", "until=1h"]);
    assert_eq!(out.stdout, "Total reclaimed space: 0B\n", "all are newer");

    let out = c.run(["container", "prune", "-f", "--filter", "label=keep=1"]);
    out.assert_success();
    let l = lines(&out);
    assert_eq!(
        l[..3],
        ["Deleted Containers:".to_string(), id_b, String::new()]
    );
    assert!(
        l[3].starts_with("Total reclaimed space: "),
        "{}",
        out.stdout
    );
    assert_eq!(l.len(), 4);

    let out = c.run(["container", "prune", "-f", "--filter", "color=red"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("invalid filter 'color'"),
        "{}",
        out.stderr
    );

    let out = c.run_stdin(["container", "prune"], b"y\n");
    out.assert_success();
    assert!(
        out.stdout.contains("Deleted Containers:\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&id_a) && out.stdout.contains(&id_fresh));
    assert_eq!(
        names(&c, &["-a"]),
        ["sleeper"],
        "the running container stays"
    );
    assert!(!c.root().join("containers").join(&id_a).exists());
}

#[test]
fn health_shows_in_ps_filters_and_inspect() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let _ok = Running::start(
        &c,
        "fine",
        &["--health-cmd", "true", "--health-interval", "300ms"],
    );
    let _bad = Running::start(
        &c,
        "sick",
        &[
            "--health-cmd",
            "false",
            "--health-interval",
            "300ms",
            "--health-retries",
            "1",
        ],
    );
    wait_for("both checks to settle", || {
        let out = c.run(["ps", "--format", "{{.Names}} {{.Status}}"]);
        out.stdout.contains(" (healthy)") && out.stdout.contains(" (unhealthy)")
    });
    let out = c.run(["ps", "--format", "{{.Names}}|{{.Status}}|{{.HealthStatus}}"]);
    let l = lines(&out);
    assert!(
        l[0].starts_with("sick|Up ") && l[0].ends_with(" (unhealthy)|unhealthy"),
        "{}",
        l[0]
    );
    assert!(
        l[1].starts_with("fine|Up ") && l[1].ends_with(" (healthy)|healthy"),
        "{}",
        l[1]
    );
    assert_eq!(names(&c, &["--filter", "health=healthy"]), ["fine"]);
    assert_eq!(names(&c, &["--filter", "health=unhealthy"]), ["sick"]);
    assert!(names(&c, &["--filter", "health=none"]).is_empty());
    let out = c.run(["ps", "--filter", "health=sleepy"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("invalid filter 'health=sleepy'"),
        "{}",
        out.stderr
    );

    let h = &inspect_one(&c, "sick")["State"]["Health"];
    assert_eq!(h["Status"], "unhealthy");
    assert!(h["FailingStreak"].as_i64().unwrap() >= 1);
    let log = h["Log"].as_array().unwrap();
    assert!(!log.is_empty() && log[0]["ExitCode"] == 1, "{h}");
    let cfg = &inspect_one(&c, "fine")["Config"]["Healthcheck"];
    assert_eq!(cfg["Test"], serde_json::json!(["CMD-SHELL", "true"]));
    assert_eq!(cfg["Interval"], 300_000_000);
}

#[test]
fn paused_containers_in_ps_and_inspect() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let _r = Running::start(&c, "sleeper", &[]);
    c.run(["pause", "sleeper"]).assert_success();
    let out = c.run(["ps", "--format", "{{.Status}}|{{.State}}"]);
    let l = lines(&out);
    assert!(
        l[0].starts_with("Up ") && l[0].ends_with(" (Paused)|paused"),
        "{}",
        l[0]
    );
    assert_eq!(names(&c, &["--filter", "status=paused"]), ["sleeper"]);
    let s = &inspect_one(&c, "sleeper")["State"];
    assert_eq!(
        (&s["Status"], &s["Running"], &s["Paused"]),
        (
            &Value::from("paused"),
            &Value::Bool(true),
            &Value::Bool(true)
        )
    );
    c.run(["unpause", "sleeper"]).assert_success();
    assert_eq!(names(&c, &["--filter", "status=running"]), ["sleeper"]);
}

#[test]
fn restarting_containers_in_ps_and_inspect() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run([
        "run",
        "-d",
        "--name",
        "flappy",
        "--restart",
        "always",
        "box",
        "sh",
        "-c",
        "exit 1",
    ])
    .assert_success();
    wait_for("a restart", || {
        let out = c.run(["ps", "-a", "--format", "{{.Status}}"]);
        out.stdout.starts_with("Restarting (1) ") && out.stdout.trim_end().ends_with(" ago")
    });
    // It flips between restarting and (briefly) running: poll.
    wait_for("status=restarting to list it", || {
        names(&c, &["--filter", "status=restarting"]) == ["flappy"]
    });
    wait_for("ps without -a to list it while restarting", || {
        let out = c.run(["ps", "--format", "{{.Names}} {{.State}}"]);
        out.stdout == "flappy restarting\n"
    });
    let v = inspect_one(&c, "flappy");
    assert!(
        v["RestartCount"].as_i64().unwrap() >= 1,
        "{}",
        v["RestartCount"]
    );
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "always");
    c.run(["rm", "-f", "flappy"]).assert_success();
}
