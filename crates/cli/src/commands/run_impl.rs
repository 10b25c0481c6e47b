//! `run`: create the container, start its monitor and, unless `-d`, attach to it
//! until it exits (or the user detaches). Exit codes as docker: 125 when coracle
//! fails, 126/127 when the command cannot be run, else the container's.

use crate::commands::run::RunArgs;
use crate::commands::run_options::to_run_options;
use crate::progress::PullDisplay;
use crate::session::{self, Session};
use crate::Context;
use coracle_core::Platform;
use coracle_engine::{EngineError, RunRequest, Started};
use coracle_runtime::monitor::session::AttachEnd;

pub fn exec(ctx: &Context, args: RunArgs) -> anyhow::Result<i32> {
    match create_and_start(ctx, &args) {
        Ok(code) => Ok(code),
        Err(err) => {
            eprintln!("coracle: {}", crate::error_chain(&err));
            Ok(start_failure_code(&err))
        }
    }
}

/// docker's code for a failed `run`/`start`: the command's 126/127, else 125.
pub(crate) fn start_failure_code(err: &anyhow::Error) -> i32 {
    match err.downcast_ref::<EngineError>() {
        Some(EngineError::StartFailed { code, .. }) => *code,
        _ => crate::EXIT_ENGINE_ERROR,
    }
}

fn create_and_start(ctx: &Context, args: &RunArgs) -> anyhow::Result<i32> {
    let options = to_run_options(args)?;
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let mut engine = ctx.engine()?;
    // The container owns stdout: pull progress goes to stderr, as docker's.
    let display = PullDisplay::on_stderr();
    let prepared = engine.create_container(
        &RunRequest {
            image: args.image.clone(),
            platform,
            options: options.clone(),
        },
        &display,
    );
    display.finish();
    let prepared = prepared?;
    let attach = !args.detach;
    let stream = match engine.start_container(&prepared.id, attach)? {
        Started::Started { attach } | Started::AlreadyRunning { attach } => attach,
    };
    let Some(stream) = stream else {
        println!("{}", prepared.id);
        return Ok(0);
    };
    let end = session::run(
        &mut engine,
        stream,
        &Session {
            container: &prepared.id,
            tty: options.tty,
            stdin: options.interactive,
            detach_keys: options.detach_keys.clone(),
            sig_proxy: options.sig_proxy,
        },
    )?;
    Ok(match end {
        AttachEnd::Exited(code) => code,
        AttachEnd::Detached => 0,
        AttachEnd::Lost => 255,
    })
}
