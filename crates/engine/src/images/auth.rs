//! `login` and `logout`: credentials in the user's docker config, verified against the
//! registry first.

use crate::EngineError;
use coracle_image::{DockerConfig, RegistryConfig};

/// Check the credentials against the registry, then store them (config.json or the
/// configured credential helper). Needs no store, so it is not an `Engine` method.
pub fn login(
    registry: &str,
    username: &str,
    password: &str,
    tls_verify: Option<bool>,
) -> Result<(), EngineError> {
    let config = RegistryConfig::load()?;
    let docker = DockerConfig::from_env();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(EngineError::io("start async runtime", docker.path()))?;
    runtime.block_on(coracle_image::auth::login(
        &config, tls_verify, &docker, registry, username, password,
    ))?;
    Ok(())
}

pub fn logout(registry: &str) -> Result<(), EngineError> {
    let docker = DockerConfig::from_env();
    coracle_image::auth::logout(&docker, registry)?;
    Ok(())
}
