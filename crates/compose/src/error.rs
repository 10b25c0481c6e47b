use coracle_core::ErrorKind;

/// Errors of loading a compose project; messages are compose-go's, so scripts and users
/// see what docker compose v2 says.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// A `$` expression that is not a valid template; compose-go quotes the whole string.
    #[error("Invalid template: {template:?}")]
    InvalidTemplate { template: String },
    /// `${VAR:?msg}` or `${VAR?msg}` with the variable missing (or empty, for `:?`).
    #[error("required variable {variable} is missing a value{}", reason_suffix(.reason))]
    MissingRequired { variable: String, reason: String },
    /// An interpolation error in a compose tree, with where in the tree it happened.
    #[error("error while interpolating {path}: {source}")]
    Interpolate {
        path: String,
        source: Box<ComposeError>,
    },
    /// A `.env` file that cannot be parsed.
    #[error("line {line}: {message}")]
    Dotenv { line: usize, message: String },
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

impl ComposeError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            // Every loading error is a fault in the user's files or environment.
            ComposeError::InvalidTemplate { .. }
            | ComposeError::MissingRequired { .. }
            | ComposeError::Interpolate { .. }
            | ComposeError::Dotenv { .. } => ErrorKind::InvalidArgument,
        }
    }
}
