//! Builds `init/init.c`, the static init that `coracle run --init` binds into
//! containers (a static binary runs in any image, with or without a libc).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=init/init.c");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("coracle-init");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-Wall", "-o"])
        .arg(&out)
        .arg("init/init.c")
        .status()
        .unwrap_or_else(|e| panic!("run {cc} to build init/init.c: {e}"));
    assert!(
        status.success(),
        "{cc} failed to build init/init.c (needs a static libc: libc6-dev)"
    );
}
