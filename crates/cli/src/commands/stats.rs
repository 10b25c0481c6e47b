use crate::format::{human_size, table, Template};
use crate::Context;
use clap::Args;
use coracle_engine::{Engine, EngineError, StatsReader, StatsSample, StatsTarget};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

#[derive(Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output: 'table', 'table TEMPLATE', 'json' or a Go template such as
    /// '{{.Name}} {{.CPUPerc}}'
    #[arg(long)]
    pub format: Option<String>,
    /// Containers to show (default: all running ones)
    pub containers: Vec<String>,
}

const DEFAULT_TABLE: &str = "{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// The CPU percentage needs two readings: the first frame waits this long for the
/// second (docker's daemon also compares against a previous sample).
const FIRST_INTERVAL: Duration = Duration::from_millis(500);
/// How often a streaming `stats` redraws.
const REFRESH: Duration = Duration::from_secs(1);

enum Output {
    Json,
    Template { table: bool, text: String },
}

fn output_for(format: Option<&str>) -> Output {
    match format {
        None | Some("table") => Output::Template {
            table: true,
            text: DEFAULT_TABLE.into(),
        },
        Some("json") => Output::Json,
        Some(f) => {
            // The shell leaves `\t` as two characters; docker makes it a tab.
            let f = f.replace("\\t", "\t").replace("\\n", "\n");
            match f.strip_prefix("table") {
                Some(rest) => Output::Template {
                    table: true,
                    text: rest.trim_start().to_string(),
                },
                None => Output::Template {
                    table: false,
                    text: f,
                },
            }
        }
    }
}

/// docker's column headers for the template fields.
fn header_value() -> Value {
    json!({
        "Container": "CONTAINER",
        "Name": "NAME",
        "ID": "CONTAINER ID",
        "CPUPerc": "CPU %",
        "MemUsage": "MEM USAGE / LIMIT",
        "MemPerc": "MEM %",
        "NetIO": "NET I/O",
        "BlockIO": "BLOCK I/O",
        "PIDs": "PIDS",
    })
}

/// docker/go-units `BytesSize`: binary units, Go's `%.4g`.
fn bytes_size(n: u64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    // 4 significant digits, trailing zeros dropped (v < 1024 here).
    let before = if v < 1.0 {
        1
    } else {
        v.log10().floor() as usize + 1
    };
    let s = format!("{v:.prec$}", prec = 4usize.saturating_sub(before));
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[unit])
}

fn percent(v: f64) -> String {
    format!("{v:.2}%")
}

/// One row as docker's stats formatter shows it; `label` is what the user named
/// the container by (or its short id when listing all).
fn row(label: &str, s: &StatsSample, prev: Option<&StatsSample>, trunc: bool) -> Value {
    let id = if trunc {
        s.id.chars().take(12).collect()
    } else {
        s.id.clone()
    };
    let name = if s.name.is_empty() { "--" } else { &s.name };
    // Inserted in key order: `json` prints the keys sorted, as Go's encoder does.
    json!({
        "BlockIO": format!("{} / {}", human_size(s.block_read), human_size(s.block_write)),
        "CPUPerc": percent(s.cpu_percent(prev)),
        "Container": label,
        "ID": id,
        "MemPerc": percent(s.memory_percent()),
        "MemUsage": format!("{} / {}", bytes_size(s.memory_usage), bytes_size(s.memory_limit)),
        "Name": name,
        "NetIO": format!("{} / {}", human_size(s.net_rx), human_size(s.net_tx)),
        "PIDs": s.pids.to_string(),
    })
}

struct Targets {
    /// Named on the command line: (as typed, id). Empty: every (running) container.
    named: Vec<(String, String)>,
    all: bool,
}

