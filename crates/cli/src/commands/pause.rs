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
    let mut engine = ctx.engine()?;
    let mut failed = false;
    for c in &args.containers {
        match engine.pause_container(c) {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}
