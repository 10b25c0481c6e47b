//! `inspect` (containers first, then images, then volumes, as docker looks them up),
//! `container inspect` and the printing shared by every `* inspect`: docker's
//! indented JSON array, `-f json`, or a Go template per object.

use crate::format::Template;
use crate::Context;
use clap::Args;
use coracle_core::ErrorKind;
use coracle_engine::{ContainerInspect, Engine, EngineError};
use serde::Serialize;
use serde_json::Value;

#[derive(Args)]
pub struct InspectArgs {
    /// Objects to inspect (containers, images or volumes), by name or id
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
    /// Format output using a Go template, or 'json'
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only inspect objects of the given type
    #[arg(long = "type", value_name = "TYPE", value_parser = ["container", "image", "volume"])]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    pub size: bool,
}

/// `container inspect`.
#[derive(Args)]
pub struct ContainerInspectArgs {
    /// Containers to inspect, by name or id
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
    /// Format output using a Go template, or 'json'
    #[arg(short, long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
}

/// An inspected object: containers are typed (docker's field order), the others JSON.
#[derive(Serialize)]
#[serde(untagged)]
enum Inspected {
    Container(Box<ContainerInspect>),
    Other(Value),
}

/// docker's exit code when the format is not a valid template.
pub(crate) const EXIT_BAD_TEMPLATE: i32 = 64;

/// A `--format` that is kept and applied (`info`, `version`): None for the default
/// output or `json`, else the template, with `\t` and `\n` written out as docker
/// allows. A bad template is reported here and gives the exit code to return.
pub(crate) fn format_template(format: Option<&str>) -> Result<Option<Template>, i32> {
    match format.filter(|f| !f.is_empty() && *f != "json") {
        Some(f) => Template::parse(&f.replace("\\t", "\t").replace("\\n", "\n"))
            .map(Some)
            .map_err(|e| {
                eprintln!("{}", crate::error_chain(&e));
                EXIT_BAD_TEMPLATE
            }),
        None => Ok(None),
    }
}

pub fn exec(ctx: &Context, args: InspectArgs) -> anyhow::Result<i32> {
    run(
        ctx,
        &args.names,
        args.format.as_deref(),
        args.kind.as_deref(),
        args.size,
    )
}

pub fn exec_container(ctx: &Context, args: ContainerInspectArgs) -> anyhow::Result<i32> {
    run(
        ctx,
        &args.containers,
        args.format.as_deref(),
        Some("container"),
        args.size,
    )
}

fn run(
    ctx: &Context,
    names: &[String],
    format: Option<&str>,
    kind: Option<&str>,
    size: bool,
) -> anyhow::Result<i32> {
    let format = format.filter(|f| !f.is_empty());
    if let Some(f) = format.filter(|f| *f != "json") {
        if let Err(e) = Template::parse(f) {
            eprintln!("{}", crate::error_chain(&e));
            return Ok(EXIT_BAD_TEMPLATE);
        }
    }
    let mut engine = ctx.engine()?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        match lookup(&mut engine, name, kind, size) {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e),
        }
    }
    errors.extend(print_inspect(&found, format)?);
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

fn not_found(e: &EngineError) -> bool {
    e.kind() == ErrorKind::NotFound
        || matches!(e, EngineError::Reference(_))
        || e.to_string().contains("invalid reference format")
}

/// One object by name, as `docker inspect` searches: containers, then images, then
/// volumes (or only `kind`).
fn lookup(
    engine: &mut Engine,
    name: &str,
    kind: Option<&str>,
    size: bool,
) -> Result<Inspected, String> {
    let msg = |e: EngineError| format!("Error: {e}");
    let size_ignored = |what: &str| {
        if size {
            eprintln!("WARNING: --size ignored for {what}");
        }
    };
    if kind.is_none_or(|k| k == "container") {
        match engine.containers().inspect_container(name, size) {
            Ok(c) => return Ok(Inspected::Container(Box::new(c))),
            Err(e) if kind.is_none() && not_found(&e) => {}
            Err(e) => return Err(msg(e)),
        }
    }
    if kind.is_none_or(|k| k == "image") {
        match engine.images().inspect_image(name) {
            Ok(v) => {
                size_ignored("image");
                return Ok(Inspected::Other(v));
            }
            Err(e) if kind.is_none() && not_found(&e) => {}
            Err(e) => return Err(msg(e)),
        }
    }
    if kind.is_none_or(|k| k == "volume") {
        match engine.volumes().inspect_volume(name) {
            Ok(v) => {
                size_ignored("volume");
                return Ok(Inspected::Other(v));
            }
            Err(e) if kind.is_none() && not_found(&e) => {}
            Err(e) => return Err(msg(e)),
        }
    }
    Err(format!("Error: No such object: {name}"))
}

/// Prints `values` as docker's inspectors do; returns the errors of templates that
/// failed on some object (docker reports them after printing the others).
pub fn print_inspect<T: Serialize>(
    values: &[T],
    format: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    match format.filter(|f| !f.is_empty()) {
        None => println!("{}", go_json(values, true)?),
        Some("json") => println!("{}", go_json(values, false)?),
        Some(spec) => {
            let t = Template::parse(spec)?;
            let mut out = String::new();
            let mut errors = Vec::new();
            for v in values {
                match t.render(&serde_json::to_value(v)?) {
                    Ok(s) => {
                        out.push_str(&s);
                        out.push('\n');
                    }
                    Err(e) => errors.push(format!(
                        "template parsing error: {}",
                        crate::error_chain(&e)
                    )),
                }
            }
            if out.is_empty() {
                out.push('\n');
            }
            print!("{out}");
            return Ok(errors);
        }
    }
    Ok(Vec::new())
}

/// JSON as Go's encoder writes it: `<`, `>` and `&` escaped, indented by 4 spaces.
fn go_json<T: Serialize + ?Sized>(value: &T, pretty: bool) -> anyhow::Result<String> {
    let mut buf = Vec::new();
    if pretty {
        let mut ser = serde_json::Serializer::with_formatter(
            &mut buf,
            GoEscapes(serde_json::ser::PrettyFormatter::with_indent(b"    ")),
        );
        value.serialize(&mut ser)?;
    } else {
        let mut ser = serde_json::Serializer::with_formatter(
            &mut buf,
            GoEscapes(serde_json::ser::CompactFormatter),
        );
        value.serialize(&mut ser)?;
    }
    Ok(String::from_utf8(buf)?)
}

/// A formatter adding Go's HTML-safe escapes to another.
struct GoEscapes<F>(F);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for GoEscapes<F> {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            self.0.write_string_fragment(w, &fragment[start..i])?;
            w.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        self.0.write_string_fragment(w, &fragment[start..])
    }

    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.0.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_as_go_writes_it() {
        let v = vec![json!({"A": "<b>&", "B": [1]})];
        assert_eq!(
            go_json(&v, false).unwrap(),
            r#"[{"A":"\u003cb\u003e\u0026","B":[1]}]"#
        );
        assert_eq!(
            go_json(&v, true).unwrap(),
            "[\n    {\n        \"A\": \"\\u003cb\\u003e\\u0026\",\n        \"B\": [\n            1\n        ]\n    }\n]"
        );
        assert_eq!(go_json(&Vec::<Value>::new(), true).unwrap(), "[]");
    }
}
