//! Coracle's black-box integration tests: one test binary with a module per area (as
//! cargo's own testsuite), so the suite links once. Run one area with
//! `cargo test --test testsuite -- exec::` or one test with its full path.
//!
//! The tests share this process and run on parallel threads: nothing here may change
//! process-wide state (environment, cwd, umask, signal dispositions, rlimits); set such
//! things on the child `Command` instead.

mod common;

mod archive;
mod attach_binary;
mod auth;
mod cgroup_mounts;
mod cli_surface;
mod crash;
mod debug_log;
mod exec;
mod faults;
mod faults_db;
mod faults_disk;
mod faults_exec;
mod faults_full;
mod faults_misc;
mod health;
mod image_volumes;
mod images;
mod lifecycle;
mod logs;
mod network;
mod network_pools;
mod network_ports;
mod ps_inspect;
mod pull;
mod pull_all_tags;
mod pull_concurrent;
mod run;
mod run_cgroup_flags;
mod run_flags;
mod run_script_flags;
mod search;
mod security_exec;
mod security_layers;
mod security_opts;
mod security_store;
mod teardown;
mod top_stats_cp;
mod unpack;
mod update;
mod users_groups;
mod volume_opts;
