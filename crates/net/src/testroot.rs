//! The root check of this crate's kernel tests (netns, links, nftables).

use std::io::Write;

/// True (after one line naming the test) when this is not root: the caller returns.
/// The line goes straight to the terminal, past libtest's capture of `eprintln!`, so a
/// non-root `cargo test` says what it left out.
pub(crate) fn skip_unless_root() -> bool {
    if rustix::process::geteuid().is_root() {
        return false;
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    let _ = writeln!(std::io::stderr(), "skipped: {test}: needs root");
    true
}
