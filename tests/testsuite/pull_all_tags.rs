//! `pull -a/--all-tags` (Issue 11 C.3): every tag the registry lists, layers shared
//! between tags fetched once, docker's output; a tag or digest with `-a` is refused.

use crate::common::*;

#[test]
fn all_tags_are_pulled_sharing_their_layers() {
    let reg = Registry::start().expect("start registry");
    let base = busybox_image();
    let other = busybox_builder()
        .layer(&Layer::new().file("extra", "more\n", 0o644))
        .build();
    let d1 = push(&reg.host(), "test/multi", "v1", &base, None).unwrap();
    let d2 = push(&reg.host(), "test/multi", "v2", &base, None).unwrap();
    let d3 = push(&reg.host(), "test/multi", "v3", &other, None).unwrap();
    // Another repository's tags are not pulled.
    push(&reg.host(), "test/else", "v9", &base, None).unwrap();
    let c = coracle();
    let repo = format!("{}/test/multi", reg.host());

    let out = c.run(["pull", "--all-tags", &repo]);
    out.assert_success();
    for tag in ["v1", "v2", "v3"] {
        assert!(
            out.stdout
                .contains(&format!("{tag}: Pulling from test/multi")),
            "{}",
            out.stdout
        );
    }
    for d in [&d1, &d2, &d3] {
        assert!(
            out.stdout.contains(&format!("Digest: {d}")),
            "{}",
            out.stdout
        );
    }
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        &lines[lines.len() - 2..],
        [
            format!("Status: Downloaded newer image for {repo}"),
            repo.clone()
        ],
        "{}",
        out.stdout
    );
    let images = c.run(["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut listed: Vec<&str> = images.stdout.lines().collect();
    listed.sort();
    assert_eq!(
        listed,
        ["v1", "v2", "v3"].map(|t| format!("{repo}:{t}")),
        "{}",
        images.stdout
    );
    // busybox's layer once, plus the extra one.
    assert_eq!(layer_dirs(&c).len(), 2, "{:?}", layer_dirs(&c));

    let again = c.run(["pull", "-a", &repo]);
    again.assert_success();
    assert!(
        again
            .stdout
            .contains(&format!("Status: Image is up to date for {repo}")),
        "{}",
        again.stdout
    );
    let quiet = c.run(["pull", "-a", "-q", &repo]);
    quiet.assert_success();
    assert_eq!(quiet.stdout, format!("{repo}\n"));
}

#[test]
fn a_tag_or_digest_with_all_tags_is_refused() {
    let reg = Registry::start().expect("start registry");
    let digest = push(&reg.host(), "test/one", "v1", &busybox_image(), None).unwrap();
    let c = coracle();
    for name in [
        format!("{}/test/one:v1", reg.host()),
        format!("{}/test/one@{digest}", reg.host()),
    ] {
        let out = c.run(["pull", "-a", &name]);
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stderr.contains("tag can't be used with --all-tags/-a"),
            "{}",
            out.stderr
        );
    }
    let out = c.run(["pull", "-a", &format!("{}/test/none", reg.host())]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("repository") && out.stderr.contains("not found"),
        "{}",
        out.stderr
    );
    assert!(layer_dirs(&c).is_empty());
}
