//! Attached sessions (`run` in the foreground, `start -a`, `attach`): relay the
//! terminal to a container's monitor, passing received signals on to the container.

use coracle_engine::Engine;
use coracle_model::DEFAULT_DETACH_KEYS;
use coracle_runtime::monitor::session::{relay, AttachEnd, AttachOptions};
use std::os::unix::net::UnixStream;

pub struct Session<'a> {
    pub container: &'a str,
    pub tty: bool,
    pub stdin: bool,
    pub detach_keys: Option<Vec<u8>>,
    pub sig_proxy: bool,
}

/// Runs the session to its end. A monitor lost mid-session (killed) is reconciled
/// and the container's recorded exit code returned.
pub fn run(engine: &mut Engine, stream: UnixStream, s: &Session) -> anyhow::Result<AttachEnd> {
    run_streams(engine, stream, s, (true, true))
}

/// [`run`] showing only the output streams asked for (`run -a`): `(stdout, stderr)`.
pub fn run_streams(
    engine: &mut Engine,
    stream: UnixStream,
    s: &Session,
    (stdout, stderr): (bool, bool),
) -> anyhow::Result<AttachEnd> {
    let opts = AttachOptions {
        stdout,
        stderr,
        stdin: s.stdin,
        tty: s.tty,
        detach_keys: s
            .detach_keys
            .clone()
            .unwrap_or_else(|| DEFAULT_DETACH_KEYS.to_vec()),
        proxy_signals: s.sig_proxy && !s.tty,
    };
    let container = s.container.to_string();
    let end = relay(stream, &opts, &mut |sig| {
        // The container may have just exited: nothing to pass the signal to then.
        let _ = engine.signal_container(&container, sig);
    })?;
    if end == AttachEnd::Lost {
        return Ok(match engine.wait_container(s.container) {
            Ok(code) => AttachEnd::Exited(code as i32),
            Err(_) => AttachEnd::Lost,
        });
    }
    Ok(end)
}
