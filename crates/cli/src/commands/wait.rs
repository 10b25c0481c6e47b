//! `coracle wait CONTAINER...`: blocks until each stops; prints their exit codes.

use crate::Context;
use clap::Args;

#[derive(Args)]
pub struct WaitArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn exec(ctx: &Context, args: WaitArgs) -> anyhow::Result<i32> {
    let mut engine = ctx.engine()?;
    let mut failed = false;
    for c in &args.containers {
        match engine.containers().wait_container(c) {
            Ok(code) => println!("{code}"),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}
