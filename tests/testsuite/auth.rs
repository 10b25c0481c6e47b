//! Registry authentication: htpasswd basic auth and the docker token flow, with
//! credentials from `login` and from an existing ~/.docker/config.json.

use crate::common::*;

#[test]
fn basic_auth_needs_login_and_logout_forgets() {
    let reg = Registry::start_htpasswd("alice", "s3cret").unwrap();
    push(
        &reg.host(),
        "test/busybox",
        "latest",
        &busybox_image(),
        Some(("alice", "s3cret")),
    )
    .unwrap();
    let c = coracle();
    let name = format!("{}/test/busybox", reg.host());

    let denied = c.run(["pull", &name]);
    denied.assert_code(1);
    assert!(
        denied.stderr.to_lowercase().contains("unauthorized") || denied.stderr.contains("denied"),
        "{}",
        denied.stderr
    );

    let wrong = c.run_stdin(
        ["login", "-u", "alice", "--password-stdin", &reg.host()],
        b"nope\n",
    );
    wrong.assert_code(1);
    assert!(wrong.stderr.contains("unauthorized"), "{}", wrong.stderr);
    assert!(
        !c.docker_config_dir().join("config.json").exists() || {
            let cfg = std::fs::read_to_string(c.docker_config_dir().join("config.json")).unwrap();
            !cfg.contains(&reg.host())
        }
    );

    let ok = c.run_stdin(
        ["login", "-u", "alice", "--password-stdin", &reg.host()],
        b"s3cret\n",
    );
    ok.assert_success();
    assert!(ok.stdout.contains("Login Succeeded"));
    let cfg_path = c.docker_config_dir().join("config.json");
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    assert!(cfg["auths"][reg.host()]["auth"].is_string(), "{cfg}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cfg_path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    c.run(["pull", &name]).assert_success();

    c.run(["logout", &reg.host()]).assert_success();
    let again = c.run(["logout", &reg.host()]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("Not logged in"), "{}", again.stderr);
}

#[test]
fn token_flow_with_credentials_from_docker_config() {
    let reg = Registry::start_token("bob", "hunter2").unwrap();
    push(
        &reg.host(),
        "test/busybox",
        "v1",
        &busybox_image(),
        Some(("bob", "hunter2")),
    )
    .unwrap();
    let c = coracle();
    let name = format!("{}/test/busybox:v1", reg.host());
    let before = reg.token_requests();
    let denied = c.run(["pull", &name]);
    denied.assert_code(1);

    c.write_docker_auth(&reg.host(), "bob", "hunter2");
    c.run(["pull", &name]).assert_success();
    assert!(
        reg.token_requests() > before,
        "the bearer token flow was used"
    );

    // Push through the token flow too, to another repository.
    c.run(["tag", &name, &format!("{}/test/copy:v1", reg.host())])
        .assert_success();
    let out = c.run(["push", &format!("{}/test/copy:v1", reg.host())]);
    out.assert_success();
    assert!(out.stdout.contains("v1: digest: sha256:"), "{}", out.stdout);
}
