//! docker's `--filter key=value` arguments (moby's `filters.Args`): values of one key
//! are alternatives (OR), different keys must all hold (AND), except `label`, where
//! every value must hold. `name`, `id` and `status` values are unanchored regular
//! expressions, as in docker.

use crate::EngineError;
use regex::Regex;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Default, Clone)]
pub struct Filters {
    fields: BTreeMap<String, BTreeSet<String>>,
    /// Compiled once per value; a value that is not a valid expression matches only
    /// exactly (docker skips it).
    regexes: HashMap<String, Option<Regex>>,
}

impl Filters {
    /// `--filter` values as given: `key=value`, the key case-insensitive.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Filters, EngineError> {
        let mut f = Filters::default();
        for a in args {
            let a = a.as_ref();
            if a.is_empty() {
                continue;
            }
            let (k, v) = a.split_once('=').ok_or_else(|| {
                EngineError::InvalidArgument(format!(
                    "bad format of filter (expected name=value): {a:?}"
                ))
            })?;
            f.add(&k.trim().to_lowercase(), v.trim());
        }
        Ok(f)
    }

    pub fn add(&mut self, key: &str, value: &str) {
        self.fields
            .entry(key.to_string())
            .or_default()
            .insert(value.to_string());
        self.regexes
            .entry(value.to_string())
            .or_insert_with(|| Regex::new(value).ok());
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.fields.contains_key(key)
    }

    pub fn get(&self, key: &str) -> impl Iterator<Item = &str> {
        self.fields
            .get(key)
            .into_iter()
            .flat_map(|v| v.iter().map(String::as_str))
    }

    /// An error naming the first key not in `accepted` (docker's wording).
    /// The `until=` of the prune commands (dockerd's rules): at most one.
    pub(crate) fn until(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, EngineError> {
        let untils: Vec<&str> = self.get("until").collect();
        if untils.len() > 1 {
            return Err(EngineError::InvalidArgument(
                "more than one until filter specified".into(),
            ));
        }
        untils
            .first()
            .map(|u| crate::timestamp::parse_timestamp(u, std::time::SystemTime::now()))
            .transpose()
            .map(|t| t.map(chrono::DateTime::<chrono::Utc>::from))
            .map_err(EngineError::InvalidArgument)
    }

    pub fn validate(&self, accepted: &[&str]) -> Result<(), EngineError> {
        match self.fields.keys().find(|k| !accepted.contains(&k.as_str())) {
            Some(k) => Err(EngineError::InvalidArgument(format!(
                "invalid filter '{k}'"
            ))),
            None => Ok(()),
        }
    }

    /// True when `key` is not filtered on, or `source` equals one of its values.
    pub fn exact_match(&self, key: &str, source: &str) -> bool {
        match self.fields.get(key) {
            None => true,
            Some(v) if v.is_empty() => true,
            Some(v) => v.contains(source),
        }
    }

    /// [`exact_match`](Self::exact_match), or one of the values as a regular
    /// expression found in `source`.
    pub fn matches(&self, key: &str, source: &str) -> bool {
        if self.exact_match(key, source) {
            return true;
        }
        self.get(key).any(|v| {
            self.regexes
                .get(v)
                .and_then(Option::as_ref)
                .is_some_and(|r| r.is_match(source))
        })
    }

    /// Every value of `key` (`k` or `k=v`) is among `labels`.
    pub fn match_kv_list(&self, key: &str, labels: &BTreeMap<String, String>) -> bool {
        let Some(values) = self.fields.get(key).filter(|v| !v.is_empty()) else {
            return true;
        };
        if labels.is_empty() {
            return false;
        }
        values.iter().all(|value| {
            let (k, v) = match value.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (value.as_str(), None),
            };
            match labels.get(k) {
                None => false,
                Some(have) => v.is_none_or(|v| v == have),
            }
        })
    }

    /// A boolean filter (`is-task=true`); None when absent. Mixed or non-boolean
    /// values are docker's `invalid filter 'key=[values]'`.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, EngineError> {
        let Some(values) = self.fields.get(key) else {
            return Ok(None);
        };
        let is_false = values.contains("0") || values.contains("false");
        let is_true = values.contains("1") || values.contains("true");
        if is_false == is_true {
            let all: Vec<&str> = values.iter().map(String::as_str).collect();
            return Err(EngineError::InvalidArgument(format!(
                "invalid filter '{key}=[{}]'",
                all.join(" ")
            )));
        }
        Ok(Some(is_true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_follows_docker() {
        let f = Filters::parse(&["Name=web", "label=a=b", "label!=c"]).unwrap();
        assert!(f.contains("name") && f.contains("label") && f.contains("label!"));
        assert_eq!(f.get("label").collect::<Vec<_>>(), ["a=b"]);
        let err = Filters::parse(&["nofield"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("bad format of filter (expected name=value)"),
            "{err}"
        );
        assert_eq!(
            f.validate(&["name", "label"]).unwrap_err().to_string(),
            "invalid filter 'label!'"
        );
    }

    #[test]
    fn regex_and_exact_matches() {
        let f = Filters::parse(&["name=^we", "name=db", "status=(", "id=abc"]).unwrap();
        assert!(f.matches("name", "web"));
        assert!(f.matches("name", "mydb2"), "unanchored");
        assert!(!f.matches("name", "cache"));
        assert!(
            f.matches("status", "("),
            "an invalid expression still matches exactly"
        );
        assert!(!f.matches("status", "(x"));
        assert!(f.matches("other", "anything"), "no filter on the key");
    }

    #[test]
    fn labels_must_all_match() {
        let labels: BTreeMap<String, String> =
            [("a".into(), "1".into()), ("b".into(), "".into())].into();
        let f = Filters::parse(&["label=a=1", "label=b"]).unwrap();
        assert!(f.match_kv_list("label", &labels));
        let f = Filters::parse(&["label=a=1", "label=c"]).unwrap();
        assert!(!f.match_kv_list("label", &labels));
        let f = Filters::parse(&["label=a=2"]).unwrap();
        assert!(!f.match_kv_list("label", &labels));
        assert!(!f.match_kv_list("label", &BTreeMap::new()));
        assert!(Filters::default().match_kv_list("label", &BTreeMap::new()));
    }

    #[test]
    fn booleans() {
        let f = Filters::parse(&["is-task=false"]).unwrap();
        assert_eq!(f.get_bool("is-task").unwrap(), Some(false));
        let f = Filters::parse(&["is-task=true", "is-task=0"]).unwrap();
        assert!(f.get_bool("is-task").is_err());
        assert_eq!(Filters::default().get_bool("is-task").unwrap(), None);
    }
}
