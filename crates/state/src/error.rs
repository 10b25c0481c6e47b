use coracle_core::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database {path}: {op}: {source}")]
    Sqlite {
        path: String,
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state database {path}: create: {source}")]
    Create {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state database {path} has schema version {found}, newer than this coracle understands ({supported}); upgrade coracle")]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("network with name {name} already exists")]
    NetworkNameInUse { name: String },
    /// The database is missing, empty or unreadable while the store holds containers
    /// or images: a fresh database would silently orphan them.
    #[error("state database {path} is damaged ({why}) while the store holds containers or images; nothing was changed. Run `coracle system check` to see what the store holds, then `coracle system check --repair` to rebuild the database from the store's files (the damaged file is kept), or restore {path} from a backup")]
    Damaged { path: String, why: String },
    /// SQLite could not write (full disk or I/O error) while the store has no space.
    #[error("state database {path}: {op}: no space left on device: the store {store} is full; free space with `coracle rm`, `coracle rmi`, `coracle volume rm` or `coracle system prune`")]
    NoSpace {
        path: String,
        store: String,
        op: &'static str,
    },
    #[error("invalid value in state database for {what}: {value:?}")]
    Corrupt { what: &'static str, value: String },
}

impl StateError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StateError::Sqlite { source, .. } => match source.sqlite_error_code() {
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                    ErrorKind::Unavailable
                }
                Some(rusqlite::ErrorCode::ConstraintViolation) => ErrorKind::Conflict,
                _ => ErrorKind::Internal,
            },
            StateError::Create { .. } => ErrorKind::Internal,
            StateError::NameInUse { .. } => ErrorKind::Conflict,
            StateError::NetworkNameInUse { .. } => ErrorKind::Conflict,
            StateError::TooNew { .. } | StateError::Corrupt { .. } => ErrorKind::Internal,
            StateError::Damaged { .. } => ErrorKind::Internal,
            StateError::NoSpace { .. } => ErrorKind::Unavailable,
        }
    }
}
