//! Pulls racing each other and pulls cut short: concurrent pulls of one blob or layer
//! share one download and one unpack; a killed pull's partial download is resumed by
//! the next process; a Content-Length longer than the blob does not end a pull whose
//! bytes all arrived; `image prune` counts what a killed pull left; a full store says
//! so.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// `len` bytes that do not compress (xorshift from `seed`).
fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn noise_layer(name: &str, mib: usize, seed: u32) -> Layer {
    Layer::new().file(name, noise(mib << 20, seed), 0o644)
}

/// A registry holding `images` (repository, layers), and a proxy in front of it.
fn registry_with(images: &[(&str, Vec<Layer>)]) -> (Registry, FaultProxy, Vec<Image>) {
    let reg = Registry::start().unwrap();
    let mut built = Vec::new();
    for (repo, layers) in images {
        let mut b = ImageBuilder::new();
        for l in layers {
            b = b.layer(l);
        }
        let image = b.build();
        push(&reg.host(), repo, "latest", &image, None).unwrap();
        built.push(image);
    }
    let proxy = FaultProxy::start(&reg.host()).unwrap();
    (reg, proxy, built)
}

/// Starts `coracle pull -q NAME` for each name at once, into one store; waits for all.
fn pull_all(c: &Coracle, names: &[String]) -> Vec<std::process::Output> {
    let children: Vec<Child> = names
        .iter()
        .map(|n| {
            c.command(["pull", "-q", n])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|ch| ch.wait_with_output().unwrap())
        .collect()
}

fn assert_all_succeeded(outs: &[std::process::Output]) {
    for (i, o) in outs.iter().enumerate() {
        assert!(
            o.status.success(),
            "pull {i} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// Lock files and temp entries left in the store's blob and layer dirs.
fn leftovers(c: &Coracle) -> Vec<String> {
    let mut out: Vec<String> = entries(&c.root().join("blobs/ingest"));
    out.extend(
        entries(&c.root().join("layers"))
            .into_iter()
            .filter(|e| e.starts_with('.')),
    );
    out
}

#[test]
fn six_concurrent_pulls_download_and_unpack_each_layer_once() {
    let layers = vec![
        noise_layer("a", 3, 1),
        noise_layer("b", 3, 2),
        noise_layer("c", 3, 3),
    ];
    let (_reg, proxy, images) = registry_with(&[("test/big", layers)]);
    // Slow enough that the six pulls' downloads overlap.
    proxy.set_fault(Fault::Throttle {
        bytes_per_sec: 8 << 20,
    });
    let c = coracle();
    let name = format!("{}/test/big", proxy.host());
    let outs = pull_all(&c, &vec![name.clone(); 6]);
    assert_all_succeeded(&outs);
    for l in &images[0].layers {
        assert_eq!(
            proxy.gets_of(&l.digest.to_string()),
            1,
            "layer {} served once: {:?}",
            l.digest,
            proxy.blob_log()
        );
    }
    assert_eq!(
        inspect(&c, &name)["Id"],
        images[0].config.digest.to_string()
    );
    assert_eq!(layer_dirs(&c).len(), 3);
    assert!(leftovers(&c).is_empty(), "{:?}", leftovers(&c));
    for (i, f) in ["a", "b", "c"].iter().enumerate() {
        let found = layer_dirs(&c).iter().any(|d| {
            std::fs::read(c.root().join("layers").join(d).join(f))
                .is_ok_and(|b| b == noise(3 << 20, i as u32 + 1))
        });
        assert!(found, "layer with /{f} unpacked intact");
    }
}

#[test]
fn images_sharing_layers_in_different_orders_pull_concurrently() {
    let base = noise_layer("base", 2, 11);
    let mid = noise_layer("mid", 2, 12);
    let (_reg, proxy, images) = registry_with(&[
        (
            "test/one",
            vec![base.clone(), mid.clone(), noise_layer("one", 1, 13)],
        ),
        (
            "test/two",
            vec![mid.clone(), base.clone(), noise_layer("two", 1, 14)],
        ),
        (
            "test/three",
            vec![base.clone(), noise_layer("three", 1, 15)],
        ),
    ]);
    proxy.set_fault(Fault::Throttle {
        bytes_per_sec: 8 << 20,
    });
    let c = coracle();
    let names: Vec<String> = ["one", "two", "three", "one", "two", "three"]
        .iter()
        .map(|r| format!("{}/test/{r}", proxy.host()))
        .collect();
    assert_all_succeeded(&pull_all(&c, &names));
    for (i, image) in images.iter().enumerate() {
        assert_eq!(
            inspect(&c, &names[i])["Id"],
            image.config.digest.to_string()
        );
    }
    // base and mid are one blob each, whatever their place in the images.
    for l in &images[0].layers {
        assert_eq!(
            proxy.gets_of(&l.digest.to_string()),
            1,
            "blob {} served once: {:?}",
            l.digest,
            proxy.blob_log()
        );
    }
    assert!(leftovers(&c).is_empty(), "{:?}", leftovers(&c));
}

/// The partial download of `blob` in the store's ingest dir, if any, and its size.
fn partial_of(c: &Coracle, blob: &coracle_core::Digest) -> Option<(PathBuf, u64)> {
    let dir = c.root().join("blobs/ingest");
    entries(&dir)
        .into_iter()
        .filter(|e| e.starts_with(&format!("{}.", blob.hex())) && !e.ends_with(".lock"))
        .map(|e| dir.join(e))
        .find_map(|p| std::fs::metadata(&p).ok().map(|m| (p.clone(), m.len())))
}

/// Starts a pull of `name` and SIGKILLs it once its download of `blob` has more than
/// `min` bytes on disk. Returns the partial file's size then.
fn kill_mid_download(c: &Coracle, name: &str, blob: &coracle_core::Digest, min: u64) -> u64 {
    let mut child = c
        .command(["pull", "-q", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let size = loop {
        if let Some((_, size)) = partial_of(c, blob) {
            if size > min {
                break size;
            }
        }
        assert!(Instant::now() < deadline, "the download never grew");
        assert!(child.try_wait().unwrap().is_none(), "pull ended early");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Child::kill sends SIGKILL to this child's pid.
    child.kill().unwrap();
    child.wait().unwrap();
    size
}

#[test]
fn a_killed_pulls_download_is_resumed_by_the_next_pull() {
    let (_reg, proxy, images) = registry_with(&[("test/slow", vec![noise_layer("p", 6, 21)])]);
    let blob = images[0].layers[0].digest.clone();
    proxy.set_fault(Fault::Throttle {
        bytes_per_sec: 2 << 20,
    });
    let c = coracle();
    let name = format!("{}/test/slow", proxy.host());
    let had = kill_mid_download(&c, &name, &blob, 1 << 20);
    // Another command in between must not throw the partial download away.
    c.run(["images"]).assert_success();
    let (_, kept) = partial_of(&c, &blob).expect("partial download kept");
    assert!(kept >= had);

    proxy.set_fault(Fault::None);
    c.run(["pull", "-q", &name]).assert_success();
    let last = proxy
        .blob_log()
        .into_iter()
        .rfind(|r| r.digest == blob.to_string())
        .unwrap();
    let from: u64 = last
        .range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("resumed with a Range request: {:?}", proxy.blob_log()));
    assert!(from >= had, "resumed from {from}, had {had}");
    assert_eq!(
        inspect(&c, &name)["Id"],
        images[0].config.digest.to_string()
    );
    let stored = std::fs::read(c.root().join("blobs/sha256").join(blob.hex())).unwrap();
    assert_eq!(coracle_core::Digest::sha256_of(&stored), blob);
    let layer = &layer_dirs(&c)[0];
    assert_eq!(
        std::fs::read(c.root().join("layers").join(layer).join("p")).unwrap(),
        noise(6 << 20, 21)
    );
    assert!(leftovers(&c).is_empty(), "{:?}", leftovers(&c));
}

#[test]
fn a_content_length_longer_than_the_blob_does_not_end_the_pull() {
    let (_reg, proxy, images) = registry_with(&[("test/long", vec![noise_layer("p", 2, 31)])]);
    proxy.set_fault(Fault::OverstateLength { extra: 100 });
    let c = coracle();
    let name = format!("{}/test/long", proxy.host());
    c.run(["pull", "-q", &name]).assert_success();
    assert_eq!(
        inspect(&c, &name)["Id"],
        images[0].config.digest.to_string()
    );
    // All bytes came with the first GET: no 416 asked for.
    assert!(
        proxy.blob_log().iter().all(|r| r.status != 416),
        "{:?}",
        proxy.blob_log()
    );
}

/// "1.23MB" (docker's decimal units) in bytes.
fn parse_human(s: &str) -> u64 {
    let split = s.find(|ch: char| ch.is_ascii_alphabetic()).unwrap();
    let (num, unit) = s.split_at(split);
    let mult = match unit {
        "B" => 1.0,
        "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        other => panic!("unit {other}"),
    };
    (num.parse::<f64>().unwrap() * mult) as u64
}

#[test]
fn image_prune_counts_a_killed_pulls_leftovers() {
    // A small first layer completes (blob and layer committed, no image recorded);
    // the big one is cut mid-download.
    let (_reg, proxy, images) = registry_with(&[(
        "test/cut",
        vec![noise_layer("small", 1, 41), noise_layer("big", 6, 42)],
    )]);
    proxy.set_fault(Fault::Throttle {
        bytes_per_sec: 2 << 20,
    });
    let c = coracle();
    let name = format!("{}/test/cut", proxy.host());
    let big = images[0].layers[1].digest.clone();
    let had = kill_mid_download(&c, &name, &big, 1 << 20);
    let out = c.run(["image", "prune", "-a", "-f"]);
    out.assert_success();
    let reclaimed = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        parse_human(reclaimed) >= had,
        "reclaimed {reclaimed}, the partial download alone had {had} bytes"
    );
    assert!(entries(&c.root().join("blobs/ingest")).is_empty());
    assert!(blobs(&c).is_empty(), "{:?}", blobs(&c));
    assert!(entries(&c.root().join("layers")).is_empty());
}

fn store_root(c: &Coracle) -> String {
    Path::new(&c.root()).display().to_string()
}

#[test]
fn a_pull_into_a_full_store_says_no_space_and_names_the_store() {
    if skip_unless_root() {
        return;
    }
    // 12 MiB: the download itself does not fit; 5 MiB: the blob fits, the blob and
    // its unpacked copy do not (the unpacker or the download runs out first).
    let (_reg, proxy, _images) = registry_with(&[
        ("test/huge", vec![noise_layer("h", 12, 51)]),
        ("test/half", vec![noise_layer("h", 5, 52)]),
    ]);
    for repo in ["huge", "half"] {
        let store = TmpfsStore::new(coracle(), "8m");
        let c = store.c.as_ref().unwrap();
        let out = c.run(["pull", &format!("{}/test/{repo}", proxy.host())]);
        out.assert_code(1);
        let first = out.stderr.lines().next().unwrap_or_default().to_string();
        assert!(
            first.contains("no space left on device") && first.contains(&store_root(c)),
            "{repo}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("consumer of the download stream"),
            "{repo}: {}",
            out.stderr
        );
    }
}
