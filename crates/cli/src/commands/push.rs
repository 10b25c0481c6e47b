use crate::Context;
use clap::Args;
use coracle_engine::{PushEvent, PushOptions};

#[derive(Args)]
pub struct PushArgs {
    /// NAME[:TAG] of a local image
    pub name: String,
    /// Print only the pushed digest's reference
    #[arg(short, long)]
    pub quiet: bool,
    /// Push all tags of the repository (not supported yet)
    #[arg(short = 'a', long)]
    pub all_tags: bool,
    #[command(flatten)]
    pub tls: super::TlsArgs,
}

pub fn exec(ctx: &Context, args: PushArgs) -> anyhow::Result<i32> {
    if args.all_tags {
        return Err(crate::commands::UsageError(
            "--all-tags is not supported yet; push the tags you need one by one".into(),
        )
        .into());
    }
    let mut engine = ctx.engine()?;
    let quiet = args.quiet;
    let report = move |e: PushEvent| {
        if quiet {
            return;
        }
        match e {
            PushEvent::Repository(r) => println!("The push refers to repository [{r}]"),
            PushEvent::LayerExists(d) => println!("{}: Layer already exists", d.short()),
            PushEvent::LayerPushed(d) => println!("{}: Pushed", d.short()),
            PushEvent::Manifest { tag, digest, size } => {
                println!("{tag}: digest: {digest} size: {size}")
            }
        }
    };
    let pushed = engine.images().push(
        &args.name,
        &PushOptions {
            tls_verify: args.tls.tls_verify,
        },
        &report,
    )?;
    if quiet {
        println!("{pushed}");
    }
    Ok(0)
}
