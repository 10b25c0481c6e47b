//! Image `VOLUME`s (Issue 11 C.2): each gets an anonymous volume, filled from the
//! image, shown in `inspect .Mounts`, kept by `rm`, removed by `rm -v` and `--rm`,
//! writable under `--read-only`, and replaced by a `-v` at the same path.

use crate::common::*;

/// A busybox image with `VOLUME /data` holding `/data/seed`, pulled into a fresh store
/// isolated in a network namespace; the store and the image's name.
fn with_volume_image() -> (Registry, Coracle, String) {
    let reg = Registry::start().expect("start registry");
    let image = busybox_builder()
        .layer(
            &Layer::new()
                .dir("data", 0o755)
                .file("data/seed", "from the image\n", 0o644),
        )
        .volume("/data")
        .build();
    push(&reg.host(), "test/vol", "latest", &image, None).expect("push");
    let mut c = coracle();
    let name = format!("{}/test/vol", reg.host());
    c.run(["pull", "-q", &name]).assert_success();
    c.isolate_network();
    (reg, c, name)
}

fn volumes(c: &Coracle) -> Vec<String> {
    let out = c.run(["volume", "ls", "-q"]);
    out.assert_success();
    out.stdout.lines().map(str::to_string).collect()
}

#[test]
fn an_image_volume_is_an_anonymous_volume_filled_from_the_image() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c, image) = with_volume_image();
    c.run([
        "run",
        "--name",
        "v1",
        &image,
        "sh",
        "-c",
        "cat /data/seed && echo written > /data/new",
    ])
    .assert_success();

    let mounts = inspect_container(&c, "v1")["Mounts"].clone();
    let mounts = mounts.as_array().expect("Mounts is a list");
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    let m = &mounts[0];
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Destination"], "/data");
    assert_eq!(m["Driver"], "local");
    assert_eq!(m["RW"], true);
    let name = m["Name"].as_str().unwrap().to_string();
    assert_eq!(name.len(), 64, "a generated name: {name}");
    assert!(name.chars().all(|ch| ch.is_ascii_hexdigit()));
    let source = std::path::PathBuf::from(m["Source"].as_str().unwrap());
    assert_eq!(source, c.root().join("volumes").join(&name).join("_data"));
    // Copied up from the image, and what the container wrote is in the volume.
    assert_eq!(
        std::fs::read_to_string(source.join("seed")).unwrap(),
        "from the image\n"
    );
    assert_eq!(
        std::fs::read_to_string(source.join("new")).unwrap(),
        "written\n"
    );
    assert_eq!(volumes(&c), vec![name.clone()]);
    let out = c.run(["volume", "inspect", &name]);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["Name"], name.as_str());
    // docker (23+) marks anonymous volumes so.
    assert!(
        v[0]["Labels"]["com.docker.volume.anonymous"].is_string(),
        "{v}"
    );

    // `rm` keeps it, `rm -v` removes it.
    c.run(["rm", "v1"]).assert_success();
    assert_eq!(volumes(&c), vec![name.clone()]);
    c.run(["run", "--name", "v2", &image, "true"])
        .assert_success();
    let second = inspect_container(&c, "v2")["Mounts"][0]["Name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second, name, "each container gets a volume of its own");
    c.run(["rm", "-v", "v2"]).assert_success();
    assert_eq!(volumes(&c), vec![name.clone()]);
    c.run(["volume", "rm", &name]).assert_success();
}

#[test]
fn rm_flag_removes_it_read_only_leaves_it_writable_and_v_overrides_it() {
    if skip_unless_root() {
        return;
    }
    let (_reg, c, image) = with_volume_image();
    // --rm takes its anonymous volume along.
    let out = c.run(["run", "--rm", &image, "cat", "/data/seed"]);
    out.assert_success();
    assert_eq!(out.stdout, "from the image\n");
    assert!(volumes(&c).is_empty(), "{:?}", volumes(&c));

    // --read-only: the root is read-only, the volume is not.
    let out = c.run([
        "run",
        "--rm",
        "--read-only",
        &image,
        "sh",
        "-c",
        "echo ok > /data/x && cat /data/x && ! touch /elsewhere 2>/dev/null",
    ]);
    out.assert_success();
    assert_eq!(out.stdout, "ok\n");

    // A named volume at the same path replaces it (and is filled from the image).
    let out = c.run([
        "run",
        "--name",
        "named",
        "-v",
        "mine:/data",
        &image,
        "cat",
        "/data/seed",
    ]);
    out.assert_success();
    assert_eq!(out.stdout, "from the image\n");
    assert_eq!(volumes(&c), vec!["mine".to_string()]);
    let mounts = inspect_container(&c, "named")["Mounts"].clone();
    assert_eq!(mounts.as_array().unwrap().len(), 1, "{mounts}");
    assert_eq!(mounts[0]["Name"], "mine");
    // `rm -v` removes anonymous volumes only.
    c.run(["rm", "-v", "named"]).assert_success();
    assert_eq!(volumes(&c), vec!["mine".to_string()]);

    // So does a bind mount or a tmpfs there: no volume is made.
    let out = c.run(["run", "--rm", "--tmpfs", "/data", &image, "ls", "/data"]);
    out.assert_success();
    assert_eq!(out.stdout, "");
    assert_eq!(volumes(&c), vec!["mine".to_string()]);
}
