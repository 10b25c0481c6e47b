//! `system prune`: stopped containers, unused networks, dangling (with `-a`: unused)
//! images and, with `--volumes`, unused anonymous volumes — docker's prompt, report
//! sections and total, using each kind's own prune.

use crate::commands::ps::parse_filters;
use crate::Context;
use clap::Args;
use coracle_engine::RemoveEvent;
use std::io::{BufRead, Write};

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub volumes: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// docker's confirmation template, rendered (no build cache line: there is none).
fn warning(args: &PruneArgs) -> String {
    let mut items = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if args.volumes {
        items.push("all anonymous volumes not used by at least one container");
    }
    items.push(if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    let mut out = String::from("WARNING! This will remove:\n");
    for i in items {
        out.push_str(&format!("  - {i}\n"));
    }
    if !args.filter.is_empty() {
        out.push_str("\n  Items to be pruned will be filtered with:\n");
        for f in &args.filter {
            out.push_str(&format!("  - {f}\n"));
        }
    }
    out.push_str("\nAre you sure you want to continue? [y/N] ");
    out
}

/// A titled list, then docker's blank line (its `Fprintln` of an output that already
/// ends in a newline); nothing when empty.
fn section(title: &str, lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut out = format!("{title}:\n");
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out.push('\n');
    out
}

pub fn exec(ctx: &Context, args: PruneArgs) -> anyhow::Result<i32> {
    let filters = parse_filters(&args.filter, "--filter")?;
    if !args.force {
        print!("{}", warning(&args));
        std::io::stdout().flush()?;
        // No input (EOF) reads as "no", as docker's prompt with stdin closed.
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !answer.trim().eq_ignore_ascii_case("y") {
            return Ok(0);
        }
    }
    let mut engine = ctx.engine()?;
    let mut reclaimed = 0;

    let containers = engine.containers().prune_containers(&filters)?;
    for (id, why) in &containers.failed {
        eprintln!("WARNING: failed to prune container {id}: {why}");
    }
    reclaimed += containers.space_reclaimed;
    print!("{}", section("Deleted Containers", &containers.deleted));

    let pairs: Vec<(String, String)> = args
        .filter
        .iter()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let networks = engine.networks().network_prune(&pairs)?;
    print!("{}", section("Deleted Networks", &networks));

    if args.volumes {
        // As docker: the anonymous ones only, whatever `-a` says.
        let (volumes, freed) = engine.volumes().prune_volumes(false, &filters)?;
        reclaimed += freed;
        print!("{}", section("Deleted Volumes", &volumes));
    }

    let images = engine.images().prune_images(args.all, &filters)?;
    reclaimed += images.reclaimed;
    let events: Vec<String> = images
        .events
        .iter()
        .map(|e| match e {
            RemoveEvent::Untagged(n) => format!("untagged: {n}"),
            RemoveEvent::Deleted(d) => format!("deleted: {d}"),
        })
        .collect();
    print!("{}", section("Deleted Images", &events));
    println!(
        "Total reclaimed space: {}",
        crate::format::human_size4(reclaimed)
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_is_dockers() {
        let args = PruneArgs {
            all: false,
            force: false,
            volumes: false,
            filter: vec![],
        };
        assert_eq!(
            warning(&args),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n\nAre you sure you want to continue? [y/N] "
        );
        let args = PruneArgs {
            all: true,
            force: false,
            volumes: true,
            filter: vec!["label=a".into()],
        };
        let w = warning(&args);
        assert!(w.contains("  - all anonymous volumes not used by at least one container\n  - all images without at least one container associated to them\n"));
        assert!(w.contains(
            "\n\n  Items to be pruned will be filtered with:\n  - label=a\n\nAre you sure"
        ));
    }
}
