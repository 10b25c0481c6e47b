//! `coracle start [-a] [-i] CONTAINER...`.

use crate::commands::run::start_failure_code;
use crate::Context;
use clap::Args;
use coracle_engine::{AttachEnd, AttachSession, Started};

#[derive(Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach the container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    /// Key sequence for detaching (default ctrl-p,ctrl-q)
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn exec(ctx: &Context, args: StartArgs) -> anyhow::Result<i32> {
    let attach = args.attach || args.interactive;
    if attach && args.containers.len() > 1 {
        return Err(crate::commands::UsageError(
            "you cannot start and attach multiple containers at once".into(),
        )
        .into());
    }
    let detach_keys = args
        .detach_keys
        .as_deref()
        .map(coracle_model::parse_detach_keys)
        .transpose()?;
    let mut engine = ctx.engine()?;
    if attach {
        let key = &args.containers[0];
        let started = match engine.containers().start_container(key, true) {
            Ok(s) => s,
            Err(e) => {
                let e = anyhow::Error::from(e);
                eprintln!("Error: {}", crate::error_chain(&e));
                return Ok(start_failure_code(&e));
            }
        };
        let (Started::Started { attach } | Started::AlreadyRunning { attach }) = started;
        let stream = attach.expect("attach was asked for");
        let id = engine.containers().container_id(key)?;
        let cfg = engine.containers().config(&id)?;
        let end = engine.containers().run_attach_session(
            stream,
            &AttachSession {
                container: id,
                tty: cfg.tty,
                stdin: args.interactive && cfg.interactive,
                stdout: true,
                stderr: true,
                detach_keys,
                sig_proxy: true,
            },
        )?;
        return Ok(match end {
            AttachEnd::Exited(code) => code,
            AttachEnd::Detached => 0,
            AttachEnd::Lost => 255,
        });
    }
    let mut failed = false;
    for c in &args.containers {
        match engine.containers().start_container(c, false) {
            Ok(_) => println!("{c}"),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}
