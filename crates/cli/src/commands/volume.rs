//! `coracle volume ...`: named volumes, as docker's local driver.

use crate::commands::ps::parse_filters;
use crate::format::Format;
use crate::Context;
use clap::{Args, Subcommand};
use std::io::{BufRead, Write};

#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove unused volumes
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// Volume name (generated when omitted)
    pub name: Option<String>,
    /// Set metadata for a volume
    #[arg(long, value_name = "K=V")]
    pub label: Vec<String>,
    /// Specify volume driver name (only `local`)
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set driver specific options: type, o, device (mounted as `mount -t TYPE -o O
    /// DEVICE` while a container uses the volume), size
    #[arg(short, long = "opt", value_name = "K=V")]
    pub opt: Vec<String>,
}

#[derive(Args)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output: json or a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Provide filter values (e.g. "dangling=true", "driver=local", "label=<key>",
    /// "name=<name>")
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

#[derive(Args)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args)]
pub struct RmArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Accepted for docker compatibility: volumes are removed either way
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

pub fn exec(ctx: &Context, cmd: VolumeCommand) -> anyhow::Result<i32> {
    let mut engine = ctx.engine()?;
    match cmd {
        VolumeCommand::Create(a) => {
            check_driver(&a)?;
            let options = parse_opts(&a.opt);
            let labels = a
                .label
                .iter()
                .map(|l| match l.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (l.clone(), String::new()),
                })
                .collect();
            let v = engine
                .volumes()
                .create_volume(a.name.as_deref(), labels, options)?;
            println!("{}", v["Name"].as_str().unwrap_or_default());
            Ok(0)
        }
        VolumeCommand::Ls(a) => {
            let filters = parse_filters(&a.filter, "-f, --filter")?;
            let vols = engine.volumes().list_volumes_filtered(&filters)?;
            if a.quiet {
                for v in &vols {
                    println!("{}", v["Name"].as_str().unwrap_or_default());
                }
            } else if let Some(f) = a.format {
                print!("{}", Format::parse(&f).render_all(&vols)?);
            } else {
                let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".to_string()]];
                for v in &vols {
                    rows.push(vec![
                        v["Driver"].as_str().unwrap_or("local").to_string(),
                        v["Name"].as_str().unwrap_or_default().to_string(),
                    ]);
                }
                print!("{}", crate::format::table(&rows));
            }
            Ok(0)
        }
        VolumeCommand::Inspect(a) => {
            let mut found = Vec::new();
            let mut failed = false;
            for n in &a.names {
                match engine.volumes().inspect_volume(n) {
                    Ok(v) => found.push(v),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        failed = true;
                    }
                }
            }
            crate::commands::inspect::print_inspect(&found, a.format.as_deref())?;
            Ok(if failed { 1 } else { 0 })
        }
        VolumeCommand::Rm(a) => {
            let mut failed = false;
            for n in &a.names {
                match engine.volumes().remove_volume(n) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        failed = true;
                    }
                }
            }
            Ok(if failed { 1 } else { 0 })
        }
        VolumeCommand::Prune(a) => {
            let filters = parse_filters(&a.filter, "--filter")?;
            if !a.force {
                let which = if a.all { "all" } else { "anonymous" };
                print!("WARNING! This will remove {which} local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] ");
                std::io::stdout().flush()?;
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    return Ok(0);
                }
            }
            let (removed, freed) = engine.volumes().prune_volumes(a.all, &filters)?;
            if !removed.is_empty() {
                println!("Deleted Volumes:");
                for n in &removed {
                    println!("{n}");
                }
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                crate::format::human_size4(freed)
            );
            Ok(0)
        }
    }
}

/// Only docker's `local` driver exists.
fn check_driver(a: &CreateArgs) -> anyhow::Result<()> {
    let name = a.name.as_deref().unwrap_or_default();
    if a.driver != "local" {
        anyhow::bail!(
            "create {name}: error looking up volume plugin {d}: plugin \"{d}\" not found (only the local driver exists)",
            d = a.driver
        );
    }
    Ok(())
}

/// `-o KEY=VALUE` as docker's option map (`KEY` alone is an empty value, a later key
/// wins; the engine checks the keys).
fn parse_opts(opts: &[String]) -> std::collections::BTreeMap<String, String> {
    opts.iter()
        .map(|o| match o.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (o.clone(), String::new()),
        })
        .collect()
}
