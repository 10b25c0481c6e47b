//! One probe process: exec'd into the container with stdout and stderr on one pipe,
//! read up to docker's limit, killed at the check's timeout, reaped.

use super::{timeout_message, LimitedOutput};
use crate::containers::exec::{ExecRequest, PreparedExec};
use crate::Engine;
use coracle_runtime::runtime::{ProcessIo, RuntimeError};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags, Signal, WaitOptions};
use std::io::{PipeReader, Read};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

impl Engine {
    /// Runs `cmd` in the container once. Ok: its exit code and output, or -1 and
    /// docker's timeout message. Err: why it could not be run, as docker words it (the
    /// probe then counts as failed with that output).
    pub(super) fn probe(
        &mut self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<(i32, String), String> {
        // docker runs the check with the container's user, working dir and env.
        let req = ExecRequest {
            cmd: cmd.to_vec(),
            tty: false,
            interactive: false,
            detach: false,
            privileged: false,
            user: None,
            workdir: None,
            env: vec![],
        };
        let PreparedExec {
            container_id,
            runtime,
            process,
        } = self.prepare_exec(id, &req).map_err(|e| e.to_string())?;
        // Runtimes that fork the process and exit (an OCI runtime binary's `exec -d`)
        // leave it to their parent's nearest subreaper: this process, so it can reap it.
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .map_err(|e| format!("prctl(PR_SET_CHILD_SUBREAPER): {e}"))?;
        let (reader, writer) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
        let stderr = writer.try_clone().map_err(|e| format!("dup: {e}"))?;
        let stdin = std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
        let io = ProcessIo::Inherit {
            stdin: OwnedFd::from(stdin),
            stdout: OwnedFd::from(writer),
            stderr: OwnedFd::from(stderr),
        };
        // The io (our copies of the pipe's write end) is consumed here, so the pipe
        // reaches end-of-file once the probe and whatever it spawned have exited.
        let pid = runtime
            .exec(&container_id, &process, io)
            .map_err(|e| exec_error(&e, &cmd[0]))?;
        wait_probe(pid, reader, timeout)
    }
}

/// docker's text for a probe the runtime could not start (what dockerd shows as the
/// result's Output when containerd refuses the exec).
fn exec_error(e: &RuntimeError, command: &str) -> String {
    match e.exec_failure() {
        Some(f) => format!(
            "OCI runtime exec failed: exec failed: unable to start container process: {}: unknown",
            f.docker_message(command)
        ),
        None => e.to_string(),
    }
}

/// The probe's exit code (128 + signal when killed, as containerd reports it).
fn exit_code(status: rustix::process::WaitStatus) -> i32 {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        (None, None) => -1,
    }
}

/// Collects the probe's output until it exits or the timeout passes (then kills it).
/// Output is not waited for past the probe's exit: a background process it left
/// behind may hold the pipe open indefinitely.
fn wait_probe(pid: u32, reader: PipeReader, timeout: Duration) -> Result<(i32, String), String> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| format!("runtime returned an invalid probe pid {pid}"))?;
    let reap = |pid| {
        rustix::process::waitpid(Some(pid), WaitOptions::empty())
            .map_err(|e| format!("waitpid {}: {e}", pid.as_raw_nonzero()))?
            .map(|(_, s)| s)
            .ok_or_else(|| format!("waitpid {}: no status", pid.as_raw_nonzero()))
    };
    // The probe is our child (or adopted as subreaper) and not yet reaped, so its pid
    // cannot have been reused.
    let pidfd = rustix::process::pidfd_open(pid, PidfdFlags::empty())
        .map_err(|e| format!("pidfd_open {}: {e}", pid.as_raw_nonzero()))?;
    let mut out = LimitedOutput::default();
    let mut pipe_open = true;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
            reap(pid)?;
            if pipe_open {
                drain(&reader, &mut out);
            }
            return Ok((-1, timeout_message(timeout, &out.into_string())));
        }
        let (exited, readable) = {
            let mut fds = vec![PollFd::new(&pidfd, PollFlags::IN)];
            if pipe_open {
                fds.push(PollFd::new(&reader, PollFlags::IN));
            }
            let ts = Timespec::try_from(left).map_err(|_| "timeout out of range".to_string())?;
            match poll(&mut fds, Some(&ts)) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(format!("poll: {e}")),
            }
            (
                !fds[0].revents().is_empty(),
                fds.get(1).is_some_and(|f| !f.revents().is_empty()),
            )
        };
        if readable && !read_some(&reader, &mut out) {
            pipe_open = false;
        }
        if exited {
            let status = reap(pid)?;
            if pipe_open {
                drain(&reader, &mut out);
            }
            return Ok((exit_code(status), out.into_string()));
        }
    }
}

