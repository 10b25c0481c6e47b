//! `image inspect` in docker's JSON shape, built from the stored config.

use crate::lookup::familiar_key;
use crate::{Engine, EngineError};
use coracle_state::ImageRecord;
use serde_json::{json, Map, Value};

impl Engine {
    pub fn inspect_image(&self, input: &str) -> Result<Value, EngineError> {
        let record = self.find_image(input)?;
        Ok(image_json(&record, &self.paths.layers()))
    }
}

fn image_json(r: &ImageRecord, layers_dir: &std::path::Path) -> Value {
    let config: Value = serde_json::from_slice(&r.config).unwrap_or(Value::Null);
    let field = |k: &str| config.get(k).cloned().unwrap_or(Value::Null);
    let str_field = |k: &str| {
        config
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let diff_ids: Vec<String> = r.layers.iter().map(|l| l.diff_id.to_string()).collect();
    let layer_dirs: Vec<String> = r
        .layers
        .iter()
        .rev()
        .map(|l| layers_dir.join(l.chain_id.hex()).display().to_string())
        .collect();
    let mut out = Map::new();
    out.insert("Id".into(), json!(r.id.to_string()));
    out.insert(
        "RepoTags".into(),
        json!(r.tags.iter().map(|t| familiar_key(t)).collect::<Vec<_>>()),
    );
    out.insert(
        "RepoDigests".into(),
        json!(r
            .repo_digests
            .iter()
            .map(|t| familiar_key(t))
            .collect::<Vec<_>>()),
    );
    out.insert("Parent".into(), json!(""));
    out.insert("Comment".into(), json!(str_field("comment")));
    out.insert(
        "Created".into(),
        json!(r
            .created
            .clone()
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())),
    );
    out.insert("DockerVersion".into(), json!(str_field("docker_version")));
    out.insert("Author".into(), json!(str_field("author")));
    out.insert("Config".into(), field("config"));
    out.insert("Architecture".into(), json!(r.architecture));
    if let Some(v) = &r.variant {
        out.insert("Variant".into(), json!(v));
    }
    out.insert("Os".into(), json!(r.os));
    out.insert("Size".into(), json!(r.size()));
    out.insert(
        "GraphDriver".into(),
        json!({"Name": "overlay", "Data": {"LowerDir": layer_dirs.join(":")}}),
    );
    out.insert(
        "RootFS".into(),
        json!({"Type": "layers", "Layers": diff_ids}),
    );
    out.insert(
        "Metadata".into(),
        json!({"LastTagTime": chrono::DateTime::from_timestamp(r.added_at, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()}),
    );
    Value::Object(out)
}
