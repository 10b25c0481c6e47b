//! Users and groups as docker sets them (Issue 11 C.5): supplementary groups from the
//! image's /etc/group with the primary gid among them, `--group-add` by name or number
//! (for `exec -u` too), `HOME=/` for a uid without a passwd entry. And Issue 11 C.7:
//! `--platform` the image lacks is refused, `--network host` keeps the host's name,
//! `ps --filter publish=`.

use crate::common::*;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                      app:x:1000:1000:App:/home/app:/bin/sh\n";
const GROUP: &str = "root:x:0:\napp:x:1000:\nwheel:x:10:app\naudio:x:29:\nstaff:x:50:other,app\n";

/// busybox with the passwd and group files above, pulled into a fresh store isolated in
/// a network namespace; the store and the image's name.
fn with_users_image() -> (Registry, Coracle, String) {
    let reg = Registry::start().expect("start registry");
    let image = busybox_builder()
        .layer(
            &Layer::new()
                .file("etc/passwd", PASSWD, 0o644)
                .file("etc/group", GROUP, 0o644)
                .dir("home/app", 0o755),
        )
        .build();
    push(&reg.host(), "test/users", "latest", &image, None).expect("push");
    let mut c = coracle();
    let name = format!("{}/test/users", reg.host());
    c.run(["pull", "-q", &name]).assert_success();
    c.isolate_network();
    (reg, c, name)
}

/// "uid gid [supplementary gids, sorted]" of a command's output, which runs
/// `id -u; id -g; grep Groups /proc/self/status`.
fn ids(out: &Output) -> (u32, u32, Vec<u32>) {
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{:?}", out.stdout);
    let mut groups: Vec<u32> = lines[2]
        .trim_start_matches("Groups:")
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    groups.sort();
    (lines[0].parse().unwrap(), lines[1].parse().unwrap(), groups)
}

const ID: &str = "id -u; id -g; grep Groups /proc/self/status";

#[test]
fn run_and_exec_users_get_docker_s_groups_and_home() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c, image) = with_users_image();
    let run = |flags: &[&str]| {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[image.as_str(), "sh", "-c", ID]);
        ids(&c.run(args))
    };
    // The primary gid and the /etc/group memberships, by name or by uid.
    assert_eq!(run(&["-u", "app"]), (1000, 1000, vec![10, 50, 1000]));
    assert_eq!(run(&["-u", "1000"]), (1000, 1000, vec![10, 50, 1000]));
    // --group-add by name (the image's /etc/group) and by number.
    assert_eq!(
        run(&["-u", "app", "--group-add", "audio", "--group-add", "4242"]),
        (1000, 1000, vec![10, 29, 50, 1000, 4242])
    );
    // A forced group: no memberships, the group itself.
    assert_eq!(run(&["-u", "app:audio"]), (1000, 29, vec![29]));
    // root is in no group's list here: just its own.
    assert_eq!(run(&[]), (0, 0, vec![0]));
    let out = c.run(["run", "--rm", "--group-add", "nosuch", &image, "true"]);
    assert!(!out.success());
    assert!(
        out.stderr.contains("unable to find group nosuch"),
        "{}",
        out.stderr
    );

    // HOME: from passwd, `/` for a uid with none.
    let home = |user: &str| {
        let out = c.run(["run", "--rm", "-u", user, &image, "sh", "-c", "echo $HOME"]);
        out.assert_success();
        out.stdout.trim().to_string()
    };
    assert_eq!(home("app"), "/home/app");
    assert_eq!(home("4321"), "/");
    let out = c.run(["run", "--rm", "-u", "4321", &image, "env"]);
    assert!(out.stdout.lines().any(|l| l == "HOME=/"), "{}", out.stdout);

    // exec: the container's user as created, and `-u` with the container's --group-add.
    c.run([
        "run",
        "-d",
        "--name",
        "grp",
        "-u",
        "app",
        "--group-add",
        "audio",
        &image,
        "sleep",
        "300",
    ])
    .assert_success();
    let exec = |flags: &[&str]| {
        let mut args = vec!["exec"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["grp", "sh", "-c", ID]);
        ids(&c.run(args))
    };
    assert_eq!(exec(&[]), (1000, 1000, vec![10, 29, 50, 1000]));
    assert_eq!(exec(&["-u", "app"]), (1000, 1000, vec![10, 29, 50, 1000]));
    assert_eq!(exec(&["-u", "0"]), (0, 0, vec![0, 29]));
    let out = c.run(["exec", "-u", "4321", "grp", "sh", "-c", "echo $HOME"]);
    out.assert_success();
    assert_eq!(out.stdout, "/\n");
    c.run(["rm", "-f", "grp"]).assert_success();
}

