//! The re-exec protocol: the hidden subcommands this binary re-executes itself as
//! (the per-container monitor, one health probe, an exec session), each with its
//! typed arguments, and the report a monitor sends back to the process that started
//! it. Spawners build command lines with [`Helper::to_args`]; the CLI parses its
//! hidden subcommands back with [`Helper::from_args`]; nothing else spells them.

use coracle_runtime::exec_session::Process;
use serde::{Deserialize, Serialize};
use std::ffi::{OsStr, OsString};
use std::path::Path;

/// `coracle __monitor ID [--sync-fd N] [--attach-wait]`.
pub const MONITOR: &str = "__monitor";
/// `coracle __healthcheck CONTAINER`.
pub const HEALTHCHECK: &str = "__healthcheck";
/// `coracle __exec --id ID --process JSON [--interactive] [--detach]`.
pub const EXEC: &str = "__exec";

/// One re-execution of this binary as a helper process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Helper {
    /// The container's monitor (see `monitor.rs`), started detached by `start`.
    Monitor {
        id: String,
        /// The fd its start report goes to (inherited from `start`).
        sync_fd: Option<i32>,
        /// Start the container only once an attach client has connected.
        attach_wait: bool,
    },
    /// Runs a container's health check once and records the result (started by its
    /// monitor; single-threaded, as it forks into the container).
    Healthcheck {
        /// The container's id (its name works too).
        container: String,
    },
    /// An exec prepared by `exec`, run from a fresh (sealed, single-threaded) process.
    Exec {
        id: String,
        process: Box<Process>,
        interactive: bool,
        detach: bool,
    },
}

/// Arguments of a hidden subcommand that do not parse.
#[derive(Debug, thiserror::Error)]
pub enum HelperArgsError {
    #[error("{0}")]
    Usage(String),
    #[error("{EXEC} --process: {0}")]
    Process(#[source] serde_json::Error),
}

impl Helper {
    /// The hidden subcommand's name.
    pub fn name(&self) -> &'static str {
        match self {
            Helper::Monitor { .. } => MONITOR,
            Helper::Healthcheck { .. } => HEALTHCHECK,
            Helper::Exec { .. } => EXEC,
        }
    }

    /// The subcommand and its arguments (what follows the binary's global flags).
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![self.name().into()];
        match self {
            Helper::Monitor {
                id,
                sync_fd,
                attach_wait,
            } => {
                // The id right after the name: `monitor_alive` recognises monitors
                // (those of older binaries too) by it.
                a.push(id.into());
                if let Some(fd) = sync_fd {
                    a.extend(["--sync-fd".into(), fd.to_string().into()]);
                }
                if *attach_wait {
                    a.push("--attach-wait".into());
                }
            }
            Helper::Healthcheck { container } => a.push(container.into()),
            Helper::Exec {
                id,
                process,
                interactive,
                detach,
            } => {
                // A Process has only string-keyed maps: serializing cannot fail.
                let json = serde_json::to_string(process).expect("a Process serializes");
                a.extend(["--id".into(), id.into(), "--process".into(), json.into()]);
                if *interactive {
                    a.push("--interactive".into());
                }
                if *detach {
                    a.push("--detach".into());
                }
            }
        }
        a
    }

    /// `--root ROOT` and [`to_args`](Self::to_args): the whole command line after
    /// argv[0] of a helper working on the store at `root`.
    pub fn command_line(&self, root: &Path) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["--root".into(), root.into()];
        a.extend(self.to_args());
        a
    }

    /// Parses what [`to_args`](Self::to_args) built: the subcommand's name, then its
    /// arguments.
    pub fn from_args(args: &[OsString]) -> Result<Helper, HelperArgsError> {
        let usage = |m: String| HelperArgsError::Usage(m);
        let Some((name, rest)) = args.split_first() else {
            return Err(usage("no helper subcommand".into()));
        };
        let mut p = ArgParser::new(name.to_string_lossy().into_owned(), rest);
        let helper = match name.to_str() {
            Some(MONITOR) => {
                let id = p.positional("ID")?;
                let (mut sync_fd, mut attach_wait) = (None, false);
                while let Some(flag) = p.flag()? {
                    match flag.as_str() {
                        "--sync-fd" => {
                            let v = p.value(&flag)?;
                            sync_fd = Some(v.parse().map_err(|_| {
                                usage(format!("invalid value '{v}' for '--sync-fd <SYNC_FD>'"))
                            })?);
                        }
                        "--attach-wait" => attach_wait = true,
                        _ => return Err(p.unexpected(&flag)),
                    }
                }
                Helper::Monitor {
                    id,
                    sync_fd,
                    attach_wait,
                }
            }
            Some(HEALTHCHECK) => {
                let container = p.positional("CONTAINER")?;
                if let Some(flag) = p.flag()? {
                    return Err(p.unexpected(&flag));
                }
                Helper::Healthcheck { container }
            }
            Some(EXEC) => Self::exec_from(&mut p)?,
            _ => return Err(usage(format!("unknown helper {name:?}"))),
        };
        Ok(helper)
    }

    fn exec_from(p: &mut ArgParser<'_>) -> Result<Helper, HelperArgsError> {
        let (mut id, mut process) = (None, None);
        let (mut interactive, mut detach) = (false, false);
        while let Some(flag) = p.flag()? {
            match flag.as_str() {
                "--id" => id = Some(p.value(&flag)?),
                "--process" => process = Some(p.value(&flag)?),
                "--interactive" => interactive = true,
                "--detach" => detach = true,
                _ => return Err(p.unexpected(&flag)),
            }
        }
        let missing = |f: &str| HelperArgsError::Usage(format!("{EXEC}: {f} is required"));
        let id = id.ok_or_else(|| missing("--id"))?;
        let process = process.ok_or_else(|| missing("--process"))?;
        let process = serde_json::from_str(&process).map_err(HelperArgsError::Process)?;
        Ok(Helper::Exec {
            id,
            process: Box::new(process),
            interactive,
            detach,
        })
    }

    /// Whether the NUL-separated `cmdline` (of /proc/PID/cmdline) is the monitor of
    /// container `id`. Every version of the binary spelled it `__monitor ID ...`, so
    /// monitors started before an upgrade are recognised as well.
    pub fn is_monitor_cmdline(cmdline: &[u8], id: &str) -> bool {
        let mut args = cmdline.split(|b| *b == 0);
        args.any(|a| a == MONITOR.as_bytes()) && args.next() == Some(id.as_bytes())
    }
}

