//! `image inspect` in docker's JSON shape, built from the stored config.

use crate::images::lookup::familiar_key;
use crate::{EngineError, Images};
use coracle_state::ImageRecord;
use serde_json::{json, Map, Value};

impl Images<'_> {
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
    out.insert("Comment".into(), json!(image_comment(&config)));
    out.insert(
        "Created".into(),
        json!(r
            .created
            .clone()
            .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())),
    );
    out.insert("DockerVersion".into(), json!(str_field("docker_version")));
    out.insert("Author".into(), json!(str_field("author")));
    out.insert("Config".into(), docker_config(field("config")));
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

/// docker's `Comment`: the config's own `comment` (set by `commit -m`), or else the
/// comment of the newest history entry (`buildkit.dockerfile.v0` for BuildKit builds).
fn image_comment(config: &Value) -> String {
    if let Some(c) = config
        .get("comment")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
    {
        return c.to_string();
    }
    config
        .get("history")
        .and_then(Value::as_array)
        .and_then(|h| h.last())
        .and_then(|e| e.get("comment"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The image's run config with every field docker's `container.Config` always
/// shows: empty strings, `false`, and `null` for absent lists and maps (which a
/// `--format` then prints as `[]` and `map[]`, as docker's typed fields print).
fn docker_config(config: Value) -> Value {
    let mut c = match config {
        Value::Object(o) => o,
        _ => Map::new(),
    };
    let defaults = [
        ("Hostname", json!("")),
        ("Domainname", json!("")),
        ("User", json!("")),
        // omitempty in docker's JSON, but `{{.Config.ExposedPorts}}` is `map[]` there
        ("ExposedPorts", Value::Null),
        ("AttachStdin", json!(false)),
        ("AttachStdout", json!(false)),
        ("AttachStderr", json!(false)),
        ("Tty", json!(false)),
        ("OpenStdin", json!(false)),
        ("StdinOnce", json!(false)),
        ("Env", Value::Null),
        ("Cmd", Value::Null),
        ("Image", json!("")),
        ("Volumes", Value::Null),
        ("WorkingDir", json!("")),
        ("Entrypoint", Value::Null),
        ("OnBuild", Value::Null),
        ("Labels", Value::Null),
    ];
    for (k, v) in defaults {
        c.entry(k).or_insert(v);
    }
    Value::Object(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_is_the_configs_or_the_newest_historys() {
        let built = json!({"history": [{"comment": "first"}, {"created_by": "x",
            "comment": "buildkit.dockerfile.v0"}]});
        assert_eq!(image_comment(&built), "buildkit.dockerfile.v0");
        let committed = json!({"comment": "by hand", "history": [{"comment": "h"}]});
        assert_eq!(image_comment(&committed), "by hand");
        assert_eq!(image_comment(&json!({})), "");
    }

    #[test]
    fn config_has_every_field_docker_shows() {
        let c = docker_config(json!({"Cmd": ["sh"], "Env": ["A=1"]}));
        assert_eq!(c["Cmd"], json!(["sh"]));
        assert_eq!(c["Entrypoint"], Value::Null);
        assert_eq!(c["Labels"], Value::Null);
        assert_eq!(c["User"], json!(""));
        assert_eq!(c["Tty"], json!(false));
        assert_eq!(docker_config(Value::Null)["WorkingDir"], json!(""));
    }
}