impl Targets {
    /// The containers to sample now, with their labels. Named containers removed
    /// since are dropped (docker stops showing them).
    fn records(&mut self, engine: &mut Engine) -> anyhow::Result<Vec<(String, StatsTarget)>> {
        if self.named.is_empty() {
            return Ok(engine
                .containers()
                .stats_targets()?
                .into_iter()
                .filter(|c| self.all || c.is_active())
                .map(|c| (c.id().chars().take(12).collect(), c))
                .collect());
        }
        let mut out = Vec::new();
        let mut kept = Vec::new();
        for (label, id) in self.named.drain(..) {
            match engine.containers().stats_target(&id) {
                Ok(c) => {
                    out.push((label.clone(), c));
                    kept.push((label, id));
                }
                Err(EngineError::NoSuchContainer(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.named = kept;
        Ok(out)
    }
}

fn sample_all(
    engine: &mut Engine,
    reader: &StatsReader,
    records: &[(String, StatsTarget)],
) -> anyhow::Result<Vec<(String, StatsSample)>> {
    records
        .iter()
        .map(|(label, c)| Ok((label.clone(), engine.containers().stats_sample(reader, c)?)))
        .collect()
}

pub fn exec(ctx: &Context, args: StatsArgs) -> anyhow::Result<i32> {
    let output = output_for(args.format.as_deref());
    let template = match &output {
        Output::Template { text, table } => Some((
            Template::parse(text).map_err(|e| anyhow::anyhow!("failed to parse template: {e}"))?,
            if *table {
                Some(Template::parse_header(text)?.render(&header_value())?)
            } else {
                None
            },
        )),
        Output::Json => None,
    };
    let mut engine = ctx.engine()?;
    // Unknown names are reported up front, all of them, as docker does.
    let mut named = Vec::new();
    let mut missing = Vec::new();
    for key in &args.containers {
        match engine.containers().container_id(key) {
            Ok(id) => named.push((key.clone(), id)),
            Err(e @ EngineError::NoSuchContainer(_)) => missing.push(e.to_string()),
            Err(e) => return Err(e.into()),
        }
    }
    if !missing.is_empty() {
        anyhow::bail!(missing.join("\n"));
    }
    let mut targets = Targets {
        named,
        all: args.all,
    };
    let by_name = !targets.named.is_empty();
    let reader = engine.containers().stats_reader()?;
    let first = targets.records(&mut engine)?;
    let mut prev: HashMap<String, StatsSample> = sample_all(&mut engine, &reader, &first)?
        .into_iter()
        .map(|(_, s)| (s.id.clone(), s))
        .collect();
    std::thread::sleep(FIRST_INTERVAL);
    loop {
        let records = targets.records(&mut engine)?;
        let samples = sample_all(&mut engine, &reader, &records)?;
        let rows: Vec<Value> = samples
            .iter()
            .map(|(label, s)| row(label, s, prev.get(&s.id), !args.no_trunc))
            .collect();
        let mut out = String::new();
        if !args.no_stream {
            out.push_str("\x1b[2J\x1b[H");
        }
        match &template {
            None => {
                for r in &rows {
                    out.push_str(&r.to_string());
                    out.push('\n');
                }
            }
            Some((t, header)) => {
                let mut lines = Vec::new();
                if let Some(h) = header {
                    lines.push(h.clone());
                }
                for r in &rows {
                    lines.push(t.render(r)?);
                }
                if header.is_some() {
                    let cells: Vec<Vec<String>> = lines
                        .iter()
                        .map(|l| l.split('\t').map(str::to_string).collect())
                        .collect();
                    out.push_str(&table(&cells));
                } else {
                    for l in lines {
                        out.push_str(&l);
                        out.push('\n');
                    }
                }
            }
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(out.as_bytes())?;
        stdout.flush()?;
        drop(stdout);
        if args.no_stream || (by_name && targets.named.is_empty()) {
            return Ok(0);
        }
        prev = samples
            .into_iter()
            .map(|(_, s)| (s.id.clone(), s))
            .collect();
        std::thread::sleep(REFRESH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_byte_sizes() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(1023), "1023B");
        assert_eq!(bytes_size(64 << 20), "64MiB");
        assert_eq!(bytes_size(1_258_291), "1.2MiB");
        assert_eq!(bytes_size(24_683_656 * 1024), "23.54GiB");
        assert_eq!(bytes_size(593_920), "580KiB");
        assert_eq!(bytes_size(1_048_575), "1024KiB");
        assert_eq!(bytes_size(335_872), "328KiB");
        assert_eq!(bytes_size(123_456), "120.6KiB");
    }

    #[test]
    fn rows_as_docker_formats_them() {
        let s = StatsSample {
            id: "0123456789abcdef0123".into(),
            name: "web".into(),
            running: true,
            cpu_ns: 2_000_000_000,
            system_ns: 4_000_000_000,
            online_cpus: 2,
            memory_usage: 1_258_291,
            memory_limit: 64 << 20,
            net_rx: 1296,
            net_tx: 0,
            block_read: 4_260_000,
            block_write: 0,
            pids: 3,
        };
        let prev = StatsSample {
            cpu_ns: 1_000_000_000,
            system_ns: 2_000_000_000,
            ..s.clone()
        };
        let r = row("web", &s, Some(&prev), true);
        assert_eq!(
            r.to_string(),
            r#"{"BlockIO":"4.26MB / 0B","CPUPerc":"100.00%","Container":"web","ID":"0123456789ab","MemPerc":"1.87%","MemUsage":"1.2MiB / 64MiB","Name":"web","NetIO":"1.3kB / 0B","PIDs":"3"}"#
        );
        let stopped = StatsSample {
            id: s.id.clone(),
            name: "web".into(),
            ..StatsSample::default()
        };
        let r = row("x", &stopped, None, false);
        assert_eq!(r["CPUPerc"], "0.00%");
        assert_eq!(r["MemUsage"], "0B / 0B");
        assert_eq!(r["NetIO"], "0B / 0B");
        assert_eq!(r["PIDs"], "0");
        assert_eq!(r["ID"], "0123456789abcdef0123");
    }

    #[test]
    fn table_headers_from_the_template() {
        let Output::Template { text, table } = output_for(Some("table {{.Name}}\\t{{.CPUPerc}}"))
        else {
            panic!("a table template");
        };
        assert!(table);
        let h = Template::parse_header(&text)
            .unwrap()
            .render(&header_value())
            .unwrap();
        assert_eq!(h, "NAME\tCPU %");
        let Output::Template { text, .. } = output_for(None) else {
            panic!("the default table");
        };
        let h = Template::parse_header(&text)
            .unwrap()
            .render(&header_value())
            .unwrap();
        assert_eq!(
            h,
            "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS"
        );
        assert!(matches!(output_for(Some("json")), Output::Json));
    }
}
