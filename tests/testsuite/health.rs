//! Health checks: `--health-*` flags and the image's HEALTHCHECK, probes run in the
//! container, docker's `State.Health` (status, failing streak, the last five results).

use crate::common::*;

use serde_json::{json, Value};
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// busybox with `Healthcheck` (docker's image config field) set to `hc`, pushed to a
/// registry and tagged `hc` in a fresh store.
fn with_healthcheck_image(hc: Value) -> (Registry, Coracle) {
    let base = busybox_image();
    let mut config = base.config_json();
    config["config"]["Healthcheck"] = hc;
    let config = Blob::new(
        &base.config.media_type,
        serde_json::to_vec(&config).unwrap(),
    );
    let mut manifest: Value = serde_json::from_slice(&base.manifest.data).unwrap();
    manifest["config"] = config.descriptor();
    let manifest = Blob::new(
        &base.manifest.media_type,
        serde_json::to_vec(&manifest).unwrap(),
    );
    let image = Image {
        manifest,
        config,
        ..base
    };
    let reg = Registry::start().expect("start registry");
    push(&reg.host(), "test/hc", "latest", &image, None).expect("push");
    let mut c = coracle();
    let name = format!("{}/test/hc", reg.host());
    c.run(["pull", "-q", &name]).assert_success();
    c.run(["tag", &name, "hc"]).assert_success();
    c.isolate_network();
    (reg, c)
}

/// `State.Health` of a container as `inspect` shows it (Null when it has none).
fn health(c: &Coracle, name: &str) -> Value {
    let out = c.run(["inspect", name]);
    out.assert_success();
    let v: Value = serde_json::from_str(&out.stdout).expect("inspect prints JSON");
    v[0]["State"].get("Health").cloned().unwrap_or(Value::Null)
}

