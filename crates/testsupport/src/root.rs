//! The root check shared by every crate's kernel tests (mounts, namespaces, links,
//! nftables, device nodes) and the black-box tests.

use std::io::Write;

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// True (after one line naming the test) when this is not root: the caller returns.
/// The line goes straight to the terminal, past libtest's capture of `eprintln!`, so a
/// non-root `cargo test` says what it left out.
pub fn skip_unless_root() -> bool {
    if is_root() {
        return false;
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "skipped: {test}: needs root");
    true
}
