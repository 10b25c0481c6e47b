//! `coracle create`: `run`'s flags; makes the container without starting it and
//! prints its id.

use crate::commands::run::RunArgs;
use crate::commands::run_options::to_run_options;
use crate::Context;

pub fn exec(ctx: &Context, args: RunArgs) -> anyhow::Result<i32> {
    if args.detach {
        return Err(crate::commands::UsageError(
            "unknown shorthand flag: 'd' in -d: create does not start the container".into(),
        )
        .into());
    }
    let options = to_run_options(&args)?;
    let mut engine = ctx.engine()?;
    let prepared = crate::commands::run_impl::create(&mut engine, &args, &options)?;
    println!("{}", prepared.id);
    Ok(0)
}
