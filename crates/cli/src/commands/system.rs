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
    /// Check the store's state database; exits 1 when it is damaged
    Check(CheckArgs),
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// Rebuild a damaged or missing state database from the store's files (the
    /// damaged file is kept beside it as state.db.damaged-TIME)
    #[arg(long)]
    repair: bool,
}

pub fn exec(ctx: &Context, cmd: SystemCommand) -> anyhow::Result<i32> {
    match cmd {
        SystemCommand::Df(a) => crate::commands::system_df::exec(ctx, a),
        SystemCommand::Prune(a) => crate::commands::system_prune::exec(ctx, a),
        SystemCommand::Check(a) if a.repair => Ok(crate::commands::system_repair::exec(ctx)),
        SystemCommand::Check(_) => Ok(check(ctx)),
        SystemCommand::Boot => {
            let mut engine = ctx.engine()?;
            let report = engine.containers().boot()?;
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

/// `system check`: the state database checked without opening the store (a damaged
/// one refuses every other command), and what the store holds beside it.
fn check(ctx: &Context) -> i32 {
    let paths = coracle_engine::StorePaths::new(ctx.root.clone());
    let db = paths.database();
    let count = |dir: std::path::PathBuf| {
        std::fs::read_dir(dir).map_or(0, |rd| {
            rd.flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count()
        })
    };
    println!("store: {}", paths.root.display());
    println!(
        "files: {} container directories, {} layers, {} blobs",
        count(paths.containers()),
        count(paths.layers()),
        count(paths.blobs().join("sha256"))
    );
    match paths.check_database() {
        None => {
            println!("state database {}: ok", db.display());
            0
        }
        Some(why) => {
            println!("state database {}: damaged: {why}", db.display());
            1
        }
    }
}
