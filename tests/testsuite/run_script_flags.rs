//! `run`/`create` flags that docker scripts lean on: `--cidfile`, `-a`, `-q`,
//! `--volumes-from` and `--link`, each observed as a script would see it.

use crate::common::*;

fn container_count(c: &Coracle) -> usize {
    let out = c.run(["ps", "-aq"]);
    out.assert_success();
    out.stdout.lines().count()
}

#[test]
fn cidfile_holds_the_id_refuses_an_existing_file_and_goes_when_creation_fails() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let file = c.tmp().join("web.cid");
    let file_s = file.to_str().unwrap();
    let out = c.run(["run", "-d", "--cidfile", file_s, "box", "sleep", "60"]);
    out.assert_success();
    let id = out.stdout.trim();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        id,
        "the id, no newline"
    );
    let v = inspect_container(&c, id);
    assert_eq!(v["HostConfig"]["ContainerIDFile"], file_s);

    // A second run of the same script: refused before anything is made.
    let before = container_count(&c);
    let again = c.run(["run", "-d", "--cidfile", file_s, "box", "true"]);
    assert_eq!(again.code, 125, "{}", again.stderr);
    assert!(
        again.stderr.contains(&format!(
            "Container ID file found, make sure the other container isn't running or delete {file_s}"
        )),
        "{}",
        again.stderr
    );
    assert_eq!(container_count(&c), before, "nothing was created");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        id,
        "file untouched"
    );
    let created = c.run(["create", "--cidfile", file_s, "box", "true"]);
    assert_eq!(created.code, 125, "{}", created.stderr);

    // Creation fails (no such image): the file does not stay behind.
    let failed = c.tmp().join("failed.cid");
    let out = c.run([
        "run",
        "--pull",
        "never",
        "--cidfile",
        failed.to_str().unwrap(),
        "nosuchimage",
    ]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(
        !failed.exists(),
        "the cidfile of a failed create is removed"
    );

    let made = c.tmp().join("create.cid");
    let out = c.run(["create", "--cidfile", made.to_str().unwrap(), "box", "true"]);
    out.assert_success();
    assert_eq!(std::fs::read_to_string(&made).unwrap(), out.stdout.trim());
    c.run(["rm", "-f", id]).assert_success();
}

#[test]
fn attach_relays_only_the_named_streams() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let script = "echo to-out; echo to-err >&2";
    let err_only = run(&c, &["-a", "stderr", "box", "sh", "-c", script]);
    err_only.assert_success();
    assert_eq!(err_only.stdout, "", "stdout not attached");
    assert!(err_only.stderr.contains("to-err"), "{}", err_only.stderr);
    let out_only = run(&c, &["--attach", "STDOUT", "box", "sh", "-c", script]);
    out_only.assert_success();
    assert_eq!(out_only.stdout, "to-out\n");
    assert!(!out_only.stderr.contains("to-err"), "{}", out_only.stderr);
    // The exit code still comes back with no output stream attached.
    assert_eq!(
        run(&c, &["-a", "stdin", "box", "sh", "-c", "exit 3"]).code,
        3
    );

    // stdin is relayed to a container whose stdin is open (-i), as docker does.
    let args = [
        "run", "--rm", "-i", "-a", "stdin", "-a", "stdout", "box", "cat",
    ];
    let cat = c.run_stdin(args, b"piped\n");
    assert_eq!(cat.stdout, "piped\n", "{}", cat.stderr);
    let args = ["run", "--rm", "-a", "stdin", "-a", "stdout", "box", "cat"];
    let closed = c.run_stdin(args, b"piped\n");
    closed.assert_success();
    assert_eq!(
        closed.stdout, "",
        "without -i the container's stdin is not open"
    );

    let create = c.run(["create", "-a", "stderr", "box", "true"]);
    create.assert_success();
    let v = inspect_container(&c, create.stdout.trim());
    let cfg = &v["Config"];
    assert_eq!(
        (
            &cfg["AttachStdin"],
            &cfg["AttachStdout"],
            &cfg["AttachStderr"]
        ),
        (
            &serde_json::json!(false),
            &serde_json::json!(false),
            &serde_json::json!(true)
        )
    );

    let both = run(&c, &["-d", "-a", "stdout", "box", "true"]);
    assert_eq!(both.code, 125);
    assert!(
        both.stderr.contains("Conflicting options: -a and -d"),
        "{}",
        both.stderr
    );
    let bad = run(&c, &["-a", "tty", "box", "true"]);
    assert_eq!(bad.code, 125);
    assert!(
        bad.stderr
            .contains("valid streams are STDIN, STDOUT and STDERR"),
        "{}",
        bad.stderr
    );
}

