//! What a front end (the CLI today; compose and the API server next) asks `create` for.

use coracle_core::Platform;
use coracle_model::{NamespaceMode, RunOptions};

pub struct RunRequest {
    pub image: String,
    pub platform: Option<Platform>,
    pub options: RunOptions,
}

/// `-h`, else the host's name with the host's network or UTS namespace (docker keeps
/// it there), else the short id.
pub(crate) fn container_hostname(opts: &RunOptions, id: &str) -> String {
    let shares_host_name =
        opts.network == coracle_model::NetworkMode::Host || opts.uts == NamespaceMode::Host;
    match &opts.hostname {
        Some(h) => h.clone(),
        None if shares_host_name => rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
        None => id[..12.min(id.len())].to_string(),
    }
}
