//! `network ls --filter`: moby's network filter (`daemon/network/filter.go`) over
//! `dangling`, `driver`, `id`, `label`, `label!`, `name`, `scope` and `type`.

use crate::filters::Filters;
use crate::networks::NetworkSummary;
use crate::{EngineError, Networks};

/// docker's built-in networks (`IsPredefined`).
fn predefined(name: &str) -> bool {
    matches!(name, "bridge" | "host" | "none")
}

/// `dangling=`: at most one value, a boolean.
fn dangling(f: &Filters) -> Result<Option<bool>, EngineError> {
    let values: Vec<&str> = f.get("dangling").collect();
    match values.as_slice() {
        [] => Ok(None),
        ["1" | "true"] => Ok(Some(true)),
        ["0" | "false"] => Ok(Some(false)),
        [_] => Err(EngineError::InvalidArgument(
            "invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")".into(),
        )),
        _ => Err(EngineError::InvalidArgument(
            "got more than one value for filter key \"dangling\"".into(),
        )),
    }
}

/// Every filter but `dangling` (which needs the network's endpoints).
fn keeps(f: &Filters, n: &NetworkSummary) -> bool {
    f.exact_match("driver", &n.driver)
        && f.matches("name", &n.name)
        && f.matches("id", &n.id)
        && f.match_kv_list("label", &n.labels)
        && !(f.contains("label!") && f.match_kv_list("label!", &n.labels))
        && f.exact_match("scope", &n.scope)
        // moby's matchesType decides on the first value.
        && f.get("type").next().is_none_or(|t| (t == "builtin") == predefined(&n.name))
}

impl Networks<'_> {
    /// The networks `network ls` shows for `filters`, in the store's order.
    pub fn filter_networks(&mut self, f: &Filters) -> Result<Vec<NetworkSummary>, EngineError> {
        f.validate(&[
            "dangling", "driver", "id", "label", "label!", "name", "scope", "type",
        ])?;
        let dangling = dangling(f)?;
        if let Some(t) = f.get("type").find(|t| *t != "custom" && *t != "builtin") {
            return Err(EngineError::InvalidArgument(format!(
                "invalid filter: 'type'='{t}'"
            )));
        }
        let mut out = Vec::new();
        for n in self.network_list()? {
            if !keeps(f, &n) {
                continue;
            }
            if let Some(dangling) = dangling {
                let used = self.network_inspect(&n.id)?["Containers"]
                    .as_object()
                    .is_some_and(|c| !c.is_empty());
                let is_dangling = !predefined(&n.name) && !used;
                if is_dangling != dangling {
                    continue;
                }
            }
            out.push(n);
        }
        Ok(out)
    }
}
