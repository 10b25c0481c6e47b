//! Shared set-up for the black-box tests: the coracle binary with an isolated store,
//! and registries started per test on loopback.
#![allow(dead_code)]

pub use coracle_testsupport::*;
use std::path::Path;

pub fn coracle() -> Coracle {
    Coracle::new(env!("CARGO_BIN_EXE_coracle"))
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Start a registry with no auth holding busybox as `test/busybox:latest`.
pub fn registry_with_busybox() -> (Registry, Image) {
    let reg = Registry::start().expect("start registry");
    let image = busybox_image();
    push(&reg.host(), "test/busybox", "latest", &image, None).expect("push busybox");
    (reg, image)
}

/// Names of the entries of a directory (empty if it does not exist), sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Committed layer directories (temp ones start with a dot).
pub fn layer_dirs(c: &Coracle) -> Vec<String> {
    entries(&c.root().join("layers"))
        .into_iter()
        .filter(|e| !e.starts_with('.'))
        .collect()
}

/// Blobs in the content store.
pub fn blobs(c: &Coracle) -> Vec<String> {
    entries(&c.root().join("blobs/sha256"))
}

pub fn inspect(c: &Coracle, image: &str) -> serde_json::Value {
    let out = c.run(["image", "inspect", image]);
    out.assert_success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("inspect prints JSON");
    v[0].clone()
}

/// A store with busybox pulled and tagged `box`, plus its registry (keep it alive).
pub fn with_busybox() -> (Registry, Coracle) {
    let (reg, _image) = registry_with_busybox();
    let c = coracle();
    let name = format!("{}/test/busybox", reg.host());
    c.run(["pull", "-q", &name]).assert_success();
    c.run(["tag", &name, "box"]).assert_success();
    (reg, c)
}

/// `coracle run --rm ARGS...`.
pub fn run(c: &Coracle, args: &[&str]) -> Output {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    c.run(all)
}

/// crun (not coracle) refuses hybrid cgroup hosts until the v1 hugetlb hierarchy is
/// mounted; the machine's fix, applied idempotently for the peer.
pub fn crun_hybrid_cgroup_fix() {
    let hybrid = std::path::Path::new("/sys/fs/cgroup/unified").is_dir();
    let mounted = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(" /sys/fs/cgroup/hugetlb ");
    if hybrid && !mounted {
        std::fs::create_dir_all("/sys/fs/cgroup/hugetlb").unwrap();
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "cgroup",
                "-o",
                "hugetlb",
                "cgroup",
                "/sys/fs/cgroup/hugetlb",
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount the hugetlb cgroup hierarchy for crun");
    }
}
