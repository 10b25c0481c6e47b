//! `run` in the foreground: create the container, then become its monitor by
//! re-executing this binary (`__monitor`), so the container is started from a fresh
//! single-threaded process that stays its parent, forwards signals and exits with its
//! status. Exit codes as docker: 125 when coracle fails, else the container's.

use crate::commands::run::RunArgs;
use crate::commands::run_options::to_run_options;
use crate::progress::PullDisplay;
use crate::Context;
use coracle_core::Platform;
use coracle_engine::RunRequest;
use std::os::unix::process::CommandExt;

pub fn exec(ctx: &Context, args: RunArgs) -> anyhow::Result<i32> {
    let err = match create_and_exec(ctx, &args) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    eprintln!("coracle: {}", crate::error_chain(&err));
    Ok(crate::EXIT_ENGINE_ERROR)
}

enum Never {}

fn create_and_exec(ctx: &Context, args: &RunArgs) -> anyhow::Result<Never> {
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
