//! Output formatting shared by commands: docker's human sizes and durations, tables,
//! and `--format` Go templates.

use serde_json::Value;

pub use crate::template::Template;

/// docker/go-units HumanSizeWithPrecision(size, 3): decimal units, 3 significant digits.
pub fn human_size(size: u64) -> String {
    human_size_with_precision(size, 3)
}

/// docker/go-units HumanSize: 4 significant digits (prune's "Total reclaimed space").
pub fn human_size4(size: u64) -> String {
    human_size_with_precision(size, 4)
}

fn human_size_with_precision(size: u64, digits: i32) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = size as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", go_g(value, digits), UNITS[unit])
}

/// Go's `%.<digits>g` for 0 <= v < 1000.
fn go_g(v: f64, digits: i32) -> String {
    let digits_before = if v < 1.0 {
        1
    } else {
        (v.log10().floor() as i32) + 1
    };
    let decimals = (digits - digits_before).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// docker/go-units HumanDuration (the engine's, which `ps` statuses use too).
pub fn human_duration(d: std::time::Duration) -> String {
    coracle_engine::human_duration(chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX))
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

/// Left-aligned columns separated by at least three spaces and at least 10 wide, like
/// docker's tabwriter (minwidth 10, padding 3).
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
                let width = (widths[c] + 3).max(10);
                line.push_str(&" ".repeat(width - cell.chars().count()));
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
        let mut lines: Vec<String> = match self {
            Format::Json => values
                .iter()
                .map(|v| self.render(v))
                .collect::<Result<_, _>>()?,
            Format::Template { template, .. } => {
                let t = Template::parse(template)?;
                values
                    .iter()
                    .map(|v| t.render(v))
                    .collect::<Result<_, _>>()?
            }
        };
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
        // `search`'s columns, as docker names them.
        "StarCount" => "STARS".into(),
        "IsOfficial" => "OFFICIAL".into(),
        "IsAutomated" => "AUTOMATED".into(),
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
    Template::parse(template)?.render(value)
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
    fn four_digit_sizes_for_prune() {
        assert_eq!(human_size4(0), "0B");
        assert_eq!(human_size4(1234), "1.234kB");
        assert_eq!(human_size4(12_345_678), "12.35MB");
    }

    #[test]
    fn columns_are_at_least_ten_wide() {
        let rows = vec![
            vec!["ID".to_string(), "NAME".to_string(), "X".to_string()],
            vec!["a".to_string(), "b".to_string(), "c".to_string()],
        ];
        assert_eq!(
            table(&rows),
            "ID        NAME      X\na         b         c\n"
        );
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
