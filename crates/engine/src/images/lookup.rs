//! Turning what a user typed (`alpine`, `alpine:3`, `repo@sha256:...`, an id or id
//! prefix) into an image record, as docker does: a name first, then an id.

use crate::{Engine, EngineError};
use coracle_core::{Digest, ImageReference};
use coracle_state::ImageRecord;

impl Engine {
    pub(crate) fn find_image(&self, input: &str) -> Result<ImageRecord, EngineError> {
        let id = self.find_image_id(input)?;
        self.db
            .image(&id)?
            .ok_or_else(|| EngineError::NoSuchImage(input.to_string()))
    }

    pub(crate) fn find_image_id(&self, input: &str) -> Result<Digest, EngineError> {
        if let Ok(reference) = ImageReference::parse(input) {
            if let Some(digest) = reference.digest() {
                let key = format!("{}@{}", reference.name(), digest);
                if let Some(id) = self.db.image_by_repo_digest(&key)? {
                    return Ok(id);
                }
                // A pull by digest of a single-platform manifest records that digest;
                // an image id given as name@digest is not a thing, so stop here.
                return Err(EngineError::NoSuchImage(input.to_string()));
            }
            if let Some(name) = reference.tagged_name() {
                if let Some(id) = self.db.image_by_tag(&name)? {
                    return Ok(id);
                }
            }
        }
        let hex = input.strip_prefix("sha256:").unwrap_or(input);
        let is_hex = !hex.is_empty()
            && hex.len() <= 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if is_hex {
            let matches = self.db.images_by_id_prefix(hex)?;
            match matches.len() {
                1 => return Ok(matches.into_iter().next().expect("one match")),
                0 => {}
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "image id prefix {input:?} is ambiguous: it matches {} images; give more digits",
                        matches.len()
                    )))
                }
            }
        }
        let shown = match ImageReference::parse(input) {
            Ok(r) if !is_hex => familiar(&r),
            _ => input.to_string(),
        };
        Err(EngineError::NoSuchImage(shown))
    }
}

/// `alpine:latest`, `user/app:v1`, `localhost:5000/x:y`, `alpine@sha256:...`.
pub fn familiar(reference: &ImageReference) -> String {
    let mut s = reference.familiar_name();
    if let Some(t) = reference.tag() {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = reference.digest() {
        s.push('@');
        s.push_str(&d.to_string());
    }
    s
}

/// Familiar form of a stored `registry/repo:tag` or `registry/repo@digest` key.
pub fn familiar_key(key: &str) -> String {
    match ImageReference::parse(key) {
        Ok(r) => familiar(&r),
        Err(_) => key.to_string(),
    }
}
