//! `coracle exec [-i] [-t] [-d] [-u USER] [-w DIR] [-e K=V] [--env-file F]
//! [--privileged] CONTAINER CMD...`: runs a command in a running container.
//!
//! This process runs the engine's exec session (its stdio, pty, signals and exit code
//! are the command's), which may re-execute it as the hidden `__exec` (see
//! `coracle_engine::ExecSession`).
//!
//! Exit codes as docker's: the command's own; 126/127 when it cannot be run; 1 when
//! the container is not running (or does not exist); 125 for bad flags.

use crate::commands::UsageError;
use crate::Context;
use clap::Args;
use coracle_core::ErrorKind;
use coracle_engine::{ExecRequest, ExecSession, ExecSessionError};
use coracle_model as o;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Not supported by exec: nothing would keep the command's terminal after detaching
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Set environment variables (K=V, or K to take the value from this shell)
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Container name or id
    pub container: String,
    /// Command and arguments
    #[arg(required = true)]
    pub command: Vec<String>,
}

fn request(args: &ExecArgs) -> Result<ExecRequest, UsageError> {
    let usage = |e: o::OptionsError| UsageError(e.to_string());
    if args.detach_keys.is_some() {
        return Err(UsageError(
            "--detach-keys is not supported by exec: no process would keep the command's terminal after detaching; use `exec -d` to run it in the background".into(),
        ));
    }
    let lookup = |k: &str| std::env::var(k).ok();
    let mut env = Vec::new();
    for file in &args.env_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| UsageError(format!("open {}: {e}", file.display())))?;
        env.extend(o::parse_env_file(&file.display().to_string(), &text, &lookup).map_err(usage)?);
    }
    for e in &args.env {
        env.extend(o::parse_env(e, &lookup).map_err(usage)?);
    }
    Ok(ExecRequest {
        cmd: args.command.clone(),
        env,
        user: args
            .user
            .as_deref()
            .map(o::parse_user)
            .transpose()
            .map_err(usage)?,
        workdir: args.workdir.clone(),
        tty: args.tty,
        interactive: args.interactive,
        privileged: args.privileged,
        detach: args.detach,
    })
}

pub fn exec(ctx: &Context, args: ExecArgs) -> anyhow::Result<i32> {
    let req = request(&args)?;
    let mut engine = ctx.engine()?;
    let session = match engine.containers().exec_session(&args.container, &req) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error: {e}");
            // docker refuses a missing or stopped container (1); a process it cannot
            // start (an unknown user, a relative -w) fails the exec itself (126).
            return Ok(match e.kind() {
                ErrorKind::NotFound | ErrorKind::Conflict => 1,
                _ => 126,
            });
        }
    };
    // The session forks from this process: nothing of the engine may stay open.
    drop(engine);
    report(session.run())
}

/// The hidden `__exec` (the engine's `Helper::Exec`).
pub fn session(session: ExecSession) -> anyhow::Result<i32> {
    report(session.run_as_helper())
}

/// The exec's exit code, its failure printed as docker prints it; a session that
/// could not be got going is the caller's error.
fn report(end: Result<i32, ExecSessionError>) -> anyhow::Result<i32> {
    match end {
        Ok(code) => Ok(code),
        Err(e) => match e.exec_exit_code() {
            // docker prints the runtime's refusal as is.
            Some(code) if e.is_runtime_refusal() => {
                eprintln!("{e}");
                Ok(code)
            }
            Some(code) => {
                eprintln!("Error: {}", crate::error_chain(&anyhow::Error::new(e)));
                Ok(code)
            }
            None => Err(e.into()),
        },
    }
}
