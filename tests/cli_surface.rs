//! The docker CLI surface scripts use (Issue 11 C.3): `version`, the `container`
//! namespace, `system df`/`system prune`, prune and list filters.

mod common;
use common::*;

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
