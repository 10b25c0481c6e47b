//! Errors of the network crate; each names the link, address, port or file involved.

use coracle_core::ErrorKind;
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A netlink request the kernel refused (`op` e.g. "create veth", `what` the link).
    #[error("netlink: {op} {what}: {source}")]
    Netlink {
        op: &'static str,
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{call}: {source}")]
    Sys {
        call: &'static str,
        #[source]
        source: io::Error,
    },
    /// `nft` failed or is missing; the message includes what it printed.
    #[error("firewall (nftables): {0}")]
    Firewall(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// docker's words for a host port someone holds.
    #[error("Bind for {addr} failed: port is already allocated")]
    PortInUse { addr: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
}

impl NetError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            NetError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            NetError::PortInUse { .. } | NetError::Conflict(_) => ErrorKind::Conflict,
            NetError::Unavailable(_) => ErrorKind::Unavailable,
            NetError::Netlink { .. }
            | NetError::Io { .. }
            | NetError::Sys { .. }
            | NetError::Firewall(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn sys(call: &'static str) -> impl FnOnce(io::Error) -> NetError {
        move |source| NetError::Sys { call, source }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> NetError {
        let path = path.into();
        move |source| NetError::Io { op, path, source }
    }
}