#[test]
fn quiet_pulls_a_missing_image_without_progress() {
    if skip_unless_root() {
        return;
    }
    let (reg, _image) = registry_with_busybox();
    let c = coracle();
    let name = format!("{}/test/busybox", reg.host());
    // --network none: the container stays off any bridge in the host's namespace.
    let out = c.run([
        "run",
        "--rm",
        "-q",
        "--network",
        "none",
        &name,
        "echo",
        "quiet",
    ]);
    out.assert_success();
    assert_eq!(out.stdout, "quiet\n");
    assert_eq!(out.stderr, "", "no pull output with -q");
    c.run(["rmi", &name]).assert_success();
    let out = c.run(["create", "--quiet", "--network", "none", &name, "true"]);
    out.assert_success();
    assert_eq!(out.stderr, "", "no pull output with -q");
    assert_eq!(out.stdout.trim().len(), 64, "only the id: {}", out.stdout);
}

#[test]
fn volumes_from_shares_volumes_and_binds_with_their_modes() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let host = c.tmp().join("shared-bind");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("note"), "from the host\n").unwrap();
    let bind = format!("{}:/bind", host.display());
    let ro_bind = format!("{}:/robind:ro", host.display());
    c.run([
        "create",
        "--name",
        "data",
        "-v",
        "vol1:/data",
        "-v",
        &bind,
        "-v",
        &ro_bind,
        "--tmpfs",
        "/scratch",
        "box",
        "true",
    ])
    .assert_success();

    let write = run(
        &c,
        &[
            "--volumes-from",
            "data",
            "box",
            "sh",
            "-c",
            "echo shared > /data/f && echo ok > /bind/w",
        ],
    );
    write.assert_success();
    assert_eq!(std::fs::read_to_string(host.join("w")).unwrap(), "ok\n");
    let read = run(
        &c,
        &[
            "--volumes-from",
            "data",
            "box",
            "sh",
            "-c",
            "cat /data/f /bind/note; mountpoint -q /scratch || echo no-tmpfs",
        ],
    );
    assert_eq!(
        read.stdout, "shared\nfrom the host\nno-tmpfs\n",
        "{}",
        read.stderr
    );
    // The other container's read-only mount stays read-only, even with :rw.
    let ro = run(
        &c,
        &["--volumes-from", "data:rw", "box", "touch", "/robind/x"],
    );
    assert_ne!(ro.code, 0);
    assert!(ro.stderr.contains("Read-only file system"), "{}", ro.stderr);
    // :ro makes every mount read-only.
    let ro = run(
        &c,
        &["--volumes-from", "data:ro", "box", "touch", "/data/x"],
    );
    assert_ne!(ro.code, 0);
    assert!(ro.stderr.contains("Read-only file system"), "{}", ro.stderr);
    // The container's own -v at the same place wins.
    let own = run(
        &c,
        &[
            "-v",
            "other:/data",
            "--volumes-from",
            "data",
            "box",
            "ls",
            "/data",
        ],
    );
    assert_eq!(own.stdout, "", "{}", own.stderr);

    c.run([
        "create",
        "--name",
        "reader",
        "--volumes-from",
        "data:ro",
        "box",
        "true",
    ])
    .assert_success();
    let v = inspect_container(&c, "reader");
    assert_eq!(
        v["HostConfig"]["VolumesFrom"],
        serde_json::json!(["data:ro"])
    );
    let mounts = v["Mounts"].as_array().unwrap();
    let data = mounts
        .iter()
        .find(|m| m["Destination"] == "/data")
        .unwrap_or_else(|| panic!("{mounts:?}"));
    assert_eq!(
        (&data["Type"], &data["Name"]),
        (&"volume".into(), &"vol1".into())
    );
    assert_eq!(data["RW"], false);
    assert!(mounts
        .iter()
        .any(|m| m["Destination"] == "/bind" && m["Type"] == "bind"));
    // In use by the reader too: the volume cannot go.
    assert_ne!(c.run(["volume", "rm", "vol1"]).code, 0);

    let unknown = run(&c, &["--volumes-from", "nope", "box", "true"]);
    assert_eq!(unknown.code, 125);
    assert!(
        unknown.stderr.contains("No such container: nope"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn links_on_the_default_bridge_and_on_user_networks() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run([
        "run",
        "-d",
        "--name",
        "web",
        "--expose",
        "8080",
        "-e",
        "SECRET=s3",
        "box",
        "sleep",
        "120",
    ])
    .assert_success();
    let ip = ip_on(&c, "web", "bridge");
    let web_host = inspect_container(&c, "web")["Config"]["Hostname"]
        .as_str()
        .unwrap()
        .to_string();
    let out = run(
        &c,
        &[
            "--name", "app", "--link", "web:db", "box", "sh", "-c",
            "cat /etc/hosts; env; ping -c 1 -W 5 db >/dev/null && echo ping-db-ok; ping -c 1 -W 5 web >/dev/null && echo ping-web-ok",
        ],
    );
    out.assert_success();
    let text = &out.stdout;
    assert!(
        text.contains(&format!("{ip}\tdb {web_host} web\n")),
        "{text}"
    );
    assert!(
        text.contains("ping-db-ok") && text.contains("ping-web-ok"),
        "{text}"
    );
    for var in [
        "DB_NAME=/app/db".to_string(),
        format!("DB_PORT=tcp://{ip}:8080"),
        format!("DB_PORT_8080_TCP=tcp://{ip}:8080"),
        format!("DB_PORT_8080_TCP_ADDR={ip}"),
        "DB_PORT_8080_TCP_PORT=8080".to_string(),
        "DB_PORT_8080_TCP_PROTO=tcp".to_string(),
        "DB_ENV_SECRET=s3".to_string(),
    ] {
        assert!(text.lines().any(|l| l == var), "{var} in {text}");
    }
    assert!(
        !text.contains("DB_ENV_PATH") && !text.contains("DB_ENV_HOME"),
        "{text}"
    );

    // `exec` sees the variables too (they are the container's environment).
    c.run([
        "run", "-d", "--name", "app2", "--link", "web:db", "box", "sleep", "120",
    ])
    .assert_success();
    let env = c.run(["exec", "app2", "env"]);
    assert!(env.stdout.contains("DB_NAME=/app2/db\n"), "{}", env.stdout);

    c.run(["create", "--name", "client", "--link", "web", "box", "true"])
        .assert_success();
    let v = inspect_container(&c, "client");
    assert_eq!(
        v["HostConfig"]["Links"],
        serde_json::json!(["/web:/client/web"])
    );
    let missing = run(&c, &["--link", "nope:db", "box", "true"]);
    assert_eq!(missing.code, 125);
    assert!(
        missing.stderr.contains("could not get container for nope"),
        "{}",
        missing.stderr
    );
    let host = run(&c, &["--network", "host", "--link", "web", "box", "true"]);
    assert_eq!(host.code, 125);

    // A stopped container cannot be linked to: the start fails as docker's.
    c.run(["stop", "-t", "0", "web"]).assert_success();
    let stopped = c.run(["run", "--name", "late", "--link", "web:db", "box", "true"]);
    assert_eq!(stopped.code, 125);
    assert!(
        stopped
            .stderr
            .contains("Cannot link to a non running container: /web AS /late/db"),
        "{}",
        stopped.stderr
    );
    assert_ne!(c.run(["start", "client"]).code, 0);

    // On a user-defined network a link is an alias only the linking container knows.
    c.run(["network", "create", "appnet"]).assert_success();
    c.run([
        "run",
        "-d",
        "--name",
        "api",
        "--network",
        "appnet",
        "box",
        "sleep",
        "120",
    ])
    .assert_success();
    let api_ip = ip_on(&c, "api", "appnet");
    let out = run(
        &c,
        &[
            "--network",
            "appnet",
            "--link",
            "api:backend",
            "box",
            "nslookup",
            "backend",
            "127.0.0.11",
        ],
    );
    assert!(out.stdout.contains(&api_ip), "{}{}", out.stdout, out.stderr);
    let other = run(
        &c,
        &[
            "--network",
            "appnet",
            "box",
            "nslookup",
            "backend",
            "127.0.0.11",
        ],
    );
    assert!(!other.stdout.contains(&api_ip), "{}", other.stdout);
    c.run([
        "create",
        "--name",
        "netclient",
        "--network",
        "appnet",
        "--link",
        "api:backend",
        "box",
    ])
    .assert_success();
    let v = inspect_container(&c, "netclient");
    assert_eq!(v["HostConfig"]["Links"], serde_json::Value::Null);
    assert_eq!(
        v["NetworkSettings"]["Networks"]["appnet"]["Links"],
        serde_json::json!(["api:backend"])
    );
    c.run([
        "rm",
        "-f",
        "api",
        "web",
        "app2",
        "client",
        "late",
        "netclient",
    ])
    .assert_success();
}

#[test]
fn a_linked_containers_new_address_reaches_the_linking_containers_hosts() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let sleeper = |name: &str, extra: &[&str]| {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["box", "sleep", "120"]);
        c.run(args).assert_success();
    };
    sleeper("web", &[]);
    sleeper("app", &["--link", "web:db"]);
    let old = ip_on(&c, "web", "bridge");
    let hosts = c.run(["exec", "app", "cat", "/etc/hosts"]);
    assert!(
        hosts.stdout.contains(&format!("{old}\tdb ")),
        "{}",
        hosts.stdout
    );
    // web's address goes to another container; web comes back at a new one.
    c.run(["stop", "-t", "0", "web"]).assert_success();
    sleeper("filler", &[]);
    c.run(["start", "web"]).assert_success();
    let new = ip_on(&c, "web", "bridge");
    assert_ne!(new, old);
    let hosts = c.run(["exec", "app", "cat", "/etc/hosts"]);
    assert!(
        hosts.stdout.contains(&format!("{new}\tdb ")),
        "{}",
        hosts.stdout
    );
    assert!(
        !hosts.stdout.contains(&format!("{old}\tdb ")),
        "{}",
        hosts.stdout
    );
    let ping = c.run(["exec", "app", "ping", "-c", "1", "-W", "5", "db"]);
    assert!(ping.success(), "{}{}", ping.stdout, ping.stderr);
    c.run(["rm", "-f", "app", "web", "filler"]).assert_success();
}
