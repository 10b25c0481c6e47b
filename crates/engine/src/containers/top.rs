//! `top`: the host's `ps`, its output cut down to the container's processes, as
//! docker's daemon does (`daemon/top_unix.go`): every process in the container's cgroup,
//! `ps` run with the user's options (`-ef` by default) plus `-q <pids>` when `ps`
//! accepts it, the header kept, rows kept by their PID column.

use crate::{Containers, Engine, EngineError};
use coracle_runtime::cgroup_stats::{cgroup_pids, CgroupStatsError};
use coracle_state::{ContainerRecord, ContainerState};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum TopError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// docker's wording, with the full id.
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("Container {0} is restarting, wait until the container is running")]
    Restarting(String),
    #[error(transparent)]
    Cgroup(#[from] CgroupStatsError),
    /// Bad `ps` options or output, in docker's words.
    #[error("{0}")]
    Invalid(String),
    #[error("ps: {0}")]
    Ps(String),
}

impl TopError {
    pub fn kind(&self) -> coracle_core::ErrorKind {
        match self {
            TopError::Engine(e) => e.kind(),
            TopError::NotRunning(_) | TopError::Restarting(_) => coracle_core::ErrorKind::Conflict,
            TopError::Cgroup(e) => e.kind(),
            TopError::Invalid(_) => coracle_core::ErrorKind::InvalidArgument,
            TopError::Ps(_) => coracle_core::ErrorKind::Internal,
        }
    }
}

/// `ps`'s header fields and the container's rows, the last column holding the rest of
/// the line (the command with its arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessList {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

impl Engine {
    /// The host pid of a running (or paused) container's init: the recorded one, else
    /// the runtime's; None unless that process is still in the container's cgroup
    /// (pids are reused once a container is gone).
    pub(crate) fn container_init_pid(&self, c: &ContainerRecord) -> Option<u32> {
        if !c.state.is_up() {
            return None;
        }
        let pid = match c.init_pid.filter(|p| *p > 0) {
            Some(p) => u32::try_from(p).ok()?,
            None => {
                let cfg = self.container_config(&c.id).ok()?;
                self.runtime_for(&cfg).ok()?.state(&c.id).ok()?.pid?
            }
        };
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        cgroups.contains(&c.id).then_some(pid)
    }
}

impl Containers<'_> {
    /// `top CONTAINER [ps OPTIONS]`.
    pub fn top(&mut self, key: &str, ps_args: &[String]) -> Result<ProcessList, TopError> {
        let c = self.find_container(key)?;
        if c.state == ContainerState::Restarting {
            return Err(TopError::Restarting(c.id));
        }
        let pid = self
            .container_init_pid(&c)
            .ok_or_else(|| TopError::NotRunning(c.id.clone()))?;
        let pids = cgroup_pids(pid)?;
        run_ps(ps_args, &pids)
    }
}

/// docker passes the options to the daemon joined by spaces and splits them there.
fn ps_args(args: &[String]) -> Vec<String> {
    let joined = args.join(" ");
    let split: Vec<String> = joined
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if split.is_empty() {
        vec!["-ef".to_string()]
    } else {
        split
    }
}

/// docker refuses to rename the PID column (`-o user=PID`): rows are found by it.
fn validate_ps_args(args: &[String]) -> Result<(), TopError> {
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        let Some((key, value)) = a.split_once('=') else {
            continue;
        };
        let value = if value.is_empty() {
            it.peek().map(|s| s.as_str()).unwrap_or("")
        } else {
            value
        };
        if value.starts_with("PID") && key != "pid" {
            return Err(TopError::Invalid(format!(
                "specifying \"{key}={value}\" is not allowed"
            )));
        }
    }
    Ok(())
}

fn run_ps(args: &[String], pids: &[u32]) -> Result<ProcessList, TopError> {
    let args = ps_args(args);
    validate_ps_args(&args)?;
    let quick = format!(
        "-q{}",
        pids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let run = |extra: Option<&str>| {
        let mut cmd = Command::new("ps");
        cmd.args(&args);
        if let Some(e) = extra {
            cmd.arg(e);
        }
        cmd.output()
            .map_err(|e| TopError::Ps(format!("running ps: {e}")))
    };
    // Some options (forest listings) refuse -q: then all processes, filtered here.
    let mut out = run(Some(&quick))?;
    if !out.status.success() {
        out = run(None)?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first = stderr.lines().next().unwrap_or("").trim().to_string();
            return Err(TopError::Ps(if first.is_empty() {
                out.status.to_string()
            } else {
                first
            }));
        }
    }
    parse_ps_output(&String::from_utf8_lossy(&out.stdout), pids)
}

