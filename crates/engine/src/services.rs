//! The engine's services: each borrows the one [`Engine`] (one store, one lock
//! discipline) and hands out the operations of one kind of object. They deref to the
//! engine so their operations share its internal helpers.

use crate::Engine;
use std::ops::{Deref, DerefMut};

macro_rules! service {
    ($(#[$doc:meta])* $name:ident, $accessor:ident) => {
        $(#[$doc])*
        pub struct $name<'e>(&'e mut Engine);

        impl Deref for $name<'_> {
            type Target = Engine;
            fn deref(&self) -> &Engine {
                self.0
            }
        }

        impl DerefMut for $name<'_> {
            fn deref_mut(&mut self) -> &mut Engine {
                self.0
            }
        }

        impl Engine {
            $(#[$doc])*
            pub fn $accessor(&mut self) -> $name<'_> {
                $name(self)
            }
        }
    };
}

service!(
    /// Containers: create, run, the lifecycle, exec and attach, logs, stats, top, copy,
    /// list, inspect, rename, update, remove and prune.
    Containers,
    containers
);
service!(
    /// Images: pull, push, list, inspect, tag, remove, prune, save, load, search and
    /// unpack.
    Images,
    images
);
service!(
    /// Networks: create, list, inspect, remove, prune, connect, disconnect, and a
    /// container's published ports.
    Networks,
    networks
);
service!(
    /// Named and anonymous volumes: create, list, inspect, remove and prune.
    Volumes,
    volumes
);
service!(
    /// The store as a whole: host and engine information and disk usage.
    System,
    system
);
