use crate::format::Format;
use crate::Context;
use clap::Args;
use serde_json::Value;

#[derive(Args)]
pub struct InspectArgs {
    /// Images to inspect, by name or id
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Format output with a Go template, or `json`
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only inspect objects of this type (image)
    #[arg(long = "type", value_name = "TYPE", value_parser = ["image"])]
    pub kind: Option<String>,
}

/// Docker prints the objects it found, then errors for the ones it did not, and
/// exits 1 if any was missing.
pub fn exec(ctx: &Context, args: InspectArgs) -> anyhow::Result<i32> {
    let engine = ctx.engine()?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        match engine.inspect_image(name) {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e.to_string()),
        }
    }
    print_inspect(&found, args.format.as_deref())?;
    for e in &errors {
        eprintln!("Error: {e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

pub fn print_inspect(values: &[Value], format: Option<&str>) -> anyhow::Result<()> {
    match format {
        None => println!(
            "{}",
            serde_json::to_string_pretty(&Value::Array(values.to_vec()))?
        ),
        Some(spec) => {
            let f = Format::parse(spec);
            for v in values {
                println!("{}", f.render(v)?);
            }
        }
    }
    Ok(())
}
