//! `coracle system boot`: bring back, after a host reboot, the containers whose
//! restart policy asks for it. With no daemon, nothing else would: run it once at
//! boot (rc.local, a cron `@reboot` line, or a oneshot service).

use crate::Context;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Start containers with restart policy `always`, or `unless-stopped` not stopped by the user
    Boot,
    /// Show docker disk usage
    Df(crate::commands::system_df::DfArgs),
    /// Remove unused data
    Prune(crate::commands::system_prune::PruneArgs),
}

pub fn exec(ctx: &Context, cmd: SystemCommand) -> anyhow::Result<i32> {
    match cmd {
        SystemCommand::Df(a) => crate::commands::system_df::exec(ctx, a),
        SystemCommand::Prune(a) => crate::commands::system_prune::exec(ctx, a),
        SystemCommand::Boot => {
            let mut engine = ctx.engine()?;
            let report = engine.boot()?;
            for name in &report.started {
                println!("{name}");
            }
            for (name, e) in &report.failed {
                eprintln!("Error: start {name}: {e}");
            }
            Ok(if report.failed.is_empty() { 0 } else { 1 })
        }
    }
}
