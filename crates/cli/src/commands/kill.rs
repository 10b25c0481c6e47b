//! `coracle kill [-s SIG] CONTAINER...`.

use crate::Context;
use clap::Args;

#[derive(Args)]
pub struct KillArgs {
    /// Signal to send (name or number)
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn exec(ctx: &Context, args: KillArgs) -> anyhow::Result<i32> {
    let signal = coracle_model::parse_signal(&args.signal)?;
    super::parallel::for_each_container(ctx, &args.containers, |e, c| {
        e.containers().kill_container(c, signal)
    })
}
