//! Output formatting shared by commands: docker's human sizes and durations, tables,
//! and `--format` Go templates.

use anyhow::{anyhow, Context as _};
use serde_json::Value;

/// docker/go-units HumanSizeWithPrecision(size, 3): decimal units, 3 significant digits.
pub fn human_size(size: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = size as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", go_g3(value), UNITS[unit])
}

/// Go's `%.3g` for 0 <= v < 1000.
fn go_g3(v: f64) -> String {
    let digits_before = if v < 1.0 {
        1
    } else {
        (v.log10().floor() as i32) + 1
    };
    let decimals = (3 - digits_before).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// docker/go-units HumanDuration.
pub fn human_duration(d: std::time::Duration) -> String {
    let seconds = d.as_secs_f64();
    let (secs, minutes) = (seconds as i64, (seconds / 60.0) as i64);
    let hours = (seconds / 3600.0 + 0.5) as i64;
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", (seconds / 3600.0) as i64 / 24 / 365)
    }
}

/// "3 weeks ago" for an RFC 3339 timestamp; "N/A" when absent or unparsable.
pub fn ago(rfc3339: Option<&str>) -> String {
    let Some(t) = rfc3339.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()) else {
        return "N/A".into();
    };
    let elapsed = chrono::Utc::now().signed_duration_since(t);
    match elapsed.to_std() {
        Ok(d) => format!("{} ago", human_duration(d)),
        Err(_) => "Less than a second ago".into(),
    }
}

/// Left-aligned columns separated by at least three spaces, like docker's tabwriter.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 3));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A compiled `--format` value: `json`, `table TEMPLATE`, or a Go template.
pub enum Format {
    Json,
    Template { table: bool, template: String },
}

impl Format {
    pub fn parse(spec: &str) -> Format {
        if spec == "json" {
            return Format::Json;
        }
        // The shell leaves `\t` and `\n` as two characters; docker turns them into
        // real tabs and newlines.
        let unescaped = spec.replace("\\t", "\t").replace("\\n", "\n");
        match unescaped.strip_prefix("table") {
            Some(rest) => Format::Template {
                table: true,
                template: rest.trim_start().to_string(),
            },
            None => Format::Template {
                table: false,
                template: unescaped,
            },
        }
    }

    /// Render one value per line.
    pub fn render(&self, value: &Value) -> anyhow::Result<String> {
        match self {
            Format::Json => Ok(serde_json::to_string(value)?),
            Format::Template { template, .. } => render_template(template, value),
        }
    }

    /// Render a list; for `table` templates, a header from the field names and
    /// aligned columns.
    pub fn render_all(&self, values: &[Value]) -> anyhow::Result<String> {
        let mut lines: Vec<String> = values
            .iter()
            .map(|v| self.render(v))
            .collect::<Result<_, _>>()?;
        if let Format::Template {
            table: true,
            template,
        } = self
        {
            lines.insert(0, header_for(template));
            let rows: Vec<Vec<String>> = lines
                .iter()
                .map(|l| l.split('\t').map(str::to_string).collect())
                .collect();
            return Ok(table(&rows));
        }
        let mut out = lines.join("\n");
        if !out.is_empty() {
            out.push('\n');
        }
        Ok(out)
    }
}

/// `{{.Repository}}\t{{.Tag}}` -> `REPOSITORY\tTAG`, docker's header convention.
fn header_for(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        let inner = rest[start + 2..start + end].trim();
        let field = inner.rsplit('.').next().unwrap_or(inner);
        out.push_str(&header_name(field));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

fn header_name(field: &str) -> String {
    match field {
        "ID" => "IMAGE ID".into(),
        "CreatedSince" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        other => {
            let mut s = String::new();
            let mut prev_upper = true;
            for c in other.chars() {
                if c.is_uppercase() && !prev_upper {
                    s.push(' ');
                }
                prev_upper = c.is_uppercase();
                s.extend(c.to_uppercase());
            }
            s
        }
    }
}

pub fn render_template(template: &str, value: &Value) -> anyhow::Result<String> {
    let mut t = gtmpl::Template::default();
    t.add_funcs(&[
        ("json", json_func as gtmpl::Func),
        ("upper", upper_func as gtmpl::Func),
        ("lower", lower_func as gtmpl::Func),
        ("join", join_func as gtmpl::Func),
    ]);
    t.parse(template)
        .map_err(|e| anyhow!("template parsing error: {e}"))
        .with_context(|| format!("invalid --format {template:?}"))?;
    let ctx = gtmpl::Context::from(to_gtmpl(value));
    t.render(&ctx)
        .map_err(|e| anyhow!("template: {e}"))
        .with_context(|| format!("executing --format {template:?}"))
}

fn to_gtmpl(v: &Value) -> gtmpl_value::Value {
    use gtmpl_value::Value as G;
    match v {
        Value::Null => G::Nil,
        Value::Bool(b) => G::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => G::Number(i.into()),
            (_, Some(u)) => G::Number(u.into()),
            _ => G::Number(n.as_f64().unwrap_or(0.0).into()),
        },
        Value::String(s) => G::String(s.clone()),
        Value::Array(a) => G::Array(a.iter().map(to_gtmpl).collect()),
        Value::Object(o) => G::Map(o.iter().map(|(k, v)| (k.clone(), to_gtmpl(v))).collect()),
    }
}

