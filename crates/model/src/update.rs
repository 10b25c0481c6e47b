//! `coracle update`'s flags as typed values, checked as docker's daemon checks an
//! update (the same checks as `run`'s, less the create-only ones).

use super::{OptionsError, ResourceOptions, RestartPolicy};

/// What `update` changes. As in docker's API, a zero value means "leave it": a
/// resource that is None or 0 keeps the container's current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateOptions {
    /// The flags given, parsed with `run`'s parsers; `pids_limit` is
    /// `Some(-1)` for unlimited ([`super::parse_pids_limit_update`]).
    pub resources: ResourceOptions,
    /// `--restart`.
    pub restart: Option<RestartPolicy>,
}

impl UpdateOptions {
    /// docker's `verifyContainerSettings(..., update=true)` on the request.
    pub fn validate(&self) -> Result<(), OptionsError> {
        self.resources.validate(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_may_set_swap_alone_but_not_below_memory() {
        let mut u = UpdateOptions::default();
        u.resources.memory_swap = Some(600 << 20);
        u.validate().unwrap();
        u.resources.memory = Some(800 << 20);
        assert_eq!(
            u.validate().unwrap_err().to_string(),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        u.resources.memory = Some(2 << 20);
        assert_eq!(
            u.validate().unwrap_err().to_string(),
            "Minimum memory limit allowed is 6MB"
        );
        // run still refuses swap without memory.
        let mut r = super::super::ContainerSpec::new();
        r.resources.memory_swap = Some(600 << 20);
        assert!(r.validate().is_err());
    }
}