/// Polls `inspect -f '{{.State.Health.Status}}'` until `want` (or panics after 30 s),
/// returning every distinct status seen on the way, in order.
fn statuses_until(c: &Coracle, name: &str, want: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen: Vec<String> = Vec::new();
    loop {
        let out = c.run(["inspect", "-f", "{{.State.Health.Status}}", name]);
        out.assert_success();
        let s = out.stdout.trim().to_string();
        if seen.last() != Some(&s) {
            seen.push(s.clone());
        }
        if s == want {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never became {want}; saw {seen:?}; health {}",
            health(c, name)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_rfc3339(v: &Value) {
    let s = v.as_str().expect("a timestamp string");
    assert!(
        s.len() > 20 && s.as_bytes()[10] == b'T' && (s.ends_with('Z') || s.contains('+')),
        "not RFC 3339: {s}"
    );
}

#[test]
fn health_goes_starting_healthy_unhealthy() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let out = c.run([
        "run",
        "-d",
        "--name",
        "web",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "300ms",
        "--health-retries",
        "2",
        // Failures before the file exists must not count: it stays `starting`.
        "--health-start-period",
        "1500ms",
        "--health-start-interval",
        "300ms",
        "box",
        "sh",
        "-c",
        "sleep 1; touch /tmp/ok; sleep 2; rm /tmp/ok; sleep 100",
    ]);
    out.assert_success();
    let seen = statuses_until(&c, "web", "unhealthy");
    assert_eq!(seen, ["starting", "healthy", "unhealthy"]);
    let h = health(&c, "web");
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    let log = h["Log"].as_array().unwrap();
    assert!((2..=5).contains(&log.len()), "{h}");
    let last = log.last().unwrap();
    assert_eq!(last["ExitCode"], 1, "{h}");
    assert_eq!(last["Output"], "", "{h}");
    assert_rfc3339(&last["Start"]);
    assert_rfc3339(&last["End"]);
    c.run(["rm", "-f", "web"]).assert_success();
}

#[test]
fn log_keeps_the_last_five_results_and_the_output() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run([
        "run",
        "-d",
        "--name",
        "web",
        "--health-cmd",
        "echo probe; echo oops >&2; exit 0",
        "--health-interval",
        "200ms",
        "box",
        "sleep",
        "100",
    ])
    .assert_success();
    statuses_until(&c, "web", "healthy");
    let deadline = Instant::now() + Duration::from_secs(30);
    let h = loop {
        let h = health(&c, "web");
        if h["Log"].as_array().unwrap().len() == 5 {
            // Give it one more probe to see the log stays at five.
            let first = h["Log"][0]["Start"].clone();
            let later = loop {
                let later = health(&c, "web");
                if later["Log"][0]["Start"] != first || Instant::now() > deadline {
                    break later;
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            break later;
        }
        assert!(Instant::now() < deadline, "log never reached 5: {h}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = h["Log"].as_array().unwrap();
    assert_eq!(log.len(), 5, "{h}");
    for r in log {
        assert_eq!(r["ExitCode"], 0);
        assert_eq!(r["Output"], "probe\noops\n");
    }
    assert_eq!(h["FailingStreak"], 0);
    c.run(["rm", "-f", "web"]).assert_success();
}

#[test]
fn image_healthcheck_runs_and_no_healthcheck_disables_it() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_healthcheck_image(json!({
        "Test": ["CMD", "sh", "-c", "echo from-image; exit 1"],
        "Interval": 200_000_000,
        "Retries": 1,
    }));
    c.run(["run", "-d", "--name", "img", "hc", "sleep", "100"])
        .assert_success();
    statuses_until(&c, "img", "unhealthy");
    let h = health(&c, "img");
    assert_eq!(h["Log"][0]["Output"], "from-image\n", "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 1, "{h}");

    c.run([
        "run",
        "-d",
        "--name",
        "off",
        "--no-healthcheck",
        "hc",
        "sleep",
        "100",
    ])
    .assert_success();
    // Long enough for several of the image's probes to have run, were they scheduled.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(health(&c, "off"), Value::Null);
    let out = c.run(["ps", "--filter", "name=off", "--format", "{{.Status}}"]);
    out.assert_success();
    assert!(!out.stdout.contains("health"), "{}", out.stdout);
    c.run(["rm", "-f", "img", "off"]).assert_success();
}

#[test]
fn slow_probe_times_out_like_docker() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run([
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "sleep 10",
        "--health-timeout",
        "500ms",
        "--health-interval",
        "200ms",
        "--health-retries",
        "1",
        "box",
        "sleep",
        "100",
    ])
    .assert_success();
    statuses_until(&c, "slow", "unhealthy");
    let h = health(&c, "slow");
    assert_eq!(h["Log"][0]["ExitCode"], -1, "{h}");
    assert_eq!(
        h["Log"][0]["Output"], "Health check exceeded timeout (500ms)",
        "{h}"
    );
    c.run(["rm", "-f", "slow"]).assert_success();
}

#[test]
fn stop_reads_unhealthy_and_start_begins_again_at_starting() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    c.run([
        "run",
        "-d",
        "--name",
        "web",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        "box",
        "sleep",
        "100",
    ])
    .assert_success();
    statuses_until(&c, "web", "healthy");
    c.run(["stop", "-t", "0", "web"]).assert_success();
    // docker: a container whose checks stopped reads unhealthy; the results stay.
    let h = health(&c, "web");
    assert_eq!(h["Status"], "unhealthy", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    let kept = h["Log"].as_array().unwrap().len();
    assert!(kept >= 1, "{h}");
    c.run(["start", "web"]).assert_success();
    // The first probe is an interval (1 s) away.
    let h = health(&c, "web");
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["Log"].as_array().unwrap().len(), kept, "{h}");
    statuses_until(&c, "web", "healthy");
    c.run(["rm", "-f", "web"]).assert_success();
}

// What follows runs the probe by hand (`__healthcheck`, as the monitor does) against a
// running container, driving its outcome through files the test controls.

/// The stored health state as `inspect` shows it; None without one.
fn stored_health(c: &Coracle, name: &str) -> Option<Value> {
    let h = health(c, name);
    (!h.is_null()).then_some(h)
}

fn probe(c: &Coracle, name: &str) -> Value {
    c.run(["__healthcheck", name]).assert_success();
    stored_health(c, name).expect("a probe stores the health state")
}

/// `coracle run` (foreground) of `image` with `dir` bound at /mnt, until the container
/// says it is ready; it exits once /mnt/stop exists.
fn start_foreground(c: &Coracle, name: &str, image: &str, dir: &Path) -> Child {
    let mut child = c
        .command([
            "run",
            "--name",
            name,
            "-v",
            &format!("{}:/mnt", dir.display()),
            image,
            "sh",
            "-c",
            "echo ready; while [ ! -f /mnt/stop ]; do sleep 0.1; done",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    if line != "ready\n" {
        let out = child.wait_with_output().unwrap();
        panic!(
            "{name} did not start ({:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    child
}

#[test]
fn probes_by_hand_follow_dockers_rules() {
    if skip_unless_root() {
        return;
    }
    // The probe reads files the test controls through a bind mount; /mnt/hang makes it
    // outlive its timeout.
    let (_reg, c) = with_healthcheck_image(json!({
        "Test": ["CMD-SHELL", "if [ -f /mnt/hang ]; then sleep 5; fi; cat /mnt/ok"],
        "Timeout": 1_000_000_000,
        "Retries": 2,
        // The monitor's own probes (an hour apart) stay out of the way.
        "Interval": 3_600_000_000_000u64,
    }));
    let dir = tempfile::tempdir().unwrap();
    let mut child = start_foreground(&c, "probed", "hc", dir.path());

    let h = probe(&c, "probed");
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 1, "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], 1, "{h}");
    assert_eq!(
        h["Log"][0]["Output"],
        "cat: can't open '/mnt/ok': No such file or directory\n"
    );
    assert_rfc3339(&h["Log"][0]["Start"]);
    assert!(h["Log"][0]["Start"].as_str() <= h["Log"][0]["End"].as_str());

    std::fs::write(dir.path().join("ok"), "fine\n").unwrap();
    let h = probe(&c, "probed");
    assert_eq!(
        (&h["Status"], &h["FailingStreak"]),
        (&json!("healthy"), &json!(0))
    );
    assert_eq!(h["Log"][1]["Output"], "fine\n");
    assert_eq!(h["Log"][1]["ExitCode"], 0);

    std::fs::remove_file(dir.path().join("ok")).unwrap();
    let h = probe(&c, "probed");
    assert_eq!(
        (&h["Status"], &h["FailingStreak"]),
        (&json!("healthy"), &json!(1))
    );
    std::fs::write(dir.path().join("hang"), "").unwrap();
    let h = probe(&c, "probed");
    assert_eq!(
        (&h["Status"], &h["FailingStreak"]),
        (&json!("unhealthy"), &json!(2))
    );
    assert_eq!(h["Log"][3]["ExitCode"], -1, "{h}");
    assert_eq!(h["Log"][3]["Output"], "Health check exceeded timeout (1s)");
    std::fs::remove_file(dir.path().join("hang")).unwrap();

    for _ in 0..3 {
        probe(&c, "probed");
    }
    let h = stored_health(&c, "probed").unwrap();
    assert_eq!(h["Log"].as_array().unwrap().len(), 5, "{h}");
    assert_eq!(h["FailingStreak"], 5);
    let starts: Vec<&str> = h["Log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Start"].as_str().unwrap())
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {starts:?}"
    );
    assert_eq!(h["Log"][0]["ExitCode"], 1, "the first two results are gone");
    assert_eq!(h["Log"][1]["ExitCode"], -1, "{h}");

    // Once the container has exited, a probe records nothing.
    std::fs::write(dir.path().join("stop"), "").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let at_exit = stored_health(&c, "probed").unwrap();
    assert_eq!(at_exit["Log"], h["Log"]);
    c.run(["__healthcheck", "probed"]).assert_success();
    assert_eq!(stored_health(&c, "probed").unwrap(), at_exit);

    c.run(["rm", "-f", "probed"]).assert_success();
    let out = c.run(["__healthcheck", "probed"]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("No such container: probed"),
        "{}",
        out.stderr
    );
}

#[test]
fn container_without_a_check_gets_no_health_state() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_busybox();
    let dir = tempfile::tempdir().unwrap();
    let mut child = start_foreground(&c, "plain", "box", dir.path());
    c.run(["__healthcheck", "plain"]).assert_success();
    assert_eq!(stored_health(&c, "plain"), None);
    std::fs::write(dir.path().join("stop"), "").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    c.run(["rm", "plain"]).assert_success();
}

#[test]
fn probe_that_cannot_start_fails_with_dockers_message() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c) = with_healthcheck_image(json!({
        "Test": ["CMD", "nosuch-probe"],
        "Retries": 1,
        "Interval": 3_600_000_000_000u64,
    }));
    let dir = tempfile::tempdir().unwrap();
    let mut child = start_foreground(&c, "broken", "hc", dir.path());
    let h = probe(&c, "broken");
    assert_eq!(h["Status"], "unhealthy", "{h}");
    assert_eq!(h["Log"][0]["ExitCode"], -1, "{h}");
    assert_eq!(
        h["Log"][0]["Output"],
        "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuch-probe\": executable file not found in $PATH: unknown"
    );
    std::fs::write(dir.path().join("stop"), "").unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    c.run(["rm", "broken"]).assert_success();
}

/// `registries.toml` is read by registry commands only: with a malformed one, a local
/// image still runs (`--pull never`), `ps` lists it and its health checks (probes run
/// by re-executed coracle processes) still pass, while `pull` reports the file.
#[test]
fn a_malformed_registries_toml_fails_only_registry_commands() {
    if skip_unless_root() {
        return;
    }
    let (reg, mut c) = with_busybox();
    let config = c.write_config("[limits\nmax_layer_size = ");
    let out = c.run([
        "run",
        "-d",
        "--pull",
        "never",
        "--name",
        "web",
        "--health-cmd",
        "true",
        "--health-interval",
        "300ms",
        "box",
        "sleep",
        "100",
    ]);
    out.assert_success();
    statuses_until(&c, "web", "healthy");
    let ps = c.run(["ps", "--format", "{{.Names}}"]);
    ps.assert_success();
    assert_eq!(ps.stdout.trim(), "web");
    let pull = c.run(["pull", "-q", &format!("{}/test/busybox", reg.host())]);
    assert_ne!(pull.code, 0, "{pull:?}");
    assert!(
        pull.stderr
            .contains(&format!("registry config {}", config.display())),
        "{}",
        pull.stderr
    );
    c.run(["rm", "-f", "web"]).assert_success();
}
