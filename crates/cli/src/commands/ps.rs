//! `ps` (also `container ls|ps|list`): docker's columns, flags, filters and
//! `--format` fields. The engine lists and filters; this file presents.

use crate::commands::UsageError;
use crate::format::{human_size, table, Template};
use crate::Context;
use chrono::{DateTime, Utc};
use clap::Args;
use coracle_core::ImageReference;
use coracle_engine::{ContainerSummary, Filters, ListOptions};
use serde_json::{json, Map, Value};

#[derive(Args, Clone, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Filter output based on conditions provided (name=, id=, label=, status=,
    /// ancestor=, exited=, health=, before=, since=, volume=, network=)
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format output: 'table', 'table TEMPLATE', 'json', or a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(
        short = 'n',
        long = "last",
        default_value_t = -1,
        allow_negative_numbers = true
    )]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
}

/// What `--format` asks for, after docker's rules (`-q` wins over any format).
enum Output {
    Quiet,
    DefaultTable,
    Json,
    Template { table: bool, text: String },
}

fn output_for(args: &PsArgs) -> Output {
    if args.quiet {
        if args.format.as_deref().is_some_and(|f| !f.is_empty()) {
            eprintln!(
                "WARNING: Ignoring custom format, because both --format and --quiet are set."
            );
        }
        return Output::Quiet;
    }
    let Some(f) = args
        .format
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
    else {
        return Output::DefaultTable;
    };
    if f == "json" {
        return Output::Json;
    }
    let f = f.replace("\\t", "\t").replace("\\n", "\n");
    match f.strip_prefix("table") {
        Some(rest) if rest.trim().is_empty() => Output::DefaultTable,
        Some(rest) => Output::Template {
            table: true,
            text: rest.trim().to_string(),
        },
        None => Output::Template {
            table: false,
            text: f,
        },
    }
}

/// Each `--filter` must be `key=value` (docker rejects it as a flag error).
pub(crate) fn parse_filters(values: &[String], flag: &str) -> anyhow::Result<Filters> {
    if let Some(bad) = values.iter().find(|v| !v.is_empty() && !v.contains('=')) {
        return Err(UsageError(format!(
            "invalid argument \"{bad}\" for \"{flag}\" flag: bad format of filter (expected name=value)"
        ))
        .into());
    }
    Ok(Filters::parse(values)?)
}

pub fn exec(ctx: &Context, args: PsArgs) -> anyhow::Result<i32> {
    let filters = parse_filters(&args.filter, "-f, --filter")?;
    let output = output_for(&args);
    let (template, label_keys) = match &output {
        Output::Template { text, .. } => {
            let (text, keys) = label_fields(text);
            let t = Template::parse(&text)
                .map_err(|e| anyhow::anyhow!("failed to parse template: {e}"))?;
            (Some(t), keys)
        }
        _ => (None, Vec::new()),
    };
    let size = args.size
        || match &output {
            Output::Template { text, .. } => uses_size(text),
            Output::DefaultTable | Output::Json | Output::Quiet => false,
        };
    let mut engine = ctx.engine()?;
    let list = engine.containers().list_containers(&ListOptions {
        all: args.all,
        limit: if args.latest && args.last == -1 {
            1
        } else {
            args.last
        },
        size,
        filters,
    })?;
    let trunc = !args.no_trunc;
    let now = Utc::now();
    let mut out = String::new();
    match output {
        Output::Quiet => {
            for c in &list {
                out.push_str(&truncate_id(&c.id, trunc));
                out.push('\n');
            }
        }
        Output::DefaultTable => out = default_table(&list, trunc, now, size),
        Output::Json => {
            for c in &list {
                out.push_str(&Value::Object(Row::new(c, trunc, now).into_map()).to_string());
                out.push('\n');
            }
        }
        Output::Template {
            table: is_table,
            text,
        } => {
            let template = template.expect("parsed above");
            let rows = Templated {
                template: &template,
                label_keys: &label_keys,
                trunc,
                now,
            };
            out = rows.render(&list, is_table, &text)?;
        }
    }
    print!("{out}");
    Ok(0)
}

