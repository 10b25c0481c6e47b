use crate::Context;
use clap::Args;

#[derive(Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG] or image id
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    pub target: String,
}

pub fn exec(ctx: &Context, args: TagArgs) -> anyhow::Result<i32> {
    ctx.engine()?.images().tag(&args.source, &args.target)?;
    Ok(0)
}
