//! docker's `--format` language: Go templates (gtmpl) with docker's functions, values
//! printed the way Go's `fmt` prints them, and header rendering for tables.

use anyhow::{anyhow, Context as _};
use serde_json::Value;

/// A parsed `--format` Go template with docker's functions (`json`, `split`, `join`,
/// `title`, `lower`, `upper`, `pad`, `truncate`, and Go's builtins), printing values
/// as Go's fmt does (`[a b]`, `map[k:v]`).
pub struct Template {
    inner: gtmpl::Template,
    text: String,
}

impl Template {
    pub fn parse(text: &str) -> anyhow::Result<Template> {
        Self::with_funcs(text, DOCKER_FUNCS)
    }

    /// For a table's header row: rendered against the column names, docker's
    /// functions leave them as they are (except `pad`, to keep the alignment).
    pub fn parse_header(text: &str) -> anyhow::Result<Template> {
        Self::with_funcs(text, HEADER_FUNCS)
    }

    fn with_funcs(text: &str, funcs: &[(&str, gtmpl::Func)]) -> anyhow::Result<Template> {
        let mut t = gtmpl::Template::default();
        t.add_funcs(funcs);
        t.add_func(PRINT_FUNC, go_print_func);
        t.parse(go_printing(text))
            .map_err(|e| anyhow!("template parsing error: {e}"))
            .with_context(|| format!("invalid --format {text:?}"))?;
        Ok(Template {
            inner: t,
            text: text.to_string(),
        })
    }

    pub fn render(&self, value: &Value) -> anyhow::Result<String> {
        let ctx = gtmpl::Context::from(to_gtmpl(value, None));
        match self.inner.render(&ctx) {
            Ok(s) => Ok(s),
            Err(gtmpl::error::ExecError::NoFiledFor(field, _)) => {
                Err(anyhow!(missing_field_error(&self.text, &field)))
            }
            Err(e) => Err(anyhow!("template: {e}"))
                .with_context(|| format!("executing --format {:?}", self.text)),
        }
    }
}

/// Go's error for a field the data lacks, in the shape docker prints it: `template:
/// :LINE:COL: executing "" at <.Config.Foo>: map has no entry for key "Foo"` (the
/// position and text of the first field chain in the template ending in `.Foo`).
fn missing_field_error(text: &str, field: &str) -> String {
    let b = text.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let needle = format!(".{field}");
    let mut from = 0;
    let mut found = None;
    while let Some(off) = text[from..].find(&needle) {
        let at = from + off;
        let end = at + needle.len();
        from = at + 1;
        if b.get(end).is_some_and(|c| is_ident(*c)) {
            continue;
        }
        // Back over the rest of the chain: `.A.B` or `$x.A`.
        let mut start = at;
        while start > 0 && (is_ident(b[start - 1]) || b[start - 1] == b'.' || b[start - 1] == b'$')
        {
            start -= 1;
        }
        found = Some((start, &text[start..end]));
        break;
    }
    let (pos, node) = found.unwrap_or((0, needle.as_str()));
    let before = &text[..pos];
    let line = 1 + before.matches('\n').count();
    let col = before.rfind('\n').map_or(pos, |nl| pos - nl - 1);
    format!(
        "template: :{line}:{col}: executing \"\" at <{node}>: map has no entry for key \"{field}\""
    )
}

const DOCKER_FUNCS: &[(&str, gtmpl::Func)] = &[
    ("json", json_func),
    ("upper", upper_func),
    ("lower", lower_func),
    ("join", join_func),
    ("split", split_func),
    ("title", title_func),
    ("pad", pad_func),
    ("truncate", truncate_func),
];

const HEADER_FUNCS: &[(&str, gtmpl::Func)] = &[
    ("json", first_arg_func),
    ("upper", first_arg_func),
    ("lower", first_arg_func),
    ("join", first_arg_func),
    ("split", first_arg_func),
    ("title", first_arg_func),
    ("pad", pad_func),
    ("truncate", first_arg_func),
];

/// Appended to every printing action, so values print as Go prints them.
const PRINT_FUNC: &str = "__goprint";

