//! `image unpack IMAGE DIR`: the image's layers applied in order onto one directory
//! (whiteouts delete), the "download and extract without Docker" job.

use crate::{EngineError, Images};
use std::path::Path;

impl Images<'_> {
    pub fn unpack_image(&self, input: &str, dir: &Path) -> Result<(), EngineError> {
        let record = self.find_image(input)?;
        match std::fs::read_dir(dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(EngineError::InvalidArgument(format!(
                        "{} is not empty: unpack writes a whole root filesystem, give it an empty or new directory",
                        dir.display()
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(EngineError::io("create", dir))?;
            }
            Err(e) => return Err(EngineError::io("read", dir)(e)),
        }
        let mut blobs = Vec::with_capacity(record.layers.len());
        for layer in &record.layers {
            blobs.push(self.content.open_blob(&layer.blob_digest)?);
        }
        coracle_rootfs::flatten_into(blobs, dir, !rustix::process::geteuid().is_root())?;
        Ok(())
    }
}

/// Bytes of file content under `dir`, not following symlinks; for layers found on
/// disk without a database record (left by a pull killed after the rename).
pub(crate) fn tree_size(dir: &Path) -> Result<u64, EngineError> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(EngineError::io("read", &d))? {
            let entry = entry.map_err(EngineError::io("read", &d))?;
            let meta = entry
                .metadata()
                .map_err(EngineError::io("stat", entry.path()))?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    Ok(total)
}
