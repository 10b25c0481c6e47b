use crate::format::{human_duration, table, Format};
use crate::Context;
use clap::Args;
use coracle_engine::ContainerRecord;
use serde_json::{json, Value};

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output: json or a Go template such as '{{.Names}}'
    #[arg(long)]
    pub format: Option<String>,
}

pub fn exec(ctx: &Context, args: PsArgs) -> anyhow::Result<i32> {
    let mut engine = ctx.engine()?;
    let containers: Vec<ContainerRecord> = engine
        .containers()?
        .into_iter()
        .filter(|c| args.all || c.state == "running")
        .collect();
    let id = |c: &ContainerRecord| {
        if args.no_trunc {
            c.id.clone()
        } else {
            c.id[..12.min(c.id.len())].to_string()
        }
    };
    if args.quiet {
        for c in &containers {
            println!("{}", id(c));
        }
        return Ok(0);
    }
    let rows: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({
                "ID": id(c),
                "Image": c.image_name,
                "Command": command(c, args.no_trunc),
                "CreatedAt": chrono::DateTime::from_timestamp(c.created_at, 0)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
                    .unwrap_or_default(),
                "RunningFor": since(c.created_at),
                "Status": status(c),
                "State": c.state,
                "Ports": "",
                "Names": c.name,
            })
        })
        .collect();
    match args.format.as_deref() {
        None | Some("table") => {
            let mut out = vec![[
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
            .collect::<Vec<_>>()];
            for r in &rows {
                out.push(
                    [
                        "ID",
                        "Image",
                        "Command",
                        "RunningFor",
                        "Status",
                        "Ports",
                        "Names",
                    ]
                    .iter()
                    .map(|k| r[*k].as_str().unwrap_or_default().to_string())
                    .collect(),
                );
            }
            print!("{}", table(&out));
        }
        Some(spec) => print!("{}", Format::parse(spec).render_all(&rows)?),
    }
    Ok(0)
}

/// `"sh -c 'exit 4'"`, cut to 20 characters with an ellipsis as docker does.
fn command(c: &ContainerRecord, no_trunc: bool) -> String {
    let cfg: Value = serde_json::from_str(&c.config).unwrap_or(Value::Null);
    let cmd: Vec<&str> = cfg["Cmd"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut s = cmd.join(" ");
    if !no_trunc && s.chars().count() > 20 {
        s = s.chars().take(19).collect::<String>() + "…";
    }
    format!("\"{s}\"")
}

fn since(unix: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    format!(
        "{} ago",
        human_duration(std::time::Duration::from_secs((now - unix).max(0) as u64))
    )
}

fn status(c: &ContainerRecord) -> String {
    let elapsed = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| {
                let d = chrono::Utc::now().signed_duration_since(t);
                human_duration(d.to_std().unwrap_or_default())
            })
            .unwrap_or_else(|| "Less than a second".into())
    };
    match c.state.as_str() {
        "running" => format!("Up {}", elapsed(&c.started_at)),
        "exited" => format!(
            "Exited ({}) {} ago",
            c.exit_code.unwrap_or(0),
            elapsed(&c.finished_at)
        ),
        "created" => "Created".into(),
        other => other.to_string(),
    }
}