/// `{{PIPELINE}}` -> `{{PIPELINE | __goprint}}` for every action that prints (not
/// control words, comments or variable declarations). String and character literals
/// are skipped over when looking for an action's end.
fn go_printing(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let body_start = start + 2;
        let Some(len) = action_len(&rest[body_start..]) else {
            // Unterminated: leave it to the parser to report.
            out.push_str(&rest[start..]);
            return out;
        };
        let body = &rest[body_start..body_start + len];
        out.push_str("{{");
        out.push_str(&with_print(body));
        out.push_str("}}");
        rest = &rest[body_start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// Bytes up to the `}}` closing an action.
fn action_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn with_print(body: &str) -> String {
    let (lead, core, trail) = {
        let lead = if body.starts_with("- ") { "- " } else { "" };
        let trail = if body.ends_with(" -") { " -" } else { "" };
        (lead, &body[lead.len()..body.len() - trail.len()], trail)
    };
    let word = core.split_whitespace().next().unwrap_or("");
    let control = matches!(
        word,
        "if" | "else"
            | "end"
            | "range"
            | "with"
            | "define"
            | "template"
            | "block"
            | "break"
            | "continue"
    );
    let declaration = word.starts_with('$')
        && core
            .split_whitespace()
            .nth(1)
            .is_some_and(|w| w == ":=" || w == "=");
    if core.trim().is_empty() || core.trim_start().starts_with("/*") || control || declaration {
        return body.to_string();
    }
    format!("{lead}{core} | {PRINT_FUNC}{trail}")
}

/// Go's `fmt.Print` of a template value.
fn go_print(v: &gtmpl_value::Value) -> String {
    use gtmpl_value::Value as G;
    match v {
        G::NoValue => "<no value>".into(),
        G::Nil => "<nil>".into(),
        G::String(s) => s.clone(),
        G::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        G::Map(m) | G::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_print(&m[k])))
                .collect();
            format!("map[{}]", items.join(" "))
        }
        other => other.to_string(),
    }
}

fn go_print_func(
    args: &[gtmpl_value::Value],
) -> Result<gtmpl_value::Value, gtmpl_value::FuncError> {
    Ok(gtmpl_value::Value::String(
        args.iter().map(go_print).collect::<Vec<_>>().join(" "),
    ))
}

/// Fields docker's types declare as slices: a null one prints `[]` (Go prints a
/// nil slice of a typed struct so), not `<nil>`.
const SLICE_FIELDS: &[&str] = &[
    "Cmd",
    "Entrypoint",
    "Env",
    "OnBuild",
    "Shell",
    "RepoTags",
    "RepoDigests",
    "Layers",
    "Mounts",
    "Aliases",
    "Links",
    "DNSNames",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "ExtraHosts",
    "CapAdd",
    "CapDrop",
    "Binds",
    "GroupAdd",
    "SecurityOpt",
    "Devices",
    "Args",
    "Test",
];

/// Fields docker's types declare as maps: a null one prints `map[]`, and a key they
/// lack is `<no value>` (an absent struct field is an error instead).
const MAP_FIELDS: &[&str] = &[
    "Labels",
    "Volumes",
    "ExposedPorts",
    "Options",
    "DriverOpts",
    "Ports",
    "Sysctls",
    "StorageOpt",
    "Annotations",
    "Networks",
    "Containers",
    "Tmpfs",
    "Data",
    "PortBindings",
    "Status",
];

/// A JSON object is one of docker's structs (a field it lacks is an error, as Go's is)
/// unless it is a map field by name, empty, or has keys no Go field could have.
fn is_struct(o: &serde_json::Map<String, Value>, name: Option<&str>) -> bool {
    if name.is_some_and(|n| MAP_FIELDS.contains(&n)) || o.is_empty() {
        return false;
    }
    o.keys().all(|k| {
        k.starts_with(|c: char| c.is_ascii_uppercase())
            && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
    })
}

