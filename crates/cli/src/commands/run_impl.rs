//! `run` in the foreground: create the container, then become its monitor: the
//! container is started from a single-threaded process that stays its parent,
//! forwards signals and exits with its status. When this process is still
//! single-threaded (no pull started a thread pool) it is the monitor itself; otherwise
//! it re-executes itself as `__monitor` to get a fresh single-threaded process.
//! Exit codes as docker: 125 when coracle fails, else the container's.

use crate::commands::run::RunArgs;
use crate::commands::run_options::to_run_options;
use crate::progress::PullDisplay;
use crate::Context;
use coracle_core::Platform;
use coracle_engine::RunRequest;
use std::os::unix::process::CommandExt;

pub fn exec(ctx: &Context, args: RunArgs) -> anyhow::Result<i32> {
    match create_and_monitor(ctx, &args) {
        Ok(code) => Ok(code),
        Err(err) => {
            eprintln!("coracle: {}", crate::error_chain(&err));
            Ok(crate::EXIT_ENGINE_ERROR)
        }
    }
}

fn create_and_monitor(ctx: &Context, args: &RunArgs) -> anyhow::Result<i32> {
    if args.detach {
        anyhow::bail!("-d/--detach is not supported yet: it comes with the container monitor; run in the foreground for now");
    }
    let options = to_run_options(args)?;
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let mut engine = ctx.engine()?;
    // The container owns stdout: pull progress goes to stderr, as docker's.
    let display = PullDisplay::on_stderr();
    let prepared = engine.create_container(
        &RunRequest {
            image: args.image.clone(),
            platform,
            options,
        },
        &display,
    );
    display.finish();
    let prepared = prepared?;
    if single_threaded() {
        return Ok(engine.monitor_foreground(&prepared.id)?);
    }
    // exec returns only on failure; on success the monitor is this process (same
    // pid, terminal and signals), so nothing needs forwarding twice.
    let err = std::process::Command::new("/proc/self/exe")
        .arg("--root")
        .arg(&ctx.root)
        .arg("__monitor")
        .arg(&prepared.id)
        .exec();
    let _ = engine.remove_prepared(&prepared);
    anyhow::bail!("start the monitor for {}: {err}", prepared.id)
}

/// Whether this process has one thread (forking a container from a multi-threaded
/// process is unsafe).
fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .map(|n| n.trim() == "1")
        })
        .unwrap_or(false)
}
