//! The docker CLI surface scripts use (Issue 11 C.3): `version`, the `container`
//! namespace, `system df`/`system prune`, prune and list filters.

use crate::common::*;

/// `version` did not exist (clap: unrecognized subcommand, exit 125).
#[test]
fn version_prints_client_and_server_like_docker() {
    let c = coracle();
    let out = c.run(["version"]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("Client:"), "{}", out.stdout);
    assert!(out.stdout.contains("\nServer:"), "{}", out.stdout);
    assert!(out.stdout.contains(" Engine:\n"), "{}", out.stdout);
    for field in [" Version:", " API version:", " OS/Arch:", " Context:"] {
        assert!(
            out.stdout.contains(field),
            "{field} missing: {}",
            out.stdout
        );
    }
    assert!(out.stdout.contains("(minimum version "), "{}", out.stdout);

    let v = c.run(["version", "--format", "{{.Server.Version}}"]);
    v.assert_success();
    assert_eq!(v.stdout, format!("{}\n", env!("CARGO_PKG_VERSION")));
    let api = c.run([
        "version",
        "-f",
        "{{.Client.ApiVersion}}/{{.Server.ApiVersion}}",
    ]);
    assert_eq!(api.stdout, "1.44/1.44\n");

    let j = c.run(["version", "--format", "{{json .}}"]);
    j.assert_success();
    let v: serde_json::Value = serde_json::from_str(j.stdout.trim()).expect("JSON");
    assert_eq!(v["Server"]["Components"][0]["Name"], "Engine");
    assert_eq!(v["Client"]["Os"], "linux");
    assert!(v["Server"]["KernelVersion"].is_string());
    let j2 = c.run(["version", "--format", "json"]);
    assert_eq!(j2.stdout.trim(), j.stdout.trim());
}

