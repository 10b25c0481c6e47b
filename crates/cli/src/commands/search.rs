//! `coracle search TERM`: the registry's search API (Docker Hub's by default, or the
//! registry a `REGISTRY/TERM` names), with docker's filters, columns and templates.

use crate::commands::ps::parse_filters;
use crate::format::Format;
use crate::Context;
use clap::Args;
use coracle_engine::SearchResult;
use serde_json::{json, Value};

/// docker's description column width.
const DESCRIPTION_WIDTH: usize = 45;

#[derive(Args)]
pub struct SearchArgs {
    /// Search term (REGISTRY/TERM searches that registry)
    pub term: String,
    /// Filter output based on conditions provided (stars=N, is-official=BOOL,
    /// is-automated=BOOL)
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Pretty-print search using a Go template (or json)
    #[arg(long)]
    pub format: Option<String>,
    /// Max number of search results (1 to 100)
    #[arg(long, default_value_t = 25, allow_negative_numbers = true)]
    pub limit: i64,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
}

pub fn exec(ctx: &Context, args: SearchArgs) -> anyhow::Result<i32> {
    let filters = parse_filters(&args.filter, "-f, --filter")?;
    let mut engine = ctx.engine()?;
    let results = engine.images().search(&args.term, args.limit, &filters)?;
    let format = match args.format.as_deref() {
        None | Some("table") => {
            Format::parse("table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}")
        }
        Some(f) => Format::parse(f),
    };
    let json = matches!(format, Format::Json);
    let values: Vec<Value> = results
        .iter()
        .map(|r| row(r, !args.no_trunc, json))
        .collect();
    print!("{}", format.render_all(&values)?);
    Ok(0)
}

/// One result as docker's search context shows it: strings throughout, booleans as
/// `[OK]`/empty in templates and `true`/`false` in JSON, newlines in the description
/// made spaces and the description cut to 45 columns unless `--no-trunc`.
fn row(r: &SearchResult, trunc: bool, json: bool) -> Value {
    let flag = |b: bool| match (b, json) {
        (true, true) => "true",
        (false, true) => "false",
        (true, false) => "[OK]",
        (false, false) => "",
    };
    let mut description = r.description.replace(['\n', '\r'], " ");
    if trunc && description.chars().count() > DESCRIPTION_WIDTH {
        description = description.chars().take(DESCRIPTION_WIDTH - 1).collect();
        description.push('…');
    }
    json!({
        "Name": r.name,
        "Description": description,
        "StarCount": r.star_count.to_string(),
        "IsOfficial": flag(r.is_official),
        "IsAutomated": flag(r.is_automated),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_dockers_search_context() {
        let r = SearchResult {
            name: "busybox".into(),
            description: "Busybox base image.\nSmall and useful, with many common UNIX utilities"
                .into(),
            star_count: 3000,
            is_official: true,
            is_automated: false,
        };
        let v = row(&r, true, false);
        assert_eq!(v["Name"], "busybox");
        assert_eq!(v["StarCount"], "3000");
        assert_eq!(v["IsOfficial"], "[OK]");
        assert_eq!(v["IsAutomated"], "");
        let d = v["Description"].as_str().unwrap();
        assert_eq!(d.chars().count(), 45);
        assert!(d.starts_with("Busybox base image. Small"), "{d}");
        assert!(d.ends_with('…'), "{d}");
        let v = row(&r, false, true);
        assert_eq!(v["IsOfficial"], "true");
        assert_eq!(v["IsAutomated"], "false");
        assert!(v["Description"].as_str().unwrap().ends_with("utilities"));
    }
}