fn from_gtmpl(v: &gtmpl_value::Value) -> Value {
    use gtmpl_value::Value as G;
    match v {
        G::Nil | G::NoValue => Value::Null,
        G::Bool(b) => Value::Bool(*b),
        G::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_u64().map(Value::from))
            .or_else(|| n.as_f64().map(Value::from))
            .unwrap_or(Value::Null),
        G::String(s) => Value::String(s.clone()),
        G::Array(a) => Value::Array(a.iter().map(from_gtmpl).collect()),
        G::Map(m) | G::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), from_gtmpl(v))).collect())
        }
        G::Function(_) => Value::Null,
    }
}

fn json_func(args: &[gtmpl_value::Value]) -> Result<gtmpl_value::Value, gtmpl_value::FuncError> {
    let v = args.first().map(from_gtmpl).unwrap_or(Value::Null);
    Ok(gtmpl_value::Value::String(v.to_string()))
}

fn string_arg(args: &[gtmpl_value::Value]) -> String {
    match args.first() {
        Some(gtmpl_value::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn upper_func(args: &[gtmpl_value::Value]) -> Result<gtmpl_value::Value, gtmpl_value::FuncError> {
    Ok(gtmpl_value::Value::String(string_arg(args).to_uppercase()))
}

fn lower_func(args: &[gtmpl_value::Value]) -> Result<gtmpl_value::Value, gtmpl_value::FuncError> {
    Ok(gtmpl_value::Value::String(string_arg(args).to_lowercase()))
}

fn join_func(args: &[gtmpl_value::Value]) -> Result<gtmpl_value::Value, gtmpl_value::FuncError> {
    let sep = match args.get(1) {
        Some(gtmpl_value::Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let items = match args.first() {
        Some(gtmpl_value::Value::Array(a)) => a.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    Ok(gtmpl_value::Value::String(items.join(&sep)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(4_260_000), "4.26MB");
        assert_eq!(human_size(12_345_678), "12.3MB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_size(5_000_000), "5MB");
        assert_eq!(human_size(1_230_000_000), "1.23GB");
    }

    #[test]
    fn durations_like_docker() {
        let s = std::time::Duration::from_secs;
        assert_eq!(human_duration(s(0)), "Less than a second");
        assert_eq!(human_duration(s(45)), "45 seconds");
        assert_eq!(human_duration(s(90)), "About a minute");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(3 * 86400)), "3 days");
        assert_eq!(human_duration(s(20 * 86400)), "2 weeks");
        assert_eq!(human_duration(s(800 * 86400)), "2 years");
    }

    #[test]
    fn templates() {
        let v =
            json!({"Repository": "alpine", "Tag": "3", "Labels": {"a": "b"}, "List": ["x", "y"]});
        assert_eq!(
            render_template("{{.Repository}}:{{.Tag}}", &v).unwrap(),
            "alpine:3"
        );
        assert_eq!(
            render_template("{{json .Labels}}", &v).unwrap(),
            r#"{"a":"b"}"#
        );
        assert_eq!(render_template("{{index .List 1}}", &v).unwrap(), "y");
        assert_eq!(
            render_template("{{range .List}}<{{.}}>{{end}}", &v).unwrap(),
            "<x><y>"
        );
        assert!(render_template("{{.Repository", &v).is_err());
    }

    #[test]
    fn table_format_has_docker_headers() {
        let f = Format::parse("table {{.Repository}}\\t{{.ID}}");
        let out = f
            .render_all(&[json!({"Repository": "alpine", "ID": "abc"})])
            .unwrap();
        assert_eq!(out, "REPOSITORY   IMAGE ID\nalpine       abc\n");
    }
}
