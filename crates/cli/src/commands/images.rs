use crate::commands::UsageError;
use crate::format::{ago, human_size, table, Format};
use crate::Context;
use clap::Args;
use coracle_engine::{split_tag, ImageListFilter, ImageSummary};
use serde_json::{json, Value};

#[derive(Args)]
pub struct ImagesArgs {
    /// Show only images whose name matches REPOSITORY[:TAG] (`*` wildcards allowed)
    pub reference: Option<String>,
    /// Show all images (coracle keeps no intermediate images, so this is the default list)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output: dangling=true|false, reference=PATTERN, before=IMAGE,
    /// since=IMAGE, label=KEY[=VALUE], label!=KEY[=VALUE]
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format output: table, json, or a Go template such as '{{.Repository}}:{{.Tag}}'
    #[arg(long)]
    pub format: Option<String>,
}

/// One row of `images`: an image under one of its names.
struct Row<'a> {
    image: &'a ImageSummary,
    repository: String,
    tag: String,
    digest: String,
}

pub fn exec(ctx: &Context, args: ImagesArgs) -> anyhow::Result<i32> {
    let mut engine = ctx.engine()?;
    let filter = ImageListFilter::parse(&args.filter, args.reference.as_deref())
        .map_err(|e| UsageError(e.to_string()))?;
    let images = engine.images().list_images(&filter)?;
    let rows: Vec<Row> = images
        .iter()
        .flat_map(rows_of)
        .filter(|row| filter.keeps_name(&row.repository, &row.tag))
        .collect();

    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        for r in &rows {
            if seen.insert(&r.image.id) {
                println!("{}", image_id(r.image, args.no_trunc));
            }
        }
        return Ok(0);
    }
    match args.format.as_deref() {
        None | Some("table") => {
            let mut header = vec!["REPOSITORY", "TAG"];
            if args.digests {
                header.push("DIGEST");
            }
            header.extend(["IMAGE ID", "CREATED", "SIZE"]);
            let mut out = vec![header.iter().map(|s| s.to_string()).collect()];
            for r in &rows {
                let mut line = vec![r.repository.clone(), r.tag.clone()];
                if args.digests {
                    line.push(r.digest.clone());
                }
                line.extend([
                    image_id(r.image, args.no_trunc),
                    ago(r.image.created.as_deref()),
                    human_size(r.image.size),
                ]);
                out.push(line);
            }
            print!("{}", table(&out));
        }
        Some(spec) => {
            let format = Format::parse(spec);
            let values: Vec<Value> = rows.iter().map(|r| row_json(r, args.no_trunc)).collect();
            print!("{}", format.render_all(&values)?);
        }
    }
    Ok(0)
}

/// A row per tag; an untagged image gets one row named after its repo digest, or
/// `<none>`.
fn rows_of(image: &ImageSummary) -> Vec<Row<'_>> {
    let digest_for = |repo: &str| {
        image
            .repo_digests
            .iter()
            .find_map(|d| {
                d.split_once('@')
                    .filter(|(r, _)| *r == repo)
                    .map(|(_, d)| d.to_string())
            })
            .unwrap_or_else(|| "<none>".into())
    };
    if image.repo_tags.is_empty() {
        let (repository, digest) = match image.repo_digests.first().and_then(|d| d.split_once('@'))
        {
            Some((r, d)) => (r.to_string(), d.to_string()),
            None => ("<none>".to_string(), "<none>".to_string()),
        };
        return vec![Row {
            image,
            repository,
            tag: "<none>".into(),
            digest,
        }];
    }
    image
        .repo_tags
        .iter()
        .map(|t| {
            let (repository, tag) = split_tag(t);
            Row {
                image,
                digest: digest_for(&repository),
                repository,
                tag,
            }
        })
        .collect()
}

fn image_id(image: &ImageSummary, no_trunc: bool) -> String {
    if no_trunc {
        image.id.to_string()
    } else {
        image.id.short().to_string()
    }
}

fn row_json(r: &Row, no_trunc: bool) -> Value {
    let created_at = r
        .image
        .created
        .as_deref()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S +0000 UTC")
                .to_string()
        })
        .unwrap_or_default();
    json!({
        "Containers": "N/A",
        "CreatedAt": created_at,
        "CreatedSince": ago(r.image.created.as_deref()),
        "Digest": r.digest,
        "ID": image_id(r.image, no_trunc),
        "Repository": r.repository,
        "SharedSize": "N/A",
        "Size": human_size(r.image.size),
        "Tag": r.tag,
        "UniqueSize": "N/A",
        "VirtualSize": human_size(r.image.size),
    })
}
