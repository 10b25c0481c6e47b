//! Local image management: images, tag, rmi, image prune, inspect.

use crate::common::*;

#[test]
fn images_lists_like_docker() {
    let (reg, image) = registry_with_busybox();
    let c = coracle();
    let name = format!("{}/test/busybox", reg.host());
    c.run(["pull", &name]).assert_success();
    c.run(["tag", &name, "mybox:v1"]).assert_success();

    let out = c.run(["images"]);
    out.assert_success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY"), "{}", out.stdout);
    for col in ["TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(lines[0].contains(col), "{}", lines[0]);
    }
    assert_eq!(lines.len(), 3, "one row per tag: {}", out.stdout);
    assert!(out.stdout.contains("mybox"));
    assert!(out.stdout.contains(image.config.digest.short()));

    let q = c.run(["images", "-q"]);
    assert_eq!(q.stdout, format!("{}\n", image.config.digest.short()));

    let digests = c.run(["images", "--digests"]);
    assert!(digests.stdout.lines().next().unwrap().contains("DIGEST"));
    assert!(digests.stdout.contains(&image.digest().to_string()));

    let json = c.run(["images", "--format", "json"]);
    let first: serde_json::Value =
        serde_json::from_str(json.stdout.lines().next().unwrap()).unwrap();
    assert!(
        first["Repository"].is_string() && first["ID"].is_string() && first["Size"].is_string()
    );

    let tmpl = c.run(["images", "--format", "{{.Repository}}:{{.Tag}}", "mybox"]);
    assert_eq!(tmpl.stdout, "mybox:v1\n");

    let table = c.run([
        "images",
        "--format",
        "table {{.Repository}}\\t{{.Tag}}",
        "mybox",
    ]);
    assert_eq!(
        table
            .stdout
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["REPOSITORY", "TAG"]
    );

    let f = c.run(["inspect", "-f", "{{.Id}} {{index .RepoTags 0}}", "mybox:v1"]);
    assert_eq!(
        f.stdout.trim(),
        format!("{} {name}:latest", image.config.digest)
    );

    let missing = c.run(["image", "inspect", "nosuch"]);
    missing.assert_code(1);
    assert!(
        missing.stderr.contains("No such image: nosuch:latest"),
        "{}",
        missing.stderr
    );
}

#[test]
fn rmi_untags_then_deletes_and_id_removal_needs_force() {
    let (reg, image) = registry_with_busybox();
    let c = coracle();
    let name = format!("{}/test/busybox", reg.host());
    c.run(["pull", &name]).assert_success();
    c.run(["tag", &name, "other/repo:x"]).assert_success();

    let id = image.config.digest.short().to_string();
    let conflict = c.run(["rmi", &id]);
    conflict.assert_code(1);
    assert!(
        conflict.stderr.contains("must be forced"),
        "{}",
        conflict.stderr
    );

    let untag = c.run(["rmi", "other/repo:x"]);
    untag.assert_success();
    assert_eq!(untag.stdout, "Untagged: other/repo:x\n");
    assert_eq!(layer_dirs(&c).len(), 1);

    let delete = c.run(["rmi", &name]);
    delete.assert_success();
    assert!(
        delete.stdout.contains(&format!("Untagged: {name}:latest")),
        "{}",
        delete.stdout
    );
    assert!(
        delete
            .stdout
            .contains(&format!("Untagged: {name}@{}", image.digest())),
        "{}",
        delete.stdout
    );
    assert!(
        delete
            .stdout
            .contains(&format!("Deleted: {}", image.config.digest)),
        "{}",
        delete.stdout
    );
    assert!(layer_dirs(&c).is_empty());
    assert!(blobs(&c).is_empty(), "{:?}", blobs(&c));

    let gone = c.run(["rmi", &name]);
    gone.assert_code(1);
    assert!(gone.stderr.contains("No such image"), "{}", gone.stderr);

    // Forced id removal with tags in two repositories.
    c.run(["pull", &name]).assert_success();
    c.run(["tag", &name, "other/repo:x"]).assert_success();
    c.run(["rmi", "-f", &id]).assert_success();
    assert!(c.run(["images", "-q"]).stdout.is_empty());
}

#[test]
fn prune_removes_dangling_images_and_all_with_a() {
    let reg = Registry::start().unwrap();
    let v1 = busybox_builder().label("v", "1").build();
    let v2 = busybox_builder().label("v", "2").build();
    push(&reg.host(), "test/app", "latest", &v1, None).unwrap();
    let c = coracle();
    let name = format!("{}/test/app", reg.host());
    c.run(["pull", &name]).assert_success();
    push(&reg.host(), "test/app", "latest", &v2, None).unwrap();
    c.run(["pull", &name]).assert_success();
    // v1 lost its tag: dangling.
    let dangling = c.run(["images", "--filter", "dangling=true", "-q"]);
    assert_eq!(dangling.stdout.trim(), v1.config.digest.short());

    let no = c.run_stdin(["image", "prune"], b"n\n");
    no.assert_success();
    assert_eq!(c.run(["images", "-q"]).stdout.lines().count(), 2);

    let out = c.run(["image", "prune", "-f"]);
    out.assert_success();
    assert!(
        out.stdout
            .contains(&format!("deleted: {}", v1.config.digest)),
        "{}",
        out.stdout
    );
    // The only layer is shared with v2: nothing is freed.
    assert!(
        out.stdout.contains("Total reclaimed space: 0B"),
        "{}",
        out.stdout
    );
    assert_eq!(
        c.run(["images", "-q"]).stdout.trim(),
        v2.config.digest.short()
    );
    // The shared busybox layer stays for v2.
    assert_eq!(layer_dirs(&c).len(), 1);

    let all = c.run(["image", "prune", "-a", "-f"]);
    all.assert_success();
    assert!(
        !all.stdout.contains("Total reclaimed space: 0B"),
        "{}",
        all.stdout
    );
    assert!(c.run(["images", "-q"]).stdout.is_empty());
    assert!(layer_dirs(&c).is_empty());
}
