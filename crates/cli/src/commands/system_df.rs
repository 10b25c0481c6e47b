//! `system df`: docker's disk-usage summary (TYPE TOTAL ACTIVE SIZE RECLAIMABLE), the
//! verbose per-object tables with `-v`, or `--format` over the summary rows.

use crate::format::{human_size, table, Format, Template};
use crate::Context;
use clap::Args;
use coracle_engine::DiskUsage;
use serde_json::{json, Value};

#[derive(Args)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
    /// Format output using a Go template, or 'json'
    #[arg(long)]
    pub format: Option<String>,
}

pub fn exec(ctx: &Context, args: DfArgs) -> anyhow::Result<i32> {
    let usage = ctx.engine()?.system().disk_usage()?;
    let format = args.format.as_deref().filter(|f| !f.is_empty());
    if args.verbose && format.is_some() {
        // docker: verbose output ignores --format except json, which it refuses too.
        return Err(
            crate::commands::UsageError("--format is not supported with --verbose".into()).into(),
        );
    }
    if args.verbose {
        print!("{}", verbose(&usage));
        return Ok(0);
    }
    let rows = summary_rows(&usage);
    match format {
        None => print!(
            "{}",
            render_table(
                "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
                &rows
            )?
        ),
        Some(f) if f.starts_with("table") => print!("{}", render_table(f, &rows)?),
        Some(f) => print!("{}", Format::parse(f).render_all(&rows)?),
    }
    Ok(0)
}

/// A `table` template with docker's df headers (TotalCount's header is TOTAL).
fn render_table(spec: &str, rows: &[Value]) -> anyhow::Result<String> {
    let Format::Template { template, .. } = Format::parse(spec) else {
        unreachable!("a table spec is a template")
    };
    let t = Template::parse(&template)?;
    let header = json!({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE",
        "Size": "SIZE", "Reclaimable": "RECLAIMABLE"});
    let mut lines = vec![t.render(&header)?];
    for r in rows {
        lines.push(t.render(r)?);
    }
    let cells: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    Ok(table(&cells))
}

/// `SIZE (PCT%)` with Go's integer division, as docker's formatter; no percentage
/// when the total is zero.
fn reclaimable(reclaim: u64, total: u64, with_pct: bool) -> String {
    if with_pct && total > 0 {
        format!("{} ({}%)", human_size(reclaim), reclaim * 100 / total)
    } else {
        human_size(reclaim)
    }
}

fn row(kind: &str, total: usize, active: usize, size: u64, reclaim: String) -> Value {
    json!({"Type": kind, "TotalCount": total.to_string(), "Active": active.to_string(),
        "Size": human_size(size), "Reclaimable": reclaim})
}

fn summary_rows(u: &DiskUsage) -> Vec<Value> {
    let used: u64 = u
        .images
        .iter()
        .filter(|i| i.containers > 0)
        .map(|i| i.summary.size - i.shared_size)
        .sum();
    let active_images = u.images.iter().filter(|i| i.containers > 0).count();
    let image_reclaim = u.layers_size.saturating_sub(used);

    let c_size: u64 = u.containers.iter().filter_map(|c| c.size_rw).sum();
    let c_reclaim: u64 = u
        .containers
        .iter()
        .filter(|c| !c.state.is_active())
        .filter_map(|c| c.size_rw)
        .sum();
    let c_active = u.containers.iter().filter(|c| c.state.is_active()).count();

    let v_size: u64 = u.volumes.iter().map(|v| v.size).sum();
    let v_reclaim: u64 = u
        .volumes
        .iter()
        .filter(|v| v.links == 0)
        .map(|v| v.size)
        .sum();
    let v_active = u.volumes.iter().filter(|v| v.links > 0).count();
    vec![
        row(
            "Images",
            u.images.len(),
            active_images,
            u.layers_size,
            reclaimable(image_reclaim, u.layers_size, true),
        ),
        row(
            "Containers",
            u.containers.len(),
            c_active,
            c_size,
            reclaimable(c_reclaim, c_size, true),
        ),
        row(
            "Local Volumes",
            u.volumes.len(),
            v_active,
            v_size,
            reclaimable(v_reclaim, v_size, true),
        ),
        // No builder: nothing is ever cached, and docker always prints the line.
        row("Build Cache", 0, 0, 0, reclaimable(0, 0, false)),
    ]
}

/// docker's `system df -v`: one table per kind under its title.
fn verbose(u: &DiskUsage) -> String {
    let mut out = String::from("Images space usage:\n\n");
    let mut rows = vec![[
        "REPOSITORY",
        "TAG",
        "IMAGE ID",
        "CREATED",
        "SIZE",
        "SHARED SIZE",
        "UNIQUE SIZE",
        "CONTAINERS",
    ]
    .map(String::from)
    .to_vec()];
    for i in &u.images {
        let s = &i.summary;
        let id = s.id.to_string();
        let short = id.strip_prefix("sha256:").unwrap_or(&id)[..12].to_string();
        let names: Vec<(String, String)> = if s.repo_tags.is_empty() {
            vec![("<none>".into(), "<none>".into())]
        } else {
            s.repo_tags
                .iter()
                .map(
                    |t| match t.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) {
                        Some((r, tag)) => (r.to_string(), tag.to_string()),
                        None => (t.clone(), "<none>".into()),
                    },
                )
                .collect()
        };
        for (repo, tag) in names {
            rows.push(vec![
                repo,
                tag,
                short.clone(),
                crate::format::ago(s.created.as_deref()),
                human_size(s.size),
                human_size(i.shared_size),
                human_size(s.size - i.shared_size),
                i.containers.to_string(),
            ]);
        }
    }
    out.push_str(&table(&rows));
    out.push_str("\nContainers space usage:\n\n");
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "LOCAL VOLUMES",
        "SIZE",
        "CREATED",
        "STATUS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for c in &u.containers {
        let volumes = c.mounts.iter().filter(|m| m.kind == "volume").count();
        rows.push(vec![
            c.id[..12].to_string(),
            c.image.clone(),
            format!("\"{}\"", truncate(&c.command, 20)),
            volumes.to_string(),
            human_size(c.size_rw.unwrap_or(0)),
            created_ago(c.created),
            c.status.clone(),
            c.name.clone(),
        ]);
    }
    out.push_str(&table(&rows));
    out.push_str("\nLocal Volumes space usage:\n\n");
    let mut rows = vec![["VOLUME NAME", "LINKS", "SIZE"].map(String::from).to_vec()];
    for v in &u.volumes {
        rows.push(vec![
            v.name.clone(),
            v.links.to_string(),
            human_size(v.size),
        ]);
    }
    out.push_str(&table(&rows));
    out.push_str("\nBuild cache usage: 0B\n\n");
    out.push_str(&table(&[[
        "CACHE ID",
        "CACHE TYPE",
        "SIZE",
        "CREATED",
        "LAST USED",
        "USAGE",
        "SHARED",
    ]
    .map(String::from)
    .to_vec()]));
    out
}

/// docker's `Ellipsis`: at most `max` characters, the last one `…`.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}

fn created_ago(unix: i64) -> String {
    let t = chrono::DateTime::from_timestamp(unix, 0).map(|t| t.to_rfc3339());
    crate::format::ago(t.as_deref())
}
