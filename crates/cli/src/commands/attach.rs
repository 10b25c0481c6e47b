//! `coracle attach CONTAINER`: the terminal to a running container's stdio, until it
//! exits (its code) or the detach keys (docker: "read escape sequence", exit 1).

use crate::Context;
use clap::Args;
use coracle_engine::{AttachEnd, AttachSession};

#[derive(Args)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy received signals to the container (not with a tty)
    #[arg(long, default_value = "true", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    /// Key sequence for detaching (default ctrl-p,ctrl-q)
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    pub container: String,
}

pub fn exec(ctx: &Context, args: AttachArgs) -> anyhow::Result<i32> {
    let detach_keys = args
        .detach_keys
        .as_deref()
        .map(coracle_model::parse_detach_keys)
        .transpose()?;
    let mut engine = ctx.engine()?;
    let id = engine.containers().container_id(&args.container)?;
    let cfg = engine.containers().config(&id)?;
    let stream = engine.containers().attach_container(&args.container)?;
    let end = engine.containers().run_attach_session(
        stream,
        &AttachSession {
            container: id,
            tty: cfg.tty,
            stdin: !args.no_stdin && cfg.interactive,
            stdout: true,
            stderr: true,
            detach_keys,
            sig_proxy: args.sig_proxy,
        },
    )?;
    Ok(match end {
        AttachEnd::Exited(code) => code,
        AttachEnd::Detached => {
            eprintln!("read escape sequence");
            1
        }
        AttachEnd::Lost => 255,
    })
}
