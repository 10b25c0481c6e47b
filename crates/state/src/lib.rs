//! The state database: one SQLite file per store root, WAL mode, short transactions.
//! Records only ever point at completed files (layers and blobs are renamed into place
//! before they are recorded), so what the database says exists, exists.

mod container_state;
mod containers;
mod db;
mod error;
mod images;
mod networks;
mod salvage;
mod schema;

pub use container_state::ContainerState;
pub use containers::ContainerRecord;
pub use db::Db;
pub use error::StateError;
pub use images::{ImageLayer, ImageRecord, NewImage};
pub use networks::{EndpointConfig, LeaseRecord, NetworkRecord, PortRecord};
pub use salvage::Salvaged;