/// Every `container` subcommand docker has is the top-level command of the same name.
/// Before: only `container ls|inspect|rename|prune` existed; `container run` and the
/// rest were "unrecognized subcommand" (exit 125).
#[test]
fn container_namespace_runs_the_lifecycle() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let out = c.run(["container", "run", "--rm", "box", "echo", "hi"]);
    out.assert_success();
    assert_eq!(out.stdout, "hi\n");

    let id = c.run(["container", "create", "--name", "ns", "box", "sleep", "300"]);
    id.assert_success();
    let id = id.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "create prints the id: {id}");
    c.run(["container", "start", "ns"]).assert_success();
    let exec = c.run(["container", "exec", "ns", "echo", "inside"]);
    assert_eq!(exec.stdout, "inside\n");
    let top = c.run(["container", "top", "ns"]);
    top.assert_success();
    assert!(top.stdout.contains("sleep 300"), "{}", top.stdout);
    let stats = c.run([
        "container",
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}",
        "ns",
    ]);
    assert_eq!(stats.stdout, "ns\n");
    c.run(["container", "pause", "ns"]).assert_success();
    let state = c.run(["container", "inspect", "-f", "{{.State.Status}}", "ns"]);
    assert_eq!(state.stdout, "paused\n");
    c.run(["container", "unpause", "ns"]).assert_success();
    let f = c.tmp().join("f.txt");
    std::fs::write(&f, "copied").unwrap();
    c.run(["container", "cp", f.to_str().unwrap(), "ns:/tmp/f.txt"])
        .assert_success();
    let cat = c.run(["container", "exec", "ns", "cat", "/tmp/f.txt"]);
    assert_eq!(cat.stdout, "copied");
    c.run(["container", "port", "ns"]).assert_success();
    c.run(["container", "rename", "ns", "ns2"]).assert_success();
    c.run(["container", "restart", "-t", "0", "ns2"])
        .assert_success();
    c.run(["container", "kill", "ns2"]).assert_success();
    let wait = c.run(["container", "wait", "ns2"]);
    assert_eq!(wait.stdout, "137\n");
    c.run(["container", "start", "ns2"]).assert_success();
    c.run(["container", "stop", "-t", "0", "ns2"])
        .assert_success();
    let logs = c.run(["container", "run", "--name", "lg", "box", "echo", "logged"]);
    logs.assert_success();
    assert_eq!(c.run(["container", "logs", "lg"]).stdout, "logged\n");
    let ls = c.run(["container", "ls", "-a", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = ls.stdout.lines().collect();
    names.sort();
    assert_eq!(names, ["lg", "ns2"]);
    c.run(["container", "rm", "lg"]).assert_success();
    c.run(["container", "remove", "ns2"]).assert_success();
    assert_eq!(c.run(["container", "ls", "-aq"]).stdout, "");

    // attach: the container waits for a line on stdin, which only the attach sends.
    c.run([
        "container",
        "create",
        "-i",
        "--name",
        "at",
        "box",
        "sh",
        "-c",
        "read x; echo got $x",
    ])
    .assert_success();
    c.run(["container", "start", "at"]).assert_success();
    let at = c.run_stdin(["container", "attach", "at"], b"hello\n");
    at.assert_success();
    assert_eq!(at.stdout, "got hello\n");
    c.run(["container", "rm", "-f", "at"]).assert_success();
}

/// A summary row of `system df --format json`, by TYPE.
fn df_row(c: &Coracle, kind: &str) -> serde_json::Value {
    let out = c.run(["system", "df", "--format", "json"]);
    out.assert_success();
    out.stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON row"))
        .find(|v| v["Type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} row: {}", out.stdout))
}

/// `system df` and `system prune` did not exist (only `system boot`: "unrecognized
/// subcommand", exit 125).
#[test]
fn system_df_and_prune_count_and_free() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let out = c.run(["system", "df"]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
    for (i, kind) in ["Images", "Containers", "Local Volumes", "Build Cache"]
        .iter()
        .enumerate()
    {
        assert!(lines[i + 1].starts_with(kind), "{}", out.stdout);
    }

    // A stopped container that wrote 100 kB, a running one, an anonymous volume and
    // a named one, an unused network.
    c.run([
        "run",
        "--name",
        "wrote",
        "-v",
        "/anon",
        "box",
        "sh",
        "-c",
        "dd if=/dev/zero of=/big bs=1000 count=100 2>/dev/null; echo x > /anon/f",
    ])
    .assert_success();
    c.run(["run", "-d", "--name", "up", "box", "sleep", "300"])
        .assert_success();
    c.run(["volume", "create", "named"]).assert_success();
    c.run(["network", "create", "spare"]).assert_success();
    let images = df_row(&c, "Images");
    assert_eq!(images["TotalCount"], "1");
    assert_eq!(images["Active"], "1");
    let containers = df_row(&c, "Containers");
    assert_eq!(containers["TotalCount"], "2");
    assert_eq!(containers["Active"], "1");
    let reclaim = containers["Reclaimable"].as_str().unwrap();
    assert!(reclaim.starts_with("100kB ("), "{reclaim}");
    let volumes = df_row(&c, "Local Volumes");
    assert_eq!(volumes["TotalCount"], "2");
    assert_eq!(volumes["Active"], "1");

    let v = c.run(["system", "df", "-v"]);
    v.assert_success();
    for title in [
        "Images space usage:",
        "Containers space usage:",
        "Local Volumes space usage:",
        "Build cache usage: 0B",
    ] {
        assert!(v.stdout.contains(title), "{title}: {}", v.stdout);
    }
    let has_header = |cols: &[&str]| {
        v.stdout.lines().any(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .eq(cols.iter().copied())
        })
    };
    assert!(
        has_header(&["VOLUME NAME", "LINKS", "SIZE"]),
        "{}",
        v.stdout
    );
    assert!(
        has_header(&[
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS"
        ]),
        "{}",
        v.stdout
    );

    // Without -f and no answer (stdin at EOF): docker's prompt, nothing removed.
    let asked = c.run_stdin(["system", "prune"], b"");
    asked.assert_success();
    assert_eq!(
        asked.stdout,
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(df_row(&c, "Containers")["TotalCount"], "2");

    let wrote_id = c.run(["inspect", "-f", "{{.Id}}", "wrote"]).stdout;
    let pruned = c.run(["system", "prune", "-f", "--volumes"]);
    pruned.assert_success();
    assert!(
        pruned
            .stdout
            .starts_with(&format!("Deleted Containers:\n{wrote_id}\n")),
        "{}",
        pruned.stdout
    );
    assert!(
        pruned.stdout.contains("Deleted Networks:\nspare\n\n"),
        "{}",
        pruned.stdout
    );
    assert!(
        pruned.stdout.contains("Deleted Volumes:\n"),
        "{}",
        pruned.stdout
    );
    // The container's 100 kB and the anonymous volume's 2 bytes.
    assert!(
        pruned
            .stdout
            .ends_with("\n\nTotal reclaimed space: 100kB\n"),
        "{}",
        pruned.stdout
    );
    // The running container, its image and the named volume stay.
    let names = c.run(["ps", "-a", "--format", "{{.Names}}"]).stdout;
    assert_eq!(names, "up\n");
    assert_eq!(c.run(["volume", "ls", "-q"]).stdout, "named\n");
    assert_eq!(df_row(&c, "Images")["TotalCount"], "1");

    // -a: the image once nothing uses it.
    c.run(["rm", "-f", "up"]).assert_success();
    let all = c.run(["system", "prune", "-af"]);
    all.assert_success();
    assert!(
        all.stdout.starts_with("Deleted Images:\n"),
        "{}",
        all.stdout
    );
    assert!(
        all.stdout.contains("\nuntagged: box:latest\n"),
        "{}",
        all.stdout
    );
    assert!(
        all.stdout.contains("\nTotal reclaimed space: 1.98"),
        "{}",
        all.stdout
    );
    assert_eq!(df_row(&c, "Images")["TotalCount"], "0");
    assert_eq!(c.run(["images", "-q"]).stdout, "");
}

/// Three one-file images with distinct creation dates and labels, pulled and tagged
/// `old`, `mid` and `new`.
fn three_images() -> (Registry, Coracle) {
    let reg = Registry::start().expect("start registry");
    let c = coracle();
    for (name, created, label) in [
        ("old", "2020-01-01T00:00:00Z", ("keep", "yes")),
        ("mid", "2022-01-01T00:00:00Z", ("tier", "a")),
        ("new", "2024-01-01T00:00:00Z", ("tier", "b")),
    ] {
        let image = ImageBuilder::new()
            .layer(&Layer::new().file(&format!("/{name}"), name, 0o644))
            .created(created)
            .label(label.0, label.1)
            .build();
        push(&reg.host(), &format!("t/{name}"), "latest", &image, None).expect("push");
        let remote = format!("{}/t/{name}", reg.host());
        c.run(["pull", "-q", &remote]).assert_success();
        c.run(["tag", &remote, name]).assert_success();
        c.run(["rmi", &remote]).assert_success();
    }
    (reg, c)
}

fn image_names(c: &Coracle, filters: &[&str]) -> Vec<String> {
    let mut args = vec!["images", "--format", "{{.Repository}}"];
    for f in filters {
        args.extend(["--filter", f]);
    }
    let out = c.run(&args);
    out.assert_success();
    let mut v: Vec<String> = out.stdout.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// Before: `images --filter before=|since=|label=` were "invalid filter" (125) and
/// `image prune --filter` an unknown flag (125).
#[test]
fn image_filters_select_by_date_and_label() {
    let (_reg, c) = three_images();
    assert_eq!(image_names(&c, &[]), ["mid", "new", "old"]);
    assert_eq!(image_names(&c, &["before=mid"]), ["old"]);
    assert_eq!(image_names(&c, &["since=mid"]), ["new"]);
    assert_eq!(image_names(&c, &["since=old", "before=new"]), ["mid"]);
    assert_eq!(image_names(&c, &["label=tier"]), ["mid", "new"]);
    assert_eq!(image_names(&c, &["label=tier=b"]), ["new"]);
    assert_eq!(image_names(&c, &["label!=tier"]), ["old"]);
    let missing = c.run(["images", "--filter", "before=nosuch"]);
    assert_eq!(missing.code, 1, "{missing:?}");

    // Without -a only dangling images go: none here, whatever the filter.
    let none = c.run(["image", "prune", "-f", "--filter", "label=tier=a"]);
    none.assert_success();
    assert_eq!(none.stdout, "Total reclaimed space: 0B\n");
    let mid = c.run(["image", "prune", "-af", "--filter", "label=tier=a"]);
    mid.assert_success();
    assert!(
        mid.stdout.contains("untagged: mid:latest\n"),
        "{}",
        mid.stdout
    );
    assert_eq!(image_names(&c, &[]), ["new", "old"]);
    let unlabelled = c.run(["image", "prune", "-af", "--filter", "label!=keep"]);
    assert!(
        unlabelled.stdout.contains("untagged: new:latest\n"),
        "{}",
        unlabelled.stdout
    );
    assert_eq!(image_names(&c, &[]), ["old"]);
    // until= keeps images created after it.
    c.run([
        "image",
        "prune",
        "-af",
        "--filter",
        "until=2019-06-01T00:00:00Z",
    ])
    .assert_success();
    assert_eq!(image_names(&c, &[]), ["old"]);
    c.run([
        "image",
        "prune",
        "-af",
        "--filter",
        "until=2021-01-01T00:00:00Z",
    ])
    .assert_success();
    assert_eq!(image_names(&c, &[]), Vec::<String>::new());
    let bad = c.run(["image", "prune", "-af", "--filter", "color=red"]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("invalid filter 'color'"),
        "{}",
        bad.stderr
    );
}

fn volume_names(c: &Coracle, filters: &[&str]) -> Vec<String> {
    let mut args = vec!["volume", "ls", "-q"];
    for f in filters {
        args.extend(["--filter", f]);
    }
    let out = c.run(&args);
    out.assert_success();
    let mut v: Vec<String> = out.stdout.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// Before: `volume ls --filter` and `volume prune -a|--filter` were unknown flags
/// (125), and `volume prune` removed named volumes too (docker 23+ keeps them
/// without `-a`).
#[test]
fn volume_filters_and_prune_all() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run(["volume", "create", "--label", "env=prod", "prod"])
        .assert_success();
    c.run(["volume", "create", "--label", "env=dev", "dev"])
        .assert_success();
    c.run(["volume", "create", "used"]).assert_success();
    c.run([
        "create", "--name", "holder", "-v", "used:/u", "-v", "/anon", "box", "true",
    ])
    .assert_success();
    let anon = c.run([
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}",
        "holder",
    ]);
    let anon = anon.stdout.trim().to_string();
    assert_eq!(anon.len(), 64, "the anonymous volume's name: {anon:?}");

    assert_eq!(volume_names(&c, &["label=env"]), ["dev", "prod"]);
    assert_eq!(volume_names(&c, &["label=env=prod"]), ["prod"]);
    assert_eq!(volume_names(&c, &["name=pro"]), ["prod"]);
    assert_eq!(volume_names(&c, &["dangling=true"]), ["dev", "prod"]);
    let mut in_use = vec![anon.clone(), "used".to_string()];
    in_use.sort();
    assert_eq!(volume_names(&c, &["dangling=false"]), in_use);
    assert_eq!(volume_names(&c, &["driver=local"]).len(), 4);
    assert!(volume_names(&c, &["driver=nfs"]).is_empty());
    let bad = c.run(["volume", "ls", "--filter", "color=red"]);
    assert_ne!(bad.code, 0);

    // The anonymous volume, once its container is gone without -v, is what a plain
    // prune takes; named volumes stay.
    c.run(["rm", "holder"]).assert_success();
    let plain = c.run(["volume", "prune", "-f"]);
    plain.assert_success();
    assert_eq!(
        plain.stdout,
        format!("Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 0B\n")
    );
    assert_eq!(volume_names(&c, &[]), ["dev", "prod", "used"]);
    let asked = c.run_stdin(["volume", "prune", "-a"], b"");
    assert!(asked.stdout.starts_with("WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "), "{}", asked.stdout);
    assert_eq!(volume_names(&c, &[]), ["dev", "prod", "used"]);
    let dev = c.run(["volume", "prune", "-af", "--filter", "label=env=dev"]);
    assert!(
        dev.stdout.starts_with("Deleted Volumes:\ndev\n"),
        "{}",
        dev.stdout
    );
    let rest = c.run(["volume", "prune", "-af", "--filter", "label!=env"]);
    assert!(
        rest.stdout.starts_with("Deleted Volumes:\nused\n"),
        "{}",
        rest.stdout
    );
    assert_eq!(volume_names(&c, &[]), ["prod"]);
}

/// `volume create -d local` works, with the local driver's options
/// (tests/testsuite/volume_opts.rs mounts them); an unknown option is refused by name. Before: `-d` and `-o` were
/// unknown flags (125).
#[test]
fn volume_create_driver_and_refused_options() {
    let c = coracle();
    let made = c.run(["volume", "create", "-d", "local", "plain"]);
    made.assert_success();
    assert_eq!(made.stdout, "plain\n");
    let tmpfs = c.run([
        "volume",
        "create",
        "-d",
        "local",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "fast",
    ]);
    tmpfs.assert_success();
    let bad = c.run(["volume", "create", "-o", "colour=red", "odd"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(
        bad.stderr.contains("invalid option: \"colour\""),
        "{}",
        bad.stderr
    );
    let nfs = c.run(["volume", "create", "--driver", "nfs", "remote"]);
    assert_eq!(nfs.code, 1);
    assert!(
        nfs.stderr.contains("plugin \"nfs\" not found"),
        "{}",
        nfs.stderr
    );
    assert_eq!(c.run(["volume", "ls", "-q"]).stdout, "fast\nplain\n");
}
