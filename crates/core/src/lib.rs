//! Coracle's shared vocabulary. Everything here is pure: no I/O, no processes.

pub mod digest;
pub mod error;
pub mod mac;
pub mod platform;
pub mod port;
pub mod reference;

pub use digest::{chain_id, Digest, DigestError};
pub use error::ErrorKind;
pub use mac::{MacAddr, MacAddrError};
pub use platform::{Platform, PlatformError};
pub use port::{PortMapping, Protocol, ProtocolError};
pub use reference::{ImageReference, ReferenceError};