/// One read; false at end of file (or a read error, which ends the output too).
fn read_some(mut reader: &PipeReader, out: &mut LimitedOutput) -> bool {
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                out.push(&buf[..n]);
                return true;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// What the pipe already holds, without waiting for more; stops once the kept output
/// has overflowed so a writer that never stops cannot hold us here.
fn drain(reader: &PipeReader, out: &mut LimitedOutput) {
    loop {
        let mut fds = [PollFd::new(reader, PollFlags::IN)];
        let ready = matches!(poll(&mut fds, Some(&Timespec::default())), Ok(n) if n > 0);
        if !ready || !read_some(reader, out) || out.overflowed() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};

    /// A host process standing in for the runtime's exec: same pipe, same reaping.
    // `wait_probe` reaps it by pid, as it reaps what a runtime's exec started.
    #[allow(clippy::zombie_processes)]
    fn spawn(script: &str) -> (u32, PipeReader) {
        let (reader, writer) = std::io::pipe().unwrap();
        let err = writer.try_clone().unwrap();
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap();
        (child.id(), reader)
    }

    #[test]
    fn exit_code_and_both_streams() {
        let (pid, r) = spawn("echo out; echo err >&2; exit 3");
        let (code, output) = wait_probe(pid, r, Duration::from_secs(20)).unwrap();
        assert_eq!(code, 3);
        assert_eq!(output, "out\nerr\n");
    }

    #[test]
    fn timeout_kills_and_says_so() {
        let (pid, r) = spawn("echo started; exec sleep 100");
        let begun = Instant::now();
        let (code, output) = wait_probe(pid, r, Duration::from_millis(500)).unwrap();
        assert_eq!(code, -1);
        assert_eq!(output, "Health check exceeded timeout (500ms): started\n");
        assert!(begun.elapsed() < Duration::from_secs(20));
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "the probe is killed and reaped"
        );
    }

    #[test]
    fn background_children_do_not_hold_the_probe() {
        // The background sleep keeps the pipe's write end open after sh exits.
        let (pid, r) = spawn("sleep 30 & echo done");
        let begun = Instant::now();
        let (code, output) = wait_probe(pid, r, Duration::from_secs(20)).unwrap();
        assert_eq!((code, output.as_str()), (0, "done\n"));
        assert!(begun.elapsed() < Duration::from_secs(20));
        // The sleep is in the probe's process group; end it.
        let _ =
            rustix::process::kill_process_group(Pid::from_raw(pid as i32).unwrap(), Signal::KILL);
    }

    #[test]
    fn signalled_probe_reports_128_plus_signal() {
        let (pid, r) = spawn("kill -TERM $$");
        let (code, _) = wait_probe(pid, r, Duration::from_secs(20)).unwrap();
        assert_eq!(code, 128 + 15);
    }

    #[test]
    fn long_output_is_cut() {
        let (pid, r) = spawn("i=0; while [ $i -lt 1000 ]; do echo 0123456789; i=$((i+1)); done");
        let (code, output) = wait_probe(pid, r, Duration::from_secs(20)).unwrap();
        assert_eq!(code, 0);
        assert_eq!(output.len(), 4096 + 3);
        assert!(output.ends_with("..."));
    }

    #[test]
    fn exec_failures_read_like_dockers() {
        let e = RuntimeError::Exec {
            runtime: "youki".into(),
            op: coracle_runtime::runtime::Op::Create,
            id: "x".into(),
            failure: coracle_runtime::runtime::ExecFailure::NotFound,
            message: "executable 'nosuch' not found in $PATH".into(),
        };
        assert_eq!(
            exec_error(&e, "nosuch"),
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH: unknown"
        );
    }
}
