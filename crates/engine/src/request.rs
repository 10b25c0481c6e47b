//! What a front end (the CLI today; compose and the API server next) asks `create` for.

use coracle_core::Platform;
use coracle_model::{ContainerSpec, PullPolicy};

pub struct RunRequest {
    pub image: String,
    pub platform: Option<Platform>,
    /// What the container is.
    pub spec: ContainerSpec,
    /// When to pull the image first (`--pull`): this invocation's choice, not the
    /// container's.
    pub pull: PullPolicy,
}
