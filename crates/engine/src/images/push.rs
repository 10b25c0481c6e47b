//! `push NAME`: the stored manifest, config and layer blobs, uploaded as they are, so
//! the pushed digest is the digest the image was pulled or loaded with.

use crate::{EngineError, Images};
use coracle_core::{Digest, ImageReference};
use coracle_image::{Descriptor, PushPhase, PushProgress};

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// `Some(false)` allows plain HTTP and unverified TLS for this push.
    pub tls_verify: Option<bool>,
}

#[derive(Debug, Clone)]
pub enum PushEvent {
    /// `registry/repository` being pushed to.
    Repository(String),
    LayerExists(Digest),
    LayerPushed(Digest),
    Manifest {
        tag: String,
        digest: Digest,
        size: u64,
    },
}

impl Images<'_> {
    /// Returns `name@digest` of what was pushed.
    pub fn push(
        &mut self,
        input: &str,
        opts: &PushOptions,
        report: &(dyn Fn(PushEvent) + Send + Sync),
    ) -> Result<String, EngineError> {
        let reference = ImageReference::parse(input)?;
        let record = self.find_image(input)?;
        report(PushEvent::Repository(reference.name()));
        let manifest: serde_json::Value = serde_json::from_slice(&record.manifest).map_err(
            EngineError::corrupt(format!("stored manifest of {input} is not JSON")),
        )?;
        let config_type = manifest["config"]["mediaType"]
            .as_str()
            .unwrap_or("application/vnd.oci.image.config.v1+json")
            .to_string();
        let config = Descriptor::new(&config_type, record.id.clone(), record.config.len() as u64);
        let layers: Vec<(Descriptor, std::path::PathBuf)> = record
            .layers
            .iter()
            .map(|l| {
                (
                    Descriptor::new(&l.media_type, l.blob_digest.clone(), l.blob_size),
                    self.content.path(&l.blob_digest),
                )
            })
            .collect();
        for (_, path) in &layers {
            if !path.is_file() {
                return Err(EngineError::InvalidArgument(format!(
                    "layer blob {} of {input} is missing from the store; pull the image again",
                    path.display()
                )));
            }
        }
        let (runtime, client) = self.registry_client(opts.tls_verify)?;
        let progress = |p: PushProgress| match p.phase {
            PushPhase::AlreadyExists if p.digest != record.id => {
                report(PushEvent::LayerExists(p.digest))
            }
            PushPhase::Pushed if p.digest != record.id => report(PushEvent::LayerPushed(p.digest)),
            _ => {}
        };
        let digest = runtime.block_on(client.push_image(
            &reference,
            &record.manifest,
            &record.manifest_type,
            (&config, &record.config),
            &layers,
            &progress,
        ))?;
        report(PushEvent::Manifest {
            tag: reference.tag().unwrap_or("latest").to_string(),
            digest: digest.clone(),
            size: record.manifest.len() as u64,
        });
        self.db
            .add_repo_digest(&format!("{}@{}", reference.name(), digest), &record.id)?;
        Ok(format!("{}@{}", reference.name(), digest))
    }
}
