//! `coracle exec [-i] [-t] [-d] [-u USER] [-w DIR] [-e K=V] [--env-file F]
//! [--privileged] CONTAINER CMD...`: runs a command in a running container.
//!
//! This process runs the exec itself (its stdio, pty, signals and exit code are the
//! command's): the runtime forks the process into the container, which must not be
//! done from a multi-threaded process, and with the built-in runtime must be done from
//! a sealed copy of the binary (see `coracle_runtime::exeseal`). So unless this process
//! already runs sealed (or the container's runtime is an OCI runtime binary, which
//! seals itself) and has one thread, it re-executes itself, sealed, as the hidden
//! `__exec` with the prepared process.
//!
//! Exit codes as docker's: the command's own; 126/127 when it cannot be run; 1 when
//! the container is not running (or does not exist); 125 for bad flags.

use crate::commands::UsageError;
use crate::Context;
use clap::Args;
use coracle_core::ErrorKind;
use coracle_engine::{ExecRequest, Helper, PreparedExec};
use coracle_model as o;
use coracle_runtime::exec_session::{self, ExecError, ExecOptions, Process};
use coracle_runtime::exeseal;
use coracle_runtime::runtime::{Runtime, BUILTIN};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
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
    let prepared = match engine.prepare_exec(&args.container, &req) {
        Ok(p) => p,
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
    drop(engine);
    let opts = ExecOptions {
        interactive: args.interactive,
        detach: args.detach,
        console_dir: PreparedExec::console_dir(),
    };
    let builtin = prepared.runtime.name() == BUILTIN;
    let sealed = builtin && exeseal::self_is_sealed();
    if exec_session::single_threaded() && (sealed || !builtin) {
        return Ok(run(
            prepared.runtime.as_ref(),
            &prepared.container_id,
            &prepared.process,
            &opts,
        ));
    }
    // The exec returns only on failure; on success this process (same pid, terminal
    // and signals) becomes the session.
    let helper = Helper::Exec {
        id: prepared.container_id.clone(),
        process: Box::new(prepared.process.clone()),
        interactive: args.interactive,
        detach: args.detach,
    };
    let mut argv: Vec<OsString> = vec![std::env::args_os()
        .next()
        .unwrap_or_else(|| "coracle".into())];
    argv.extend(helper.command_line(&ctx.root));
    if builtin && !sealed {
        // The built-in runtime forks into the container from this process: it must
        // run from a sealed copy of the binary (CVE-2019-5736).
        let err = exeseal::seal_self()?.exec(&argv);
        anyhow::bail!("{err}")
    }
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(&argv[0])
        .args(&argv[1..])
        .exec();
    anyhow::bail!("re-execute coracle for exec: {err}")
}

/// The hidden [`Helper::Exec`].
pub fn session(
    ctx: &Context,
    id: &str,
    process: &Process,
    interactive: bool,
    detach: bool,
) -> anyhow::Result<i32> {
    let runtime = ctx.engine()?.exec_runtime(id)?;
    if runtime.name() == BUILTIN {
        // Returns only when already sealed; otherwise this process is replaced by a
        // sealed copy run with the same arguments.
        exeseal::ensure_sealed()?;
    }
    let opts = ExecOptions {
        interactive,
        detach,
        console_dir: PreparedExec::console_dir(),
    };
    Ok(run(runtime.as_ref(), id, process, &opts))
}

fn run(rt: &dyn Runtime, id: &str, process: &Process, opts: &ExecOptions) -> i32 {
    match exec_session::run(rt, id, process, opts) {
        Ok(code) => code,
        // docker prints the runtime's refusal as is.
        Err(e @ ExecError::Exec { .. }) => {
            eprintln!("{e}");
            e.exit_code()
        }
        Err(e) => {
            let code = e.exit_code();
            eprintln!("Error: {}", crate::error_chain(&anyhow::Error::new(e)));
            code
        }
    }
}
