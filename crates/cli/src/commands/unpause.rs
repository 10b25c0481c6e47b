//! `coracle unpause CONTAINER...`: thaws paused containers.

use crate::Context;
use clap::Args;

#[derive(Args)]
pub struct UnpauseArgs {
    /// Containers to unpause, by name or id
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Like docker: unpause what can be unpaused, printing each as given; report each
/// failure and exit 1 if any failed.
pub fn exec(ctx: &Context, args: UnpauseArgs) -> anyhow::Result<i32> {
    super::parallel::for_each_container(ctx, &args.containers, |e, c| {
        e.containers().unpause_container(c)
    })
}
