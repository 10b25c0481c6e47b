//! Facts about the host that more than one service reads.

use std::path::Path;

/// The filesystem type (statfs `f_type`, linux/magic.h) of `path`.
pub(crate) fn fs_magic(path: &Path) -> Option<i64> {
    // f_type is i64 on x86_64 and aarch64 but 32 bits wide on other architectures.
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::statfs(path).ok().map(|st| st.f_type as i64)
}
