//! `coracle stop [-t N] [-s SIG] CONTAINER...`.

use crate::Context;
use clap::Args;

#[derive(Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container (default: the container's, 10)
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        allow_negative_numbers = true
    )]
    pub time: Option<i64>,
    /// Signal to send (default: the container's stop signal)
    #[arg(short, long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn exec(ctx: &Context, args: StopArgs) -> anyhow::Result<i32> {
    let signal = args
        .signal
        .as_deref()
        .map(coracle_model::parse_signal)
        .transpose()?;
    super::parallel::for_each_container(ctx, &args.containers, |e, c| {
        e.containers().stop_container(c, args.time, signal)
    })
}
