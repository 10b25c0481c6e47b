//! Compose support: runs docker-compose stacks as docker compose v2 does (issue 13).
//!
//! The crate will hold project loading in compose-go's order (parse into an untyped tree,
//! interpolate, include, extends, merge, validate, normalise, then type it) and, on top of
//! the engine, the compose commands. For now it holds the first steps of loading that need
//! no containers: variable interpolation ([`interpolate`]) and `.env` parsing ([`dotenv`]).

pub mod dotenv;
mod error;
pub mod interpolate;

pub use error::ComposeError;
