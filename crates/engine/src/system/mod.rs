//! The store as a whole: host and engine information, disk usage, and the repair of
//! a damaged store.

pub(crate) mod disk_usage;
pub(crate) mod info;
pub(crate) mod repair;
