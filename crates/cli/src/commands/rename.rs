use crate::Context;
use clap::Args;

#[derive(Args)]
pub struct RenameArgs {
    /// The container to rename, by name or id
    pub container: String,
    /// Its new name
    pub new_name: String,
}

/// docker: `Error: failed to rename container: <why>`, exit 1.
pub fn exec(ctx: &Context, args: RenameArgs) -> anyhow::Result<i32> {
    if args.new_name.is_empty() {
        anyhow::bail!("new name cannot be blank");
    }
    let mut engine = ctx.engine()?;
    engine
        .containers()
        .rename_container(&args.container, &args.new_name)
        .map_err(|e| anyhow::anyhow!("failed to rename container: {e}"))?;
    Ok(0)
}
