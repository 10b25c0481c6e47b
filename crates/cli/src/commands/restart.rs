//! `coracle restart [-t N] CONTAINER...`.

use crate::Context;
use clap::Args;

#[derive(Args)]
pub struct RestartArgs {
    /// Seconds to wait for stop before killing the container
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        allow_negative_numbers = true
    )]
    pub time: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn exec(ctx: &Context, args: RestartArgs) -> anyhow::Result<i32> {
    let mut engine = ctx.engine()?;
    let mut failed = false;
    for c in &args.containers {
        match engine.containers().restart_container(c, args.time) {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}
