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
