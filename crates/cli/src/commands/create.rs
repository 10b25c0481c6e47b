//! `coracle create`: `run`'s flags; makes the container without starting it and
//! prints its id.

use crate::commands::run::RunArgs;
use crate::commands::run_options::to_run_options;
use crate::progress::PullDisplay;
use crate::Context;
use coracle_core::Platform;
use coracle_engine::RunRequest;

pub fn exec(ctx: &Context, args: RunArgs) -> anyhow::Result<i32> {
    if args.detach {
        return Err(crate::commands::UsageError(
            "unknown shorthand flag: 'd' in -d: create does not start the container".into(),
        )
        .into());
    }
    let options = to_run_options(&args)?;
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let mut engine = ctx.engine()?;
    let display = PullDisplay::on_stderr();
    let prepared = engine.create_container(
        &RunRequest {
            image: args.image.clone(),
            platform,
            options,
        },
        &display,
    );
    display.finish();
    println!("{}", prepared?.id);
    Ok(0)
}
