//! `coracle create`: `run`'s container flags; makes the container without starting it
//! and prints its id.

use crate::commands::run::{self, to_container_spec, ContainerArgs};
use crate::commands::UsageError;
use crate::Context;
use clap::Args;

#[derive(Args, Debug)]
#[command(trailing_var_arg = true, disable_help_flag = true)]
pub struct CreateArgs {
    #[command(flatten)]
    pub container: ContainerArgs,
    /// Refused with docker's words: create does not start the container
    #[arg(short, long, hide = true)]
    pub detach: bool,
    /// `run`'s, accepted and checked (create attaches nothing)
    #[arg(long, value_name = "KEYS", hide = true)]
    pub detach_keys: Option<String>,
    /// `run`'s, accepted (create attaches nothing)
    #[arg(long, default_value = "true", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true, hide = true)]
    pub sig_proxy: bool,
}

pub fn exec(ctx: &Context, args: CreateArgs) -> anyhow::Result<i32> {
    if args.detach {
        return Err(UsageError(
            "unknown shorthand flag: 'd' in -d: create does not start the container".into(),
        )
        .into());
    }
    let (spec, choices) =
        to_container_spec(&args.container, false, args.sig_proxy, &args.detach_keys)?;
    let mut engine = ctx.engine()?;
    let prepared = run::create(&mut engine, &args.container, &spec, choices.pull)?;
    println!("{}", prepared.id);
    Ok(0)
}
