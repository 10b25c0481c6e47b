//! Process-wide utilities of the binary that every front end needs and that live in
//! the runtime (they concern the process the runtime forks from): re-exported here so
//! that front ends depend on the engine alone.

/// `eprintln!` that never panics (a monitor's stderr is a file on a disk that may be
/// full).
pub use coracle_runtime::note;

/// The debug log's writer: stderr as the runtime pinned it, never failing.
pub use coracle_runtime::log_sink::LogSink;

/// Restores SIGPIPE's default action (Rust's runtime ignores it).
pub use coracle_runtime::monitor::default_sigpipe;

/// Whether this process runs from a sealed copy of the binary, and the re-execution
/// into one (CVE-2019-5736) the built-in runtime needs before it forks into a container.
pub use coracle_runtime::exeseal::{ensure_sealed, self_is_sealed, SealError};