/// docker's default columns (SIZE with `-s`).
fn default_table(list: &[ContainerSummary], trunc: bool, now: DateTime<Utc>, size: bool) -> String {
    let mut header: Vec<String> = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if size {
        header.push("SIZE".into());
    }
    let mut rows = vec![header];
    for c in list {
        let r = Row::new(c, trunc, now);
        let mut cells = vec![
            r.id,
            r.image,
            r.command,
            r.running_for,
            r.status,
            r.ports,
            r.names,
        ];
        if size {
            cells.push(r.size);
        }
        rows.push(cells);
    }
    table(&rows)
}

/// `--format` with a Go template: one line a container, a header and aligned columns
/// with `table`.
struct Templated<'a> {
    template: &'a Template,
    /// `.Label "KEY"` keys, passed as extra fields (see `label_fields`).
    label_keys: &'a [String],
    trunc: bool,
    now: DateTime<Utc>,
}

impl Templated<'_> {
    fn render(
        &self,
        list: &[ContainerSummary],
        is_table: bool,
        text: &str,
    ) -> anyhow::Result<String> {
        let mut lines = Vec::new();
        if is_table {
            let header = Template::parse_header(&with_labels(text, |_| go_quote("LABEL")))?;
            lines.push(header.render(&header_value())?);
        }
        for c in list {
            let mut row = Row::new(c, self.trunc, self.now).into_map();
            for (i, k) in self.label_keys.iter().enumerate() {
                let v = c.labels.get(k).cloned().unwrap_or_default();
                row.insert(format!("{LABEL_FIELD}{i}"), Value::String(v));
            }
            lines.push(self.template.render(&Value::Object(row))?);
        }
        if is_table {
            let rows: Vec<Vec<String>> = lines
                .iter()
                .map(|l| l.split('\t').map(str::to_string).collect())
                .collect();
            return Ok(table(&rows));
        }
        Ok(lines.iter().map(|l| format!("{l}\n")).collect())
    }
}

/// docker asks for sizes when the template shows them (`.Size`, or `json .`, which
/// marshals every field).
fn uses_size(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices(".Size").any(|(i, m)| {
        bytes
            .get(i + m.len())
            .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'_')
    }) || text.split("{{").any(|a| {
        a.trim_start_matches('-').trim_start().starts_with("json .") && {
            let rest = a.trim_start_matches('-').trim_start()["json .".len()..].trim_start();
            rest.starts_with("}}") || rest.starts_with('-') || rest.starts_with('|')
        }
    })
}

/// Row fields that stand for `.Label "key"` lookups.
pub(crate) const LABEL_FIELD: &str = "Label__";

/// The template engine has no methods with arguments: each `.Label "key"` becomes a
/// field of its own (`.Label__0`, ...), filled in for every row. Returns the new
/// text and the keys, in field order.
pub(crate) fn label_fields(text: &str) -> (String, Vec<String>) {
    let mut keys: Vec<String> = Vec::new();
    let text = with_labels(text, |k| {
        let i = keys.iter().position(|x| x == k).unwrap_or_else(|| {
            keys.push(k.to_string());
            keys.len() - 1
        });
        format!(".{LABEL_FIELD}{i}")
    });
    (text, keys)
}

