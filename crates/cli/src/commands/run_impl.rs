//! `run`: create the container, start its monitor and, unless `-d`, attach to it
//! until it exits (or the user detaches). Exit codes as docker: 125 when coracle
//! fails, 126/127 when the command cannot be run, else the container's.

use crate::commands::run::RunArgs;
use crate::commands::run_options::to_run_options;
use crate::progress::PullDisplay;
use crate::session::{self, Session};
use crate::Context;
use coracle_core::Platform;
use coracle_engine::{Engine, EngineError, PreparedContainer, RunRequest, Started};
use coracle_model::RunOptions;
use coracle_runtime::monitor::session::AttachEnd;
use std::io::Write;

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

/// The container `run` and `create` make: the image pulled if need be (progress on
/// stderr, none with `-q`), and with `--cidfile` its id written to that file, which
/// must not exist before (docker's guard against two runs of one script) and is
/// removed again when the container could not be made.
pub(crate) fn create(
    engine: &mut Engine,
    args: &RunArgs,
    options: &RunOptions,
) -> anyhow::Result<PreparedContainer> {
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let mut cidfile = options
        .cidfile
        .as_deref()
        .map(CidFile::create)
        .transpose()?;
    // The container owns stdout: pull progress goes to stderr, as docker's.
    let display = if args.quiet {
        PullDisplay::new(true)
    } else {
        PullDisplay::on_stderr()
    };
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
    if let Some(f) = cidfile.as_mut() {
        f.write(&prepared.id)?;
    }
    Ok(prepared)
}

/// `--cidfile`: made before the container, kept only once the id is in it.
struct CidFile {
    path: std::path::PathBuf,
    file: std::fs::File,
    written: bool,
}

impl CidFile {
    fn create(path: &str) -> anyhow::Result<CidFile> {
        let file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(crate::commands::UsageError(format!(
                    "Container ID file found, make sure the other container isn't running or delete {path}"
                ))
                .into())
            }
            Err(e) => anyhow::bail!("failed to create the container ID file {path}: {e}"),
        };
        Ok(CidFile {
            path: path.into(),
            file,
            written: false,
        })
    }

    /// The id without a newline, as docker writes it.
    fn write(&mut self, id: &str) -> anyhow::Result<()> {
        self.file.write_all(id.as_bytes()).map_err(|e| {
            anyhow::anyhow!(
                "failed to write the container ID to the file {}: {e}",
                self.path.display()
            )
        })?;
        self.written = true;
        Ok(())
    }
}

impl Drop for CidFile {
    fn drop(&mut self) {
        if !self.written {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn create_and_start(ctx: &Context, args: &RunArgs) -> anyhow::Result<i32> {
    let options = to_run_options(args)?;
    if args.detach && !args.attach.is_empty() {
        return Err(crate::commands::UsageError("Conflicting options: -a and -d".into()).into());
    }
    let mut engine = ctx.engine()?;
    let prepared = create(&mut engine, args, &options)?;
    let streams = options.attached_streams();
    // docker: with no stream attached, the id is printed and `run` returns.
    let attach = streams.stdin || streams.stdout || streams.stderr;
    let stream = match engine.start_container(&prepared.id, attach)? {
        Started::Started { attach } | Started::AlreadyRunning { attach } => attach,
    };
    let Some(stream) = stream else {
        println!("{}", prepared.id);
        return Ok(0);
    };
    let end = session::run_streams(
        &mut engine,
        stream,
        &Session {
            container: &prepared.id,
            tty: options.tty,
            // docker relays stdin only to a container whose stdin is open (`-i`).
            stdin: options.interactive && streams.stdin,
            detach_keys: options.detach_keys.clone(),
            sig_proxy: options.sig_proxy,
        },
        (streams.stdout, streams.stderr),
    )?;
    Ok(match end {
        AttachEnd::Exited(code) => code,
        AttachEnd::Detached => 0,
        AttachEnd::Lost => 255,
    })
}
