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
    /// Download all tagged images in the repository
    #[arg(short = 'a', long)]
    pub all_tags: bool,
    #[command(flatten)]
    pub tls: super::TlsArgs,
}

pub fn exec(ctx: &Context, args: PullArgs) -> anyhow::Result<i32> {
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    if args.all_tags {
        return pull_all_tags(ctx, &args, platform);
    }
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
    let outcome = engine.images().pull(
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

/// `pull -a NAME`: every tag the registry lists, one after the other (layers they
/// share are fetched once), reported as docker does: each tag's progress and digest,
/// then one status line and the repository's name.
fn pull_all_tags(
    ctx: &Context,
    args: &PullArgs,
    platform: Option<Platform>,
) -> anyhow::Result<i32> {
    let repo = ImageReference::parse_no_default_tag(&args.name)?;
    if repo.tag().is_some() || repo.digest().is_some() {
        anyhow::bail!("tag can't be used with --all-tags/-a");
    }
    let mut engine = ctx.engine()?;
    let tags = engine.images().list_tags(&repo, args.tls.tls_verify)?;
    if tags.is_empty() {
        anyhow::bail!(
            "{}: the registry lists no tags for this repository",
            repo.name()
        );
    }
    let display = PullDisplay::new(args.quiet);
    let opts = PullOptions {
        platform,
        tls_verify: args.tls.tls_verify,
    };
    let mut downloaded = false;
    for tag in &tags {
        let reference = repo.with_tag(tag)?;
        let outcome = engine
            .images()
            .pull(&reference.to_string(), &opts, &display);
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                display.finish();
                return Err(e.into());
            }
        };
        display.println(&format!("Digest: {}", outcome.digest));
        downloaded |= outcome.status == PullStatus::Downloaded;
    }
    display.finish();
    let shown = repo.familiar_name();
    if !args.quiet {
        if downloaded {
            println!("Status: Downloaded newer image for {shown}");
        } else {
            println!("Status: Image is up to date for {shown}");
        }
    }
    println!("{}", repo.name());
    Ok(0)
}