/// docker's `parsePSOutput`: rows whose PID is one of `pids`, and the thread rows
/// (PID `-`, with `ps m`) that follow such a row.
pub fn parse_ps_output(output: &str, pids: &[u32]) -> Result<ProcessList, TopError> {
    let mut lines = output.split('\n');
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    let pid_index = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| TopError::Invalid("Couldn't find PID field in ps output".into()))?;
    let mut list = ProcessList {
        titles,
        processes: Vec::new(),
    };
    let mut in_container = false;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(field) = fields.get(pid_index) else {
            continue;
        };
        if *field == "-" {
            if in_container {
                list.processes.push(row(&fields, list.titles.len()));
            }
            continue;
        }
        let pid: u32 = field
            .parse()
            .map_err(|e| TopError::Invalid(format!("Unexpected pid '{field}': {e}")))?;
        in_container = pids.contains(&pid);
        if in_container {
            list.processes.push(row(&fields, list.titles.len()));
        }
    }
    Ok(list)
}

/// As many cells as titles: the overhanging fields joined into the last one.
fn row(fields: &[&str], titles: usize) -> Vec<String> {
    let keep = titles.saturating_sub(1).min(fields.len());
    let mut out: Vec<String> = fields[..keep].iter().map(|s| s.to_string()).collect();
    out.push(fields[keep..].join(" "));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS_EF: &str = "UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 08:41 ?        00:00:06 /sbin/init splash
root       11451   11448  0 11:30 ?        00:00:00 sleep 1000
root       11460   11451  0 11:30 ?        00:00:00 sh -c while true; do sleep 1; done
";

    #[test]
    fn keeps_the_header_and_the_containers_rows() {
        let l = parse_ps_output(PS_EF, &[11451, 11460]).unwrap();
        assert_eq!(
            l.titles,
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        );
        assert_eq!(l.processes.len(), 2);
        assert_eq!(
            l.processes[0],
            [
                "root",
                "11451",
                "11448",
                "0",
                "11:30",
                "?",
                "00:00:00",
                "sleep 1000"
            ]
        );
        assert_eq!(l.processes[1][7], "sh -c while true; do sleep 1; done");
    }

    #[test]
    fn thread_rows_follow_their_process() {
        let out = "USER PID TID CMD\nroot 5 - a\nroot - 5 -\nroot 7 - b\nroot - 7 -\n";
        let l = parse_ps_output(out, &[7]).unwrap();
        assert_eq!(
            l.processes,
            [vec!["root", "7", "-", "b"], vec!["root", "-", "7", "-"]]
        );
    }

    #[test]
    fn docker_errors() {
        let e = parse_ps_output("USER COMMAND\nroot x\n", &[1]).unwrap_err();
        assert_eq!(e.to_string(), "Couldn't find PID field in ps output");
        let e = parse_ps_output("PID CMD\nabc x\n", &[1]).unwrap_err();
        assert!(e.to_string().starts_with("Unexpected pid 'abc'"), "{e}");
        let args = ps_args(&["-o".into(), "user=PID".into()]);
        let e = validate_ps_args(&args).unwrap_err();
        assert_eq!(e.to_string(), "specifying \"user=PID\" is not allowed");
        assert!(validate_ps_args(&ps_args(&["-o".into(), "pid=PID,comm".into()])).is_ok());
        assert!(validate_ps_args(&ps_args(&["-o".into(), "comm=CMD".into()])).is_ok());
    }

    #[test]
    fn options_split_on_spaces_as_docker() {
        assert_eq!(ps_args(&[]), ["-ef"]);
        assert_eq!(ps_args(&["-o pid,comm".into()]), ["-o", "pid,comm"]);
        assert_eq!(ps_args(&["aux".into()]), ["aux"]);
    }

    #[test]
    fn real_ps_finds_this_process() {
        let me = std::process::id();
        let l = run_ps(&[], &[me]).unwrap();
        assert_eq!(l.processes.len(), 1, "{l:?}");
        assert_eq!(l.processes[0][1], me.to_string());
        // A listing that refuses -q is retried without it.
        let l = run_ps(&["-ef".into(), "f".into()], &[me]).unwrap();
        assert_eq!(l.processes.len(), 1, "{l:?}");
        let e = run_ps(&["--no-such-option".into()], &[me]).unwrap_err();
        assert!(matches!(e, TopError::Ps(_)), "{e}");
    }
}
