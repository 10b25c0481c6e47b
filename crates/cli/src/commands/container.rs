//! `container` subcommands: the docker management-command forms (`container ls`,
//! `container inspect`, ...) and `container prune`.

use crate::commands::inspect::ContainerInspectArgs;
use crate::commands::ps::{parse_filters, PsArgs};
use crate::commands::rename::RenameArgs;
use crate::commands::{
    attach, cp, create, exec, kill, logs, pause, port, restart, rm, run, start, stats, stop, top,
    unpause, wait,
};
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
    /// Create and run a new container from an image
    Run(Box<run::RunArgs>),
    /// Create a new container
    Create(Box<create::CreateArgs>),
    /// Start one or more stopped containers
    Start(start::StartArgs),
    /// Stop one or more running containers
    Stop(stop::StopArgs),
    /// Kill one or more running containers
    Kill(kill::KillArgs),
    /// Restart one or more containers
    Restart(restart::RestartArgs),
    /// Remove one or more containers
    #[command(visible_alias = "remove")]
    Rm(rm::RmArgs),
    /// Fetch the logs of a container
    Logs(logs::LogsArgs),
    /// Execute a command in a running container
    Exec(exec::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(attach::AttachArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(wait::WaitArgs),
    /// Display the running processes of a container
    Top(top::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// List port mappings or a specific mapping for the container
    Port(port::PortArgs),
    /// Pause all processes within one or more containers
    Pause(pause::PauseArgs),
    /// Unpause all processes within one or more containers
    Unpause(unpause::UnpauseArgs),
    /// Update configuration of one or more containers
    Update(Box<crate::commands::update::UpdateArgs>),
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
        ContainerCommand::Run(a) => run::exec(ctx, *a),
        ContainerCommand::Create(a) => create::exec(ctx, *a),
        ContainerCommand::Start(a) => start::exec(ctx, a),
        ContainerCommand::Stop(a) => stop::exec(ctx, a),
        ContainerCommand::Kill(a) => kill::exec(ctx, a),
        ContainerCommand::Restart(a) => restart::exec(ctx, a),
        ContainerCommand::Rm(a) => rm::exec(ctx, a),
        ContainerCommand::Logs(a) => logs::exec(ctx, a),
        ContainerCommand::Exec(a) => exec::exec(ctx, a),
        ContainerCommand::Attach(a) => attach::exec(ctx, a),
        ContainerCommand::Wait(a) => wait::exec(ctx, a),
        ContainerCommand::Top(a) => top::exec(ctx, a),
        ContainerCommand::Stats(a) => stats::exec(ctx, a),
        ContainerCommand::Cp(a) => cp::exec(ctx, a),
        ContainerCommand::Port(a) => port::exec(ctx, a),
        ContainerCommand::Pause(a) => pause::exec(ctx, a),
        ContainerCommand::Unpause(a) => unpause::exec(ctx, a),
        ContainerCommand::Update(a) => crate::commands::update::exec(ctx, *a),
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
    let report = ctx.engine()?.containers().prune_containers(&filters)?;
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