/// A small parser of `--flag VALUE`, `--flag=VALUE` and positional arguments, enough
/// for the helpers' grammars (which only this binary writes).
struct ArgParser<'a> {
    name: String,
    rest: std::slice::Iter<'a, OsString>,
    /// The value of the current `--flag=VALUE`.
    inline: Option<String>,
}

impl<'a> ArgParser<'a> {
    fn new(name: String, rest: &'a [OsString]) -> ArgParser<'a> {
        ArgParser {
            name,
            rest: rest.iter(),
            inline: None,
        }
    }

    fn text(a: &OsStr) -> Result<String, HelperArgsError> {
        a.to_str()
            .map(str::to_string)
            .ok_or_else(|| HelperArgsError::Usage(format!("invalid UTF-8 in argument {a:?}")))
    }

    fn positional(&mut self, what: &str) -> Result<String, HelperArgsError> {
        match self.rest.next() {
            Some(a) if !a.to_string_lossy().starts_with("--") => Self::text(a),
            _ => Err(HelperArgsError::Usage(format!(
                "{}: the argument <{what}> is required",
                self.name
            ))),
        }
    }

    /// The next flag (its name; an `=VALUE` is kept for [`value`](Self::value)).
    fn flag(&mut self) -> Result<Option<String>, HelperArgsError> {
        if let Some(v) = self.inline.take() {
            return Err(HelperArgsError::Usage(format!(
                "{}: unexpected value '{v}'",
                self.name
            )));
        }
        let Some(a) = self.rest.next() else {
            return Ok(None);
        };
        let a = Self::text(a)?;
        if !a.starts_with("--") {
            return Err(self.unexpected(&a));
        }
        Ok(Some(match a.split_once('=') {
            Some((flag, v)) => {
                self.inline = Some(v.to_string());
                flag.to_string()
            }
            None => a,
        }))
    }

    fn value(&mut self, flag: &str) -> Result<String, HelperArgsError> {
        if let Some(v) = self.inline.take() {
            return Ok(v);
        }
        match self.rest.next() {
            Some(v) => Self::text(v),
            None => Err(HelperArgsError::Usage(format!(
                "{}: {flag} needs a value",
                self.name
            ))),
        }
    }

    fn unexpected(&self, arg: &str) -> HelperArgsError {
        HelperArgsError::Usage(format!("{}: unexpected argument '{arg}'", self.name))
    }
}

/// What a monitor tells the process that started it, one JSON line each: `Ready`
/// once its attach socket is bound, then `Started` or `Failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub(crate) enum StartReport {
    Ready,
    Started {
        pid: i32,
    },
    /// The container did not start: docker's exit code and message.
    Failed {
        code: i32,
        message: String,
    },
}

impl StartReport {
    /// The report as one line (newline included).
    pub(crate) fn to_line(&self) -> String {
        // Only strings and integers: serializing cannot fail.
        let mut line = serde_json::to_string(self).expect("a StartReport serializes");
        line.push('\n');
        line
    }

