//! Debug logging: docker's global `-D/--debug` and `-l/--log-level`, and `CORACLE_LOG`
//! (a tracing env-filter, e.g. `debug` or `coracle_runtime=debug,libcontainer=debug`).
//!
//! At a level other than debug only coracle's own events are shown (none of them is
//! above debug for a command that succeeds): libraries' errors reach the user through
//! our error messages, which carry their whole chain. At debug, libcontainer's,
//! libcgroups' and the registry client's events are shown too. The effective filter is
//! put in `CORACLE_LOG` for the processes coracle re-executes itself as (the detached
//! monitor, health probes, exec sessions), which log to their own stderr
//! (`monitor.log` for the monitor).

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// The environment variable holding the filter.
pub const ENV: &str = "CORACLE_LOG";

/// docker's `--log-level` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    fn filter(self) -> String {
        match self {
            Level::Debug => {
                "warn,coracle=debug,libcontainer=debug,libcgroups=debug,oci_client=debug"
                    .to_string()
            }
            Level::Info => "off,coracle=info".to_string(),
            Level::Warn => "off,coracle=warn".to_string(),
            // tracing has no level above error.
            Level::Error | Level::Fatal => "off,coracle=error".to_string(),
        }
    }
}

/// Installs the subscriber. A level given on the command line wins over `CORACLE_LOG`
/// and replaces it for child processes; the default is docker's `info`. Called first
/// thing in `main`, while the process has a single thread (it may set the environment).
pub fn init(debug: bool, level: Option<Level>) {
    let level = if debug { Some(Level::Debug) } else { level };
    let directives = match level {
        Some(l) => {
            let f = l.filter();
            std::env::set_var(ENV, &f);
            f
        }
        None => match std::env::var(ENV) {
            Ok(v) if !v.trim().is_empty() => v,
            _ => Level::Info.filter(),
        },
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        coracle_engine::process::note!("coracle: ignoring {ENV}={directives:?}: {e}");
        EnvFilter::new(Level::Info.filter())
    });
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| coracle_engine::process::LogSink)
        .with_ansi(false)
        // A failed write is the sink's to swallow; this would print it with eprintln!.
        .log_internal_errors(false)
        .finish();
    let _ = tracing::subscriber::set_global_default(subscriber);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_level_parses_as_a_filter() {
        for l in [
            Level::Debug,
            Level::Info,
            Level::Warn,
            Level::Error,
            Level::Fatal,
        ] {
            EnvFilter::try_new(l.filter()).unwrap();
        }
    }
}
