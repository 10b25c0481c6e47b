//! `rename`: a new name for a container, running or not, with dockerd's checks and
//! messages (`daemon/rename.go`). The database's unique constraint settles races
//! between two renames or a rename and a `create --name`.

use crate::names::valid_name;
use crate::{Containers, EngineError};

impl Containers<'_> {
    pub fn rename_container(&mut self, key: &str, new_name: &str) -> Result<(), EngineError> {
        if key.is_empty() || new_name.is_empty() {
            return Err(EngineError::InvalidArgument(
                "Neither old nor new names may be empty".into(),
            ));
        }
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        let c = self.find_container(key)?;
        if c.name == new_name {
            return Err(EngineError::InvalidArgument(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        if !valid_name(new_name) {
            return Err(EngineError::InvalidArgument(format!(
                "Error when allocating new name: Invalid container name (/{new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        match self.db.rename_container(&c.id, new_name) {
            Ok(()) => {
                // The copy `system check --repair` reads; the database is the authority,
                // so a failure here only means a repair would bring back the old name.
                let _ = self.save_record_file(&c.id);
                Ok(())
            }
            Err(e @ coracle_state::StateError::NameInUse { .. }) => Err(EngineError::Conflict(
                format!("Error when allocating new name: {e}"),
            )),
            Err(e) => Err(e.into()),
        }
    }
}
