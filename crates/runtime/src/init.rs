//! The static init for `--init` (built from `init/init.c` by build.rs).

/// The init binary's bytes; the engine writes them once under its store.
pub const INIT_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/coracle-init"));
