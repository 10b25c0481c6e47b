//! The `coracle` command line. Flags, output and exit codes follow the docker CLI.

mod commands;
mod format;
mod logging;
mod progress;
mod template;

use clap::{Parser, Subcommand};
use coracle_core::ErrorKind;
use coracle_engine::{helper, Helper, HelperArgsError};
use std::path::PathBuf;

/// Exit code for failures of coracle itself (bad flags and the like), as docker.
pub const EXIT_ENGINE_ERROR: i32 = 125;

#[derive(Parser)]
#[command(
    name = "coracle",
    version,
    about = "A daemonless, Docker-compatible container engine",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Store root (default /var/lib/coracle, or $XDG_DATA_HOME/coracle rootless)
    #[arg(long, global = true, env = "CORACLE_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,

    /// Enable debug mode (the same as --log-level debug)
    #[arg(short = 'D', long)]
    debug: bool,

    /// Set the logging level (also CORACLE_LOG, an env-filter such as
    /// "coracle_runtime=debug,libcontainer=debug")
    #[arg(short = 'l', long, value_enum, value_name = "LEVEL")]
    log_level: Option<logging::Level>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download an image from a registry
    Pull(commands::pull::PullArgs),
    /// Upload an image to a registry
    Push(commands::push::PushArgs),
    /// List images
    Images(commands::images::ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(commands::tag::TagArgs),
    /// Remove one or more images
    Rmi(commands::rmi::RmiArgs),
    /// Save one or more images to a tar archive (docker-archive format)
    Save(commands::save::SaveArgs),
    /// Load images from a tar archive (docker save output, OCI layout or archive)
    Load(commands::load::LoadArgs),
    /// Search the registry (Docker Hub by default) for images
    Search(commands::search::SearchArgs),
    /// Log in to a registry
    Login(commands::login::LoginArgs),
    /// Log out from a registry
    Logout(commands::logout::LogoutArgs),
    /// Return low-level information on containers, images and volumes
    Inspect(commands::inspect::InspectArgs),
    /// Manage images
    #[command(subcommand)]
    Image(commands::image::ImageCommand),
    /// Create and run a new container from an image
    Run(Box<commands::run::RunArgs>),
    /// List containers
    Ps(commands::ps::PsArgs),
    /// Remove one or more containers
    Rm(commands::rm::RmArgs),
    /// Rename a container
    Rename(commands::rename::RenameArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(commands::container::ContainerCommand),
    /// Fetch the logs of a container
    Logs(commands::logs::LogsArgs),
    /// Manage volumes
    #[command(subcommand)]
    Volume(commands::volume::VolumeCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(commands::network::NetworkCommand),
    /// List port mappings or a specific mapping for the container
    Port(commands::port::PortArgs),
    /// Execute a command in a running container
    Exec(commands::exec::ExecArgs),
    /// Pause all processes within one or more containers
    Pause(commands::pause::PauseArgs),
    /// Unpause all processes within one or more containers
    Unpause(commands::unpause::UnpauseArgs),
    /// Update configuration of one or more containers
    Update(Box<commands::update::UpdateArgs>),
    /// An exec prepared by `exec`, in a fresh process (not for direct use)
    #[command(name = helper::EXEC, hide = true)]
    ExecSession(HelperArgs),
    /// Create a new container
    Create(Box<commands::create::CreateArgs>),
    /// Start one or more stopped containers
    Start(commands::start::StartArgs),
    /// Stop one or more running containers
    Stop(commands::stop::StopArgs),
    /// Kill one or more running containers
    Kill(commands::kill::KillArgs),
    /// Restart one or more containers
    Restart(commands::restart::RestartArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(commands::wait::WaitArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(commands::attach::AttachArgs),
    /// Display system-wide information
    Info(commands::info::InfoArgs),
    /// Show the coracle version information
    Version(commands::version::VersionArgs),
    /// Manage coracle itself
    #[command(subcommand)]
    System(commands::system::SystemCommand),
    /// Display the running processes of a container
    Top(commands::top::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(commands::stats::StatsArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(commands::cp::CpArgs),
    /// The per-container monitor (started by `start`; not for direct use)
    #[command(name = helper::MONITOR, hide = true)]
    Monitor(HelperArgs),
    /// Run a container's health check once and record the result (started by its
    /// monitor; not for direct use)
    #[command(name = helper::HEALTHCHECK, hide = true)]
    Healthcheck(HelperArgs),
}

/// A hidden subcommand's arguments, as given: the engine's [`Helper`] parses them
/// (it also builds them), so their grammar lives in one place.
#[derive(clap::Args)]
struct HelperArgs {
    #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
    args: Vec<std::ffi::OsString>,
}

pub struct Context {
    root: PathBuf,
}

impl Context {
    pub fn engine(&self) -> anyhow::Result<coracle_engine::Engine> {
        Ok(coracle_engine::Engine::open(&self.root)?)
    }
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ENGINE_ERROR } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    logging::init(cli.debug, cli.log_level);
    if !matches!(cli.command, Command::Monitor { .. }) {
        // `coracle ps | head` ends quietly, as a C tool would, instead of failing on
        // EPIPE. Not in the monitor: a client that goes away must not kill it.
        coracle_engine::process::default_sigpipe();
    }
    let ctx = Context {
        root: cli.root.unwrap_or_else(coracle_engine::default_root),
    };
    let result = match cli.command {
        Command::Pull(a) => commands::pull::exec(&ctx, a),
        Command::Push(a) => commands::push::exec(&ctx, a),
        Command::Images(a) => commands::images::exec(&ctx, a),
        Command::Tag(a) => commands::tag::exec(&ctx, a),
        Command::Rmi(a) => commands::rmi::exec(&ctx, a),
        Command::Save(a) => commands::save::exec(&ctx, a),
        Command::Load(a) => commands::load::exec(&ctx, a),
        Command::Search(a) => commands::search::exec(&ctx, a),
        Command::Login(a) => commands::login::exec(&ctx, a),
        Command::Logout(a) => commands::logout::exec(&ctx, a),
        Command::Inspect(a) => commands::inspect::exec(&ctx, a),
        Command::Image(c) => commands::image::exec(&ctx, c),
        Command::Run(a) => commands::run::exec(&ctx, *a),
        Command::Ps(a) => commands::ps::exec(&ctx, a),
        Command::Rm(a) => commands::rm::exec(&ctx, a),
        Command::Rename(a) => commands::rename::exec(&ctx, a),
        Command::Container(c) => commands::container::exec(&ctx, c),
        Command::Logs(a) => commands::logs::exec(&ctx, a),
        Command::Volume(c) => commands::volume::exec(&ctx, c),
        Command::Network(c) => commands::network::exec(&ctx, c),
        Command::Port(a) => commands::port::exec(&ctx, a),
        Command::Exec(a) => commands::exec::exec(&ctx, a),
        Command::Pause(a) => commands::pause::exec(&ctx, a),
        Command::Unpause(a) => commands::unpause::exec(&ctx, a),
        Command::Update(a) => commands::update::exec(&ctx, *a),
        Command::ExecSession(a) => run_helper(&ctx, helper::EXEC, a),
        Command::Create(a) => commands::create::exec(&ctx, *a),
        Command::Start(a) => commands::start::exec(&ctx, a),
        Command::Stop(a) => commands::stop::exec(&ctx, a),
        Command::Kill(a) => commands::kill::exec(&ctx, a),
        Command::Restart(a) => commands::restart::exec(&ctx, a),
        Command::Wait(a) => commands::wait::exec(&ctx, a),
        Command::Attach(a) => commands::attach::exec(&ctx, a),
        Command::Info(a) => commands::info::exec(&ctx, a),
        Command::Version(a) => commands::version::exec(&ctx, a),
        Command::System(c) => commands::system::exec(&ctx, c),
        Command::Top(a) => commands::top::exec(&ctx, a),
        Command::Stats(a) => commands::stats::exec(&ctx, a),
        Command::Cp(a) => commands::cp::exec(&ctx, a),
        Command::Monitor(a) => run_helper(&ctx, helper::MONITOR, a),
        Command::Healthcheck(a) => run_helper(&ctx, helper::HEALTHCHECK, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Never a panic: a monitor's stderr is a file in the store, which may be
            // on a full disk.
            coracle_engine::process::note!("Error: {}", error_chain(&e));
            exit_code(&e)
        }
    }
}

/// Both hidden commands below fork into the container with the built-in runtime,
/// which must be done from a sealed copy of the binary (CVE-2019-5736). Their spawners
/// (`start`, the monitor) start them sealed already; when run otherwise, this
/// re-executes from a sealed copy (same arguments; fds without close-on-exec stay
/// open). A container that cannot be looked up is left to the command to report.
fn engine_sealed_for(ctx: &Context, key: &str) -> anyhow::Result<coracle_engine::Engine> {
    let mut engine = ctx.engine()?;
    if !engine
        .containers()
        .runs_builtin_runtime(key)
        .unwrap_or(false)
        || coracle_engine::process::self_is_sealed()
    {
        return Ok(engine);
    }
    drop(engine);
    // Returns only on failure (or if the binary turned out sealed after all).
    coracle_engine::process::ensure_sealed()?;
    ctx.engine()
}

/// A hidden subcommand: its arguments parsed back by the engine's protocol, then run.
fn run_helper(ctx: &Context, name: &str, a: HelperArgs) -> anyhow::Result<i32> {
    let mut args = vec![std::ffi::OsString::from(name)];
    args.extend(a.args);
    match Helper::from_args(&args) {
        Ok(Helper::Monitor {
            id,
            sync_fd,
            attach_wait,
        }) => monitor(ctx, &id, sync_fd, attach_wait),
        Ok(Helper::Healthcheck { container }) => healthcheck(ctx, &container),
        Ok(Helper::Exec {
            id,
            process,
            interactive,
            detach,
        }) => {
            let session = ctx.engine()?.containers().exec_helper_session(
                &id,
                *process,
                interactive,
                detach,
            )?;
            commands::exec::session(session)
        }
        // As clap's own usage errors: exit 125.
        Err(HelperArgsError::Usage(m)) => Err(commands::UsageError(m).into()),
        Err(e) => Err(e.into()),
    }
}

fn healthcheck(ctx: &Context, id: &str) -> anyhow::Result<i32> {
    engine_sealed_for(ctx, id)?
        .containers()
        .run_health_probe(id)?;
    Ok(0)
}

fn monitor(
    ctx: &Context,
    id: &str,
    sync_fd: Option<i32>,
    attach_wait: bool,
) -> anyhow::Result<i32> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut engine = engine_sealed_for(ctx, id)?;
    // SAFETY: `start` passes the write end of its report pipe as this fd number and
    // nothing else in this process owns it.
    let sync = sync_fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(engine
        .containers()
        .run_monitor(id, coracle_engine::MonitorArgs { sync, attach_wait })?)
}

/// The message and its causes on one line, skipping causes whose text the message
/// already includes (our errors embed their sources).
pub(crate) fn error_chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let s = cause.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
    }
    out
}

/// Docker's CLI exits 1 for a failed command; usage errors are 125.
fn exit_code(e: &anyhow::Error) -> i32 {
    match kind_of(e) {
        Some(ErrorKind::InvalidArgument) if e.downcast_ref::<commands::UsageError>().is_some() => {
            EXIT_ENGINE_ERROR
        }
        _ => 1,
    }
}

fn kind_of(e: &anyhow::Error) -> Option<ErrorKind> {
    if let Some(e) = e.downcast_ref::<coracle_engine::EngineError>() {
        return Some(e.kind());
    }
    if e.downcast_ref::<commands::UsageError>().is_some() {
        return Some(ErrorKind::InvalidArgument);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn docker_style_flags_parse() {
        let cli = Cli::try_parse_from([
            "coracle",
            "pull",
            "-q",
            "--platform",
            "linux/arm64",
            "alpine",
        ])
        .unwrap();
        assert!(
            matches!(cli.command, Command::Pull(a) if a.quiet && a.platform.as_deref() == Some("linux/arm64"))
        );
        let cli = Cli::try_parse_from(["coracle", "pull", "--tls-verify=false", "x"]).unwrap();
        assert!(matches!(cli.command, Command::Pull(a) if a.tls.tls_verify == Some(false)));
        assert!(
            Cli::try_parse_from(["coracle", "rmi"]).is_err(),
            "rmi needs an image"
        );
        let cli = Cli::try_parse_from(["coracle", "image", "ls", "--format", "json"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Image(commands::image::ImageCommand::Ls(_))
        ));
    }
}
