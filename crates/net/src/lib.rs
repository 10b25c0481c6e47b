//! Container networking: network namespaces, links and addresses over netlink, IP
//! address management, host port reservations, the firewall (nftables behind the
//! `FirewallDriver` trait) and the embedded DNS resolver of user-defined networks.
//!
//! Everything here acts on the network namespace of the calling thread, so tests and
//! callers choose the namespace by entering it; nothing reads the state database.

pub mod dns;
pub mod error;
pub mod firewall;
pub mod ipam;
pub mod link;
pub mod netns;
pub mod ports;

pub use error::NetError;
