//! Coracle's runtime: run options (coracle-model) and image config -> OCI runtime spec (pure), the
//! default seccomp profile, and (in `runtime`) the Runtime trait and its implementations.

pub mod cgroup_devices;
pub mod cgroup_stats;
pub mod cgroup_v1_extras;
pub mod exec_session;
pub mod exeseal;
mod ignored_signals;
pub mod init;
pub mod log_sink;
pub mod lsm;
pub mod monitor;
mod relay;
pub mod runtime;
pub mod seccomp;
pub mod spec;
pub mod teardown;
pub mod tty;
