//! `container` subcommands: the docker management-command forms (`container ls`,
//! `container inspect`, ...) and `container prune`.

use crate::commands::inspect::ContainerInspectArgs;
use crate::commands::ps::{parse_filters, PsArgs};
use crate::commands::rename::RenameArgs;
use crate::Context;
use clap::{Args, Subcommand};
use std::io::{BufRead, Write};

#[derive(Subcommand)]
pub enum ContainerCommand {
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>", "label=<key>[=<value>]",
    /// "label!=<key>[=<value>]")
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

pub fn exec(ctx: &Context, cmd: ContainerCommand) -> anyhow::Result<i32> {
    match cmd {
        ContainerCommand::Ls(a) => crate::commands::ps::exec(ctx, a),
        ContainerCommand::Inspect(a) => crate::commands::inspect::exec_container(ctx, a),
        ContainerCommand::Rename(a) => crate::commands::rename::exec(ctx, a),
        ContainerCommand::Prune(a) => prune(ctx, a),
    }
}

const PRUNE_WARNING: &str =
    "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?";

/// docker's prompt: only `y` or `Y` goes on; anything else, or no input, cancels
/// quietly with status 0.
fn confirm(message: &str) -> anyhow::Result<bool> {
    print!("{message} [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim().eq_ignore_ascii_case("y"))
}

fn prune(ctx: &Context, args: PruneArgs) -> anyhow::Result<i32> {
    let filters = parse_filters(&args.filter, "--filter")?;
    if !args.force && !confirm(PRUNE_WARNING)? {
        return Ok(0);
    }
    let report = ctx.engine()?.prune_containers(&filters)?;
    for (id, why) in &report.failed {
        eprintln!("WARNING: failed to prune container {id}: {why}");
    }
    let mut out = String::new();
    if !report.deleted.is_empty() {
        out.push_str("Deleted Containers:\n");
        for id in &report.deleted {
            out.push_str(id);
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "Total reclaimed space: {}\n",
        crate::format::human_size4(report.space_reclaimed)
    ));
    print!("{out}");
    Ok(0)
}