/// The template's view of a JSON value; `name` is the field that holds it.
fn to_gtmpl(v: &Value, name: Option<&str>) -> gtmpl_value::Value {
    use gtmpl_value::Value as G;
    match v {
        Value::Null if name.is_some_and(|n| SLICE_FIELDS.contains(&n)) => G::Array(Vec::new()),
        Value::Null if name.is_some_and(|n| MAP_FIELDS.contains(&n)) => G::Map(Default::default()),
        Value::Null => G::Nil,
        Value::Bool(b) => G::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => G::Number(i.into()),
            (_, Some(u)) => G::Number(u.into()),
            _ => G::Number(n.as_f64().unwrap_or(0.0).into()),
        },
        Value::String(s) => G::String(s.clone()),
        Value::Array(a) => G::Array(a.iter().map(|v| to_gtmpl(v, None)).collect()),
        Value::Object(o) => {
            let fields = o
                .iter()
                .map(|(k, v)| (k.clone(), to_gtmpl(v, Some(k))))
                .collect();
            if is_struct(o, name) {
                G::Object(fields)
            } else {
                G::Map(fields)
            }
        }
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

fn int_arg(args: &[gtmpl_value::Value], i: usize) -> i64 {
    match args.get(i) {
        Some(gtmpl_value::Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn first_arg_func(
    args: &[gtmpl_value::Value],
) -> Result<gtmpl_value::Value, gtmpl_value::FuncError> {
    Ok(gtmpl_value::Value::String(string_arg(args)))
}

fn split_func(args: &[gtmpl_value::Value]) -> Result<gtmpl_value::Value, gtmpl_value::FuncError> {
    let sep = match args.get(1) {
        Some(gtmpl_value::Value::String(s)) => s.clone(),
        _ => String::new(),
    };
    let s = string_arg(args);
    let parts: Vec<gtmpl_value::Value> = if sep.is_empty() {
        s.chars().map(|c| c.to_string().into()).collect()
    } else {
        s.split(sep.as_str())
            .map(|p| p.to_string().into())
            .collect()
    };
    Ok(gtmpl_value::Value::Array(parts))
}

/// Go's `strings.Title`: the first letter of every word upper-cased.
fn title_func(args: &[gtmpl_value::Value]) -> Result<gtmpl_value::Value, gtmpl_value::FuncError> {
    let mut out = String::new();
    let mut at_word_start = true;
    for c in string_arg(args).chars() {
        if at_word_start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_word_start = !c.is_alphanumeric() && c != '_' && c != '\'';
    }
    Ok(gtmpl_value::Value::String(out))
}

/// docker's `pad`: spaces around a non-empty string.
fn pad_func(args: &[gtmpl_value::Value]) -> Result<gtmpl_value::Value, gtmpl_value::FuncError> {
    let s = string_arg(args);
    if s.is_empty() {
        return Ok(gtmpl_value::Value::String(s));
    }
    let (pre, post) = (int_arg(args, 1).max(0), int_arg(args, 2).max(0));
    Ok(gtmpl_value::Value::String(format!(
        "{}{s}{}",
        " ".repeat(pre as usize),
        " ".repeat(post as usize)
    )))
}

/// docker's `truncate`: the first `n` bytes.
fn truncate_func(
    args: &[gtmpl_value::Value],
) -> Result<gtmpl_value::Value, gtmpl_value::FuncError> {
    let s = string_arg(args);
    let n = int_arg(args, 1).max(0) as usize;
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Ok(gtmpl_value::Value::String(s[..end].to_string()))
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
        Some(gtmpl_value::Value::Array(a)) => a.iter().map(go_print).collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    Ok(gtmpl_value::Value::String(items.join(&sep)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render_template(t: &str, v: &Value) -> anyhow::Result<String> {
        Template::parse(t)?.render(v)
    }

    #[test]
    fn values_print_as_go_prints_them() {
        let v = json!({"Cmd": ["sleep", "10"], "Labels": {"b": "2", "a": "1"}, "N": null,
            "Name": "web x", "Pid": 42, "On": true});
        let r = |t: &str| render_template(t, &v).unwrap();
        assert_eq!(r("{{.Cmd}}"), "[sleep 10]");
        assert_eq!(r("{{.Labels}}"), "map[a:1 b:2]");
        assert_eq!(r("{{.Labels.c}}"), "<no value>");
        assert_eq!(r("{{.N}}"), "<nil>");
        assert_eq!(r("{{.Pid}} {{.On}}"), "42 true");
        assert_eq!(r("{{range .Cmd}}<{{.}}>{{end}}"), "<sleep><10>");
        assert_eq!(r("{{if .Cmd}}yes{{else}}no{{end}}"), "yes");
        assert_eq!(r("{{$x := .Name}}{{$x}}"), "web x");
        assert_eq!(r(r#"{{"}}"}}"#), "}}");
        assert_eq!(r("a {{- .Name -}} b"), "aweb xb");
        assert_eq!(r("{{/* note */}}x"), "x");
    }

    #[test]
    fn range_over_a_map_is_in_sorted_key_order() {
        let mut labels = serde_json::Map::new();
        for k in [
            "zeta", "alpha", "mid", "beta", "omega", "gamma", "delta", "kappa",
        ] {
            labels.insert(k.into(), json!(k.len()));
        }
        let v = json!({ "Labels": labels });
        let t = "{{range $k, $v := .Labels}}{{$k}}={{$v}},{{end}}";
        for _ in 0..20 {
            assert_eq!(
                render_template(t, &v).unwrap(),
                "alpha=5,beta=4,delta=5,gamma=5,kappa=5,mid=3,omega=5,zeta=4,"
            );
        }
    }

    #[test]
    fn empty_typed_fields_print_as_docker_prints_them() {
        let v = json!({"Config": {"Entrypoint": null, "Labels": null, "Cmd": null,
            "User": "", "Env": ["A=1"]}, "Comment": ""});
        let r = |t: &str| render_template(t, &v).unwrap();
        assert_eq!(r("{{.Config.Entrypoint}}"), "[]");
        assert_eq!(r("{{.Config.Labels}}"), "map[]");
        assert_eq!(r("{{.Config.Cmd}}|{{.Config.User}}|{{.Comment}}|"), "[]|||");
        assert_eq!(r("{{.Config.Labels.foo}}"), "<no value>");
        assert_eq!(r("{{if .Config.Entrypoint}}y{{else}}n{{end}}"), "n");
        assert_eq!(r("{{len .Config.Labels}}"), "0");
    }

    #[test]
    fn an_unknown_field_fails_as_go_fails() {
        let v = json!({"Config": {"User": "x"}, "Id": "sha256:1"});
        let err = |t: &str| render_template(t, &v).unwrap_err().to_string();
        assert_eq!(
            err("{{.Foo}}"),
            r#"template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo""#
        );
        assert_eq!(
            err("id={{.Id}}\n{{.Config.Nope}}"),
            r#"template: :2:2: executing "" at <.Config.Nope>: map has no entry for key "Nope""#
        );
    }

    #[test]
    fn docker_template_functions() {
        let v = json!({"Cmd": ["sleep", "10"], "Name": "web x"});
        let r = |t: &str| render_template(t, &v).unwrap();
        assert_eq!(r("{{join .Cmd \",\"}}"), "sleep,10");
        assert_eq!(r("{{index (split .Name \" \") 1}}"), "x");
        assert_eq!(r("{{split .Name \" \"}}"), "[web x]");
        assert_eq!(r("{{title .Name}}"), "Web X");
        assert_eq!(r("{{upper .Name}}"), "WEB X");
        assert_eq!(r("{{pad .Name 1 2}}|"), " web x  |");
        assert_eq!(r("{{truncate .Name 3}}"), "web");
        assert_eq!(r("{{json .Cmd}}"), r#"["sleep","10"]"#);
        let h = Template::parse_header("{{upper .Name}}\t{{json .Cmd}}").unwrap();
        assert_eq!(
            h.render(&json!({"Name": "NAMES", "Cmd": "COMMAND"}))
                .unwrap(),
            "NAMES\tCOMMAND"
        );
    }
}
