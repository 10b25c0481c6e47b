use crate::commands::UsageError;
use crate::progress::PullDisplay;
use crate::Context;
use clap::Args;
use coracle_core::{ImageReference, Platform};
use coracle_engine::{PullOptions, PullStatus};

#[derive(Args)]
pub struct PullArgs {
    /// Image to pull: NAME[:TAG|@DIGEST]
    pub name: String,
    /// Platform to pull, os/arch[/variant] (default: this host's)
    #[arg(long)]
    pub platform: Option<String>,
    /// Print only the image reference
    #[arg(short, long)]
    pub quiet: bool,
    /// Download all tagged images in the repository (not supported yet)
    #[arg(short = 'a', long)]
    pub all_tags: bool,
    #[command(flatten)]
    pub tls: super::TlsArgs,
}

pub fn exec(ctx: &Context, args: PullArgs) -> anyhow::Result<i32> {
    if args.all_tags {
        return Err(UsageError(
            "--all-tags is not supported yet; pull the tags you need one by one".into(),
        )
        .into());
    }
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let reference = ImageReference::parse(&args.name)?;
    let display = PullDisplay::new(args.quiet);
    let explicit = args.name.contains('@') || {
        let last = args.name.rsplit('/').next().unwrap_or(&args.name);
        last.contains(':')
    };
    if !explicit {
        display.println("Using default tag: latest");
    }
    let mut engine = ctx.engine()?;
    let outcome = engine.pull(
        &args.name,
        &PullOptions {
            platform,
            tls_verify: args.tls.tls_verify,
        },
        &display,
    );
    display.finish();
    let outcome = outcome?;
    let shown = coracle_engine::familiar(&reference);
    if !args.quiet {
        println!("Digest: {}", outcome.digest);
        match outcome.status {
            PullStatus::Downloaded => println!("Status: Downloaded newer image for {shown}"),
            PullStatus::UpToDate => println!("Status: Image is up to date for {shown}"),
        }
    }
    println!("{reference}");
    Ok(0)
}
