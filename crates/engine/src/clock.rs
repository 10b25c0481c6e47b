//! The engine's timestamps, in docker's form.

/// Now, RFC 3339 with nanoseconds (docker's `Created`, `StartedAt`, `FinishedAt`).
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
