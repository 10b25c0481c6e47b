use crate::Context;
use clap::Args;

#[derive(Args)]
pub struct RmArgs {
    /// Containers to remove, by name or id
    #[arg(required = true)]
    pub containers: Vec<String>,
    /// Force the removal of a running container (kills it first)
    #[arg(short, long)]
    pub force: bool,
    /// Remove the anonymous volumes of the container
    #[arg(short, long)]
    pub volumes: bool,
}

/// Like docker: remove what can be removed, report each failure, exit 1 if any failed.
pub fn exec(ctx: &Context, args: RmArgs) -> anyhow::Result<i32> {
    super::parallel::for_each_container(ctx, &args.containers, |e, c| {
        e.containers().remove_container(c, args.force, args.volumes)
    })
}