    pub(crate) fn from_line(line: &str) -> Result<StartReport, serde_json::Error> {
        serde_json::from_str(line.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn round_trip(h: Helper) {
        assert_eq!(Helper::from_args(&h.to_args()).unwrap(), h);
        let full = h.command_line(Path::new("/var/lib/coracle"));
        assert_eq!(full[..2], os(&["--root", "/var/lib/coracle"]));
        assert_eq!(Helper::from_args(&full[2..]).unwrap(), h);
    }

    fn process() -> Box<Process> {
        serde_json::from_value(serde_json::json!({
            "args": ["sh", "-c", "echo hi"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "user": {"uid": 0, "gid": 0},
        }))
        .unwrap()
    }

    #[test]
    fn every_helper_round_trips() {
        for sync_fd in [None, Some(3)] {
            for attach_wait in [false, true] {
                round_trip(Helper::Monitor {
                    id: "abc123".into(),
                    sync_fd,
                    attach_wait,
                });
            }
        }
        round_trip(Helper::Healthcheck {
            container: "web".into(),
        });
        for (interactive, detach) in [(false, false), (true, false), (false, true)] {
            round_trip(Helper::Exec {
                id: "abc123".into(),
                process: process(),
                interactive,
                detach,
            });
        }
    }

    #[test]
    fn the_monitor_keeps_the_argv_older_binaries_spawned() {
        let h = Helper::Monitor {
            id: "abc".into(),
            sync_fd: Some(3),
            attach_wait: true,
        };
        assert_eq!(
            h.to_args(),
            os(&["__monitor", "abc", "--sync-fd", "3", "--attach-wait"])
        );
        let parsed = Helper::from_args(&os(&["__monitor", "abc", "--sync-fd=3"])).unwrap();
        assert!(matches!(
            parsed,
            Helper::Monitor {
                sync_fd: Some(3),
                attach_wait: false,
                ..
            }
        ));
    }

    #[test]
    fn bad_arguments_are_refused() {
        for args in [
            &["__monitor"][..],
            &["__monitor", "abc", "--sync-fd"],
            &["__monitor", "abc", "--sync-fd", "x"],
            &["__monitor", "abc", "--bogus"],
            &["__monitor", "abc", "extra"],
            &["__healthcheck"],
            &["__healthcheck", "a", "b"],
            &["__exec", "--process", "{}"],
            &["__exec", "--id", "x"],
            &["__bogus", "x"],
            &[],
        ] {
            let e = Helper::from_args(&os(args)).unwrap_err();
            assert!(matches!(e, HelperArgsError::Usage(_)), "{args:?}: {e}");
        }
        let e = Helper::from_args(&os(&["__exec", "--id", "x", "--process", "{"])).unwrap_err();
        assert!(matches!(e, HelperArgsError::Process(_)), "{e}");
        assert!(e.to_string().starts_with("__exec --process: "), "{e}");
    }

    #[test]
    fn monitors_are_recognised_by_their_command_line() {
        let cmdline = |args: &[&str]| {
            let mut b = Vec::new();
            for a in args {
                b.extend_from_slice(a.as_bytes());
                b.push(0);
            }
            b
        };
        let mut argv = vec!["coracle".into(), "--root".into(), "/r".into()];
        argv.extend(
            Helper::Monitor {
                id: "abc".into(),
                sync_fd: Some(3),
                attach_wait: false,
            }
            .to_args(),
        );
        let argv: Vec<String> = argv
            .into_iter()
            .map(|a: OsString| a.into_string().unwrap())
            .collect();
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        assert!(Helper::is_monitor_cmdline(&cmdline(&argv), "abc"));
        assert!(!Helper::is_monitor_cmdline(&cmdline(&argv), "abd"));
        // Exactly what the binary before this protocol spawned.
        let old = [
            "coracle",
            "--root",
            "/r",
            "__monitor",
            "abc",
            "--sync-fd",
            "3",
        ];
        assert!(Helper::is_monitor_cmdline(&cmdline(&old), "abc"));
        let other = ["coracle", "__healthcheck", "abc"];
        assert!(!Helper::is_monitor_cmdline(&cmdline(&other), "abc"));
        let exec = ["coracle", "__exec", "--id", "abc", "--process", "__monitor"];
        assert!(!Helper::is_monitor_cmdline(&cmdline(&exec), "abc"));
    }

    #[test]
    fn start_reports_are_one_json_line_each() {
        for r in [
            StartReport::Ready,
            StartReport::Started { pid: 4242 },
            StartReport::Failed {
                code: 127,
                message: "failed to create task for container: exec: \"x\": \
                          executable file not found in $PATH\nsecond line"
                    .into(),
            },
        ] {
            let line = r.to_line();
            assert!(
                line.ends_with('\n') && line.matches('\n').count() == 1,
                "{line}"
            );
            assert_eq!(StartReport::from_line(&line).unwrap(), r);
        }
        assert_eq!(
            StartReport::Started { pid: 7 }.to_line(),
            "{\"report\":\"started\",\"pid\":7}\n"
        );
        assert!(StartReport::from_line("started 7").is_err());
    }
}