/// Every `.Label "key"` replaced by what `replace` makes of the key.
pub(crate) fn with_labels(text: &str, mut replace: impl FnMut(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(".Label") {
        let after = &rest[i + ".Label".len()..];
        let trimmed = after.trim_start();
        let spaced = trimmed.len() < after.len();
        match (spaced, go_string_literal(trimmed)) {
            (true, Some((key, len))) => {
                out.push_str(&rest[..i]);
                out.push_str(&replace(&key));
                rest = &trimmed[len..];
            }
            _ => {
                out.push_str(&rest[..i + ".Label".len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A leading Go string literal: its value and its length in `s`.
fn go_string_literal(s: &str) -> Option<(String, usize)> {
    let mut chars = s.char_indices();
    match chars.next()? {
        (_, '`') => {
            let end = s[1..].find('`')? + 1;
            Some((s[1..end].to_string(), end + 1))
        }
        (_, '"') => {
            let mut value = String::new();
            let mut escaped = false;
            for (i, c) in chars {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => return Some((value, i + 1)),
                    (true, 'n') => {
                        value.push('\n');
                        escaped = false;
                    }
                    (true, 't') => {
                        value.push('\t');
                        escaped = false;
                    }
                    (_, c) => {
                        value.push(c);
                        escaped = false;
                    }
                }
            }
            None
        }
        _ => None,
    }
}

/// Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// docker's `formatter.Ellipsis` for text of single-width characters.
pub(crate) fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// docker's `TruncateID`: the hex after any `algo:`, 12 digits unless `--no-trunc`.
pub(crate) fn truncate_id(id: &str, trunc: bool) -> String {
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    if trunc {
        hex.chars().take(12).collect()
    } else {
        id.to_string()
    }
}

/// The IMAGE column: the image as given (familiar, without a digest) or its short
/// id.
fn image_column(c: &ContainerSummary, trunc: bool) -> String {
    if c.image.is_empty() {
        return "<no image>".into();
    }
    if !trunc {
        return c.image.clone();
    }
    if truncate_id(&c.image_id, true) == truncate_id(&c.image, true) {
        return truncate_id(&c.image, true);
    }
    match ImageReference::parse_no_default_tag(&c.image) {
        Ok(r) => match r.tag() {
            Some(t) => format!("{}:{t}", r.familiar_name()),
            None => r.familiar_name(),
        },
        Err(_) => c.image.clone(),
    }
}

/// One container's fields as docker's `ContainerContext` gives them to templates.
struct Row {
    id: String,
    image: String,
    command: String,
    created_at: String,
    running_for: String,
    ports: String,
    state: String,
    status: String,
    size: String,
    names: String,
    labels: String,
    mounts: String,
    local_volumes: String,
    networks: String,
    health_status: String,
}

impl Row {
    fn new(c: &ContainerSummary, trunc: bool, now: DateTime<Utc>) -> Row {
        let command = if trunc {
            ellipsis(&c.command, 20)
        } else {
            c.command.clone()
        };
        let created = DateTime::from_timestamp(c.created, 0).unwrap_or_default();
        let size_rw = c.size_rw.unwrap_or(0);
        let size = match c.size_root_fs.unwrap_or(0) {
            0 => human_size(size_rw),
            root => format!("{} (virtual {})", human_size(size_rw), human_size(root)),
        };
        let mut labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        labels.sort();
        let mounts: Vec<String> = c
            .mounts
            .iter()
            .map(|m| {
                let name = if m.name.is_empty() {
                    &m.source
                } else {
                    &m.name
                };
                if trunc {
                    ellipsis(name, 15)
                } else {
                    name.clone()
                }
            })
            .collect();
        Row {
            id: truncate_id(&c.id, trunc),
            image: image_column(c, trunc),
            command: go_quote(&command),
            created_at: created.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string(),
            running_for: format!(
                "{} ago",
                coracle_engine::human_duration(now.signed_duration_since(created))
            ),
            ports: crate::commands::port::displayable_ports(&c.ports),
            state: c.state.to_string(),
            status: c.status.clone(),
            size,
            names: c.name.clone(),
            labels: labels.join(","),
            mounts: mounts.join(","),
            local_volumes: c
                .mounts
                .iter()
                .filter(|m| m.driver == "local")
                .count()
                .to_string(),
            networks: c.networks.join(","),
            health_status: match c.health.as_str() {
                "none" => String::new(),
                h => h.to_string(),
            },
        }
    }

    fn into_map(self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("Command".into(), json!(self.command));
        m.insert("CreatedAt".into(), json!(self.created_at));
        m.insert("HealthStatus".into(), json!(self.health_status));
        m.insert("ID".into(), json!(self.id));
        m.insert("IPAddresses".into(), json!([]));
        m.insert("Image".into(), json!(self.image));
        m.insert("Labels".into(), json!(self.labels));
        m.insert("LocalVolumes".into(), json!(self.local_volumes));
        m.insert("Mounts".into(), json!(self.mounts));
        m.insert("Names".into(), json!(self.names));
        m.insert("Networks".into(), json!(self.networks));
        m.insert("Platform".into(), Value::Null);
        m.insert("Ports".into(), json!(self.ports));
        m.insert("RunningFor".into(), json!(self.running_for));
        m.insert("Size".into(), json!(self.size));
        m.insert("State".into(), json!(self.state));
        m.insert("Status".into(), json!(self.status));
        m
    }
}

/// docker's header names for the `ps` fields.
fn header_value() -> Value {
    json!({
        "ID": "CONTAINER ID",
        "Names": "NAMES",
        "Image": "IMAGE",
        "Command": "COMMAND",
        "CreatedAt": "CREATED AT",
        "RunningFor": "CREATED",
        "Ports": "PORTS",
        "State": "STATE",
        "Status": "STATUS",
        "Size": "SIZE",
        "Labels": "LABELS",
        "Mounts": "MOUNTS",
        "LocalVolumes": "LOCAL VOLUMES",
        "Networks": "NETWORKS",
        "Platform": "PLATFORM",
        "HealthStatus": "HEALTH STATUS",
        "IPAddresses": "IP ADDRESSES",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn summary() -> ContainerSummary {
        ContainerSummary {
            id: "0123456789abcdef".repeat(4),
            name: "web".into(),
            image: "docker.io/library/busybox:1.36".into(),
            image_id: format!("sha256:{}", "f".repeat(64)),
            command: "sh -c 'echo hello world'".into(),
            created: 1_714_564_680,
            state: coracle_engine::ContainerState::Running,
            status: "Up 2 minutes".into(),
            health: "none".into(),
            exit_code: 0,
            labels: BTreeMap::from([
                ("b".to_string(), "2".to_string()),
                ("a".to_string(), "1".to_string()),
            ]),
            mounts: vec![],
            networks: vec!["none".into()],
            ports: vec![],
            size_rw: None,
            size_root_fs: None,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn columns_as_docker() {
        let r = Row::new(&summary(), true, now());
        assert_eq!(r.id, "0123456789ab");
        assert_eq!(r.image, "busybox:1.36");
        assert_eq!(r.command, "\"sh -c 'echo hello w…\"");
        assert_eq!(r.running_for, "2 minutes ago");
        assert_eq!(r.created_at, "2024-05-01 11:58:00 +0000 UTC");
        assert_eq!(r.labels, "a=1,b=2");
        assert_eq!(r.size, "0B");
        let r = Row::new(&summary(), false, now());
        assert_eq!(r.command, "\"sh -c 'echo hello world'\"");
        assert_eq!(r.image, "docker.io/library/busybox:1.36");
        let mut s = summary();
        s.image = s.image_id.clone();
        assert_eq!(Row::new(&s, true, now()).image, "ffffffffffff");
        s.size_rw = Some(12);
        s.size_root_fs = Some(1_980_012);
        assert_eq!(Row::new(&s, true, now()).size, "12B (virtual 1.98MB)");
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
        assert_eq!(go_quote("x\u{1}"), "\"x\\x01\"");
        assert_eq!(go_quote("…"), "\"…\"");
    }

    #[test]
    fn label_lookups_become_fields() {
        let (t, keys) =
            label_fields(r#"{{.ID}} {{.Label "com.x"}} {{.Labels}} {{.Label `com.x`}}"#);
        assert_eq!(t, "{{.ID}} {{.Label__0}} {{.Labels}} {{.Label__0}}");
        assert_eq!(keys, ["com.x"]);
        let header = with_labels(r#"{{.Label "a"}}"#, |_| go_quote("LABEL"));
        assert_eq!(header, r#"{{"LABEL"}}"#);
    }

    #[test]
    fn size_is_fetched_when_the_template_shows_it() {
        assert!(uses_size("{{.ID}}\t{{.Size}}"));
        assert!(uses_size("{{json .}}"));
        assert!(!uses_size("{{.SizeX}}{{json .Labels}}"));
        assert!(!uses_size("{{.Names}}"));
    }

    #[test]
    fn format_choice_follows_docker() {
        let args = |format: Option<&str>, quiet: bool| PsArgs {
            all: false,
            filter: vec![],
            format: format.map(str::to_string),
            last: -1,
            latest: false,
            no_trunc: false,
            quiet,
            size: false,
        };
        assert!(matches!(
            output_for(&args(None, false)),
            Output::DefaultTable
        ));
        assert!(matches!(
            output_for(&args(Some("table"), false)),
            Output::DefaultTable
        ));
        assert!(matches!(
            output_for(&args(Some("json"), false)),
            Output::Json
        ));
        assert!(matches!(
            output_for(&args(Some("{{.ID}}"), true)),
            Output::Quiet
        ));
        match output_for(&args(Some("table {{.ID}}\\t{{.Names}}"), false)) {
            Output::Template { table, text } => {
                assert!(table);
                assert_eq!(text, "{{.ID}}\t{{.Names}}");
            }
            _ => panic!("a table template"),
        }
    }
}
