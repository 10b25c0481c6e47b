//! `coracle pause CONTAINER...`: freezes every process of running containers.

use crate::Context;
use clap::Args;

#[derive(Args)]
pub struct PauseArgs {
    /// Containers to pause, by name or id
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Like docker: pause what can be paused, printing each as given; report each
/// failure and exit 1 if any failed.
pub fn exec(ctx: &Context, args: PauseArgs) -> anyhow::Result<i32> {
    super::parallel::for_each_container(ctx, &args.containers, |e, c| {
        e.containers().pause_container(c)
    })
}
