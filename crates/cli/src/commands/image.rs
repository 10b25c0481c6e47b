//! `coracle image ...`: the image management group, as docker's.

use crate::commands::{images, load, pull, push, rmi, save, tag};
use crate::Context;
use clap::{Args, Subcommand};
use std::io::{BufRead, Write};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Download an image from a registry
    Pull(pull::PullArgs),
    /// Upload an image to a registry
    Push(push::PushArgs),
    /// List images
    #[command(visible_alias = "list")]
    Ls(images::ImagesArgs),
    /// Display detailed information on one or more images
    Inspect(InspectImageArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(tag::TagArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(rmi::RmiArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Save images to a docker-archive tar
    Save(save::SaveArgs),
    /// Load images from a tar archive
    Load(load::LoadArgs),
    /// Write an image's flattened root filesystem into a directory
    Unpack(UnpackArgs),
}

#[derive(Args)]
pub struct InspectImageArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Format output with a Go template, or `json`
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>", "label=<key>[=<value>]",
    /// "label!=<key>[=<value>]")
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

#[derive(Args)]
pub struct UnpackArgs {
    /// Image name or id
    pub image: String,
    /// Directory to write the root filesystem into (created if missing; must be empty)
    pub dir: PathBuf,
}

pub fn exec(ctx: &Context, cmd: ImageCommand) -> anyhow::Result<i32> {
    match cmd {
        ImageCommand::Pull(a) => pull::exec(ctx, a),
        ImageCommand::Push(a) => push::exec(ctx, a),
        ImageCommand::Ls(a) => images::exec(ctx, a),
        ImageCommand::Tag(a) => tag::exec(ctx, a),
        ImageCommand::Rm(a) => rmi::exec(ctx, a),
        ImageCommand::Save(a) => save::exec(ctx, a),
        ImageCommand::Load(a) => load::exec(ctx, a),
        ImageCommand::Inspect(a) => crate::commands::inspect::exec(
            ctx,
            crate::commands::inspect::InspectArgs {
                names: a.images,
                format: a.format,
                kind: Some("image".into()),
                size: false,
            },
        ),
        ImageCommand::Prune(a) => prune(ctx, a),
        ImageCommand::Unpack(a) => {
            ctx.engine()?.images().unpack_image(&a.image, &a.dir)?;
            Ok(0)
        }
    }
}

fn prune(ctx: &Context, args: PruneArgs) -> anyhow::Result<i32> {
    let filters = crate::commands::ps::parse_filters(&args.filter, "--filter")?;
    if !args.force {
        let what = if args.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        print!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        std::io::stdout().flush()?;
        // No terminal and no input (EOF) reads as "no", like docker.
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let report = ctx.engine()?.images().prune_images(args.all, &filters)?;
    if !report.events.is_empty() {
        println!("Deleted Images:");
        for e in &report.events {
            match e {
                coracle_engine::RemoveEvent::Untagged(n) => println!("untagged: {n}"),
                coracle_engine::RemoveEvent::Deleted(d) => println!("deleted: {d}"),
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        crate::format::human_size(report.reclaimed)
    );
    Ok(0)
}