#[test]
fn a_platform_the_image_lacks_is_refused() {
    if skip_unless_root() {
        return;
    }
    let (reg, c) = with_busybox();
    let other = if host_arch() == "arm64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let actual = format!("linux/{}", host_arch());
    let name = format!("{}/test/busybox", reg.host());
    // By local tag without pulling, and by the registry's name (whose pull cannot bring
    // another platform from here).
    for (image, pull) in [("box", "never"), (name.as_str(), "missing")] {
        let out = c.run([
            "run",
            "--rm",
            "--pull",
            pull,
            "--platform",
            other,
            image,
            "true",
        ]);
        out.assert_code(125);
        let want = format!(
            "image with reference {image} was found but does not match the specified platform: wanted {other}, actual: {actual}"
        );
        assert!(out.stderr.contains(&want), "{}", out.stderr);
    }
    assert!(
        c.run(["ps", "-aq"]).stdout.is_empty(),
        "nothing was created"
    );
    // Its own platform runs.
    let out = c.run(["run", "--rm", "--platform", &actual, "box", "echo", "ran"]);
    out.assert_success();
    assert_eq!(out.stdout, "ran\n");
}

#[test]
fn host_networking_keeps_the_hosts_name() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let out = c.run([
        "run",
        "--name",
        "hn",
        "--network",
        "host",
        "box",
        "sh",
        "-c",
        "hostname; cat /etc/hostname; echo $HOSTNAME",
    ]);
    out.assert_success();
    assert_eq!(out.stdout, format!("{host}\n{host}\n{host}\n"));
    assert_eq!(
        inspect_container(&c, "hn")["Config"]["Hostname"],
        host.as_str()
    );
    // -h still names it.
    let out = c.run([
        "run",
        "--rm",
        "--network",
        "host",
        "-h",
        "given",
        "box",
        "hostname",
    ]);
    out.assert_success();
    assert_eq!(out.stdout, "given\n");
    // Without host networking: the short id, as before.
    let out = c.run(["run", "--rm", "box", "hostname"]);
    assert_ne!(out.stdout.trim(), host);
    assert_eq!(out.stdout.trim().len(), 12);
}

#[test]
fn ps_filter_publish_matches_published_ports() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run([
        "run", "-d", "--name", "web", "-p", "18080:80", "box", "sleep", "300",
    ])
    .assert_success();
    c.run([
        "create",
        "--name",
        "made",
        "-p",
        "19090:90/udp",
        "box",
        "true",
    ])
    .assert_success();
    c.run(["run", "-d", "--name", "plain", "box", "sleep", "300"])
        .assert_success();
    let names = |filter: &str| {
        let out = c.run(["ps", "-a", "--format", "{{.Names}}", "--filter", filter]);
        out.assert_success();
        let mut v: Vec<String> = out.stdout.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    // The container port (docker's HostConfig.PortBindings, in any state) ...
    assert_eq!(names("publish=80"), vec!["web"]);
    assert_eq!(names("publish=80/tcp"), vec!["web"]);
    assert_eq!(names("publish=90/udp"), vec!["made"]);
    // ... and the host port it is published on.
    assert_eq!(names("publish=18080"), vec!["web"]);
    assert_eq!(names("publish=18000-18100"), vec!["web"]);
    assert!(names("publish=80/udp").is_empty());
    assert!(
        names("publish=90").is_empty(),
        "90 is published for udp only"
    );
    assert!(names("publish=81").is_empty());
    c.run(["rm", "-f", "web", "made", "plain"]).assert_success();
}
