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
    let signal = coracle_runtime::options::parse_signal(&args.signal)?;
    let mut engine = ctx.engine()?;
    let mut failed = false;
    for c in &args.containers {
        match engine.kill_container(c, signal) {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}
