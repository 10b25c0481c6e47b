//! `network create|ls|inspect|rm|prune|connect|disconnect`: docker's flags, columns,
//! filters and messages (docker/cli `command/network`, moby `daemon/network/filter.go`).

use crate::commands::port::natural_cmp;
use crate::commands::ps::{go_quote, label_fields, parse_filters, with_labels, LABEL_FIELD};
use crate::format::{table, Template};
use crate::Context;
use clap::{Args, Subcommand};
use coracle_engine::{EndpointRequest, NetworkCreateRequest, NetworkSummary};
use coracle_engine::{Engine, Filters};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Create a network
    Create(CreateArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    pub name: String,
    /// Driver to manage the Network
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    pub subnet: Option<String>,
    /// IPv4 Gateway for the master subnet
    #[arg(long)]
    pub gateway: Option<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Set metadata on a network
    #[arg(long, value_name = "K=V")]
    pub label: Vec<String>,
    /// Enable manual container attachment (every coracle network accepts `network
    /// connect`, so this changes nothing)
    #[arg(long)]
    pub attachable: bool,
}

#[derive(Args)]
pub struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short, long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format output: 'table', 'table TEMPLATE', 'json', or a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only display network IDs
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct InspectArgs {
    #[arg(required = true, value_name = "NETWORK")]
    pub networks: Vec<String>,
    /// Format output using a Go template, or 'json'
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args)]
pub struct RmArgs {
    #[arg(required = true, value_name = "NETWORK")]
    pub networks: Vec<String>,
    /// Do not error if the network does not exist
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>", "label=<key>[=<value>]")
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args)]
pub struct ConnectArgs {
    pub network: String,
    pub container: String,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long)]
    pub ip: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long, value_name = "ALIAS")]
    pub alias: Vec<String>,
}

#[derive(Args)]
pub struct DisconnectArgs {
    pub network: String,
    pub container: String,
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    pub force: bool,
}

pub fn exec(ctx: &Context, cmd: NetworkCommand) -> anyhow::Result<i32> {
    match cmd {
        NetworkCommand::Create(a) => create(ctx, a),
        NetworkCommand::Ls(a) => ls(ctx, a),
        NetworkCommand::Inspect(a) => inspect(ctx, a),
        NetworkCommand::Rm(a) => rm(ctx, a),
        NetworkCommand::Prune(a) => prune(ctx, a),
        NetworkCommand::Connect(a) => {
            let ip =
                a.ip.as_deref()
                    .map(coracle_model::parse_ipv4_address)
                    .transpose()?;
            ctx.engine()?.networks().network_connect(
                &a.network,
                &a.container,
                &EndpointRequest {
                    ip,
                    aliases: a.alias,
                },
            )?;
            Ok(0)
        }
        NetworkCommand::Disconnect(a) => {
            ctx.engine()?
                .networks()
                .network_disconnect(&a.network, &a.container, a.force)?;
            Ok(0)
        }
    }
}

/// `k=v` (or `k` alone, an empty value) into a map, as docker's `ConvertKVStringsToMap`.
fn labels_map(labels: &[String]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect()
}

fn create(ctx: &Context, a: CreateArgs) -> anyhow::Result<i32> {
    if a.gateway.is_some() && a.subnet.is_none() {
        anyhow::bail!("every ip-range or gateway must have a corresponding subnet");
    }
    let id = ctx
        .engine()?
        .networks()
        .network_create(&NetworkCreateRequest {
            name: a.name,
            driver: a.driver,
            subnet: a.subnet,
            gateway: a.gateway,
            internal: a.internal,
            labels: labels_map(&a.label),
        })?;
    println!("{id}");
    Ok(0)
}

/// The networks `ls` shows (the engine's filter), in docker's order.
fn filtered(engine: &mut Engine, f: &Filters) -> anyhow::Result<Vec<NetworkSummary>> {
    let mut out = engine.networks().filter_networks(f)?;
    out.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    Ok(out)
}

/// What `ls --format` asks for, by docker's `newFormat` rules.
#[derive(Debug, PartialEq, Eq)]
enum Output {
    DefaultTable,
    Quiet,
    Json,
    Template { table: bool, text: String },
}

const RAW_FORMAT: &str =
    "network_id: {{.ID}}\nname: {{.Name}}\ndriver: {{.Driver}}\nscope: {{.Scope}}\n";

fn output_for(format: Option<&str>, quiet: bool) -> Output {
    let f = format.map(str::trim).filter(|f| !f.is_empty());
    match f {
        None | Some("table") if quiet => Output::Quiet,
        None | Some("table") => Output::DefaultTable,
        Some("json") => Output::Json,
        Some("raw") if quiet => Output::Template {
            table: false,
            text: "network_id: {{.ID}}".into(),
        },
        Some("raw") => Output::Template {
            table: false,
            text: RAW_FORMAT.into(),
        },
        Some(f) => {
            let f = f.replace("\\t", "\t").replace("\\n", "\n");
            match f.strip_prefix("table") {
                Some(rest) => Output::Template {
                    table: true,
                    text: rest.trim().to_string(),
                },
                None => Output::Template {
                    table: false,
                    text: f,
                },
            }
        }
    }
}

/// Go's `time.Time.String()` of an RFC 3339 time: `2024-05-01 12:00:00.5 +0000 UTC`
/// (the zero time for the built-in networks, which have none).
fn go_time_string(rfc3339: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(rfc3339) else {
        return "0001-01-01 00:00:00 +0000 UTC".into();
    };
    let t = t.with_timezone(&chrono::Utc);
    let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// One network as docker's `networkContext` gives it to templates.
fn row(n: &NetworkSummary, trunc: bool) -> Map<String, Value> {
    let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut m = Map::new();
    m.insert("CreatedAt".into(), json!(go_time_string(&n.created)));
    m.insert("Driver".into(), json!(n.driver));
    m.insert("ID".into(), json!(short_id(&n.id, trunc)));
    m.insert("IPv6".into(), json!(n.ipv6.to_string()));
    m.insert("Internal".into(), json!(n.internal.to_string()));
    m.insert("Labels".into(), json!(labels.join(",")));
    m.insert("Name".into(), json!(n.name));
    m.insert("Scope".into(), json!(n.scope));
    m
}

fn short_id(id: &str, trunc: bool) -> String {
    if trunc {
        id.chars().take(12).collect()
    } else {
        id.to_string()
    }
}

fn header_value() -> Value {
    json!({
        "ID": "NETWORK ID",
        "Name": "NAME",
        "Driver": "DRIVER",
        "Scope": "SCOPE",
        "IPv6": "IPV6",
        "Internal": "INTERNAL",
        "Labels": "LABELS",
        "CreatedAt": "CREATED AT",
    })
}

fn ls(ctx: &Context, a: LsArgs) -> anyhow::Result<i32> {
    let filters = parse_filters(&a.filter, "-f, --filter")?;
    let output = output_for(a.format.as_deref(), a.quiet);
    // Parse the template before touching the store: a bad one fails alone.
    let template = match &output {
        Output::Template { text, .. } => {
            let (text, keys) = label_fields(text);
            let t = Template::parse(&text)
                .map_err(|e| anyhow::anyhow!("failed to parse template: {e}"))?;
            Some((t, keys))
        }
        _ => None,
    };
    let mut engine = ctx.engine()?;
    let networks = filtered(&mut engine, &filters)?;
    let trunc = !a.no_trunc;
    let out = match output {
        Output::Quiet => networks
            .iter()
            .map(|n| short_id(&n.id, trunc) + "\n")
            .collect(),
        Output::DefaultTable => {
            let mut rows = vec![["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
                .map(String::from)
                .to_vec()];
            for n in &networks {
                rows.push(vec![
                    short_id(&n.id, trunc),
                    n.name.clone(),
                    n.driver.clone(),
                    n.scope.clone(),
                ]);
            }
            table(&rows)
        }
        Output::Json => networks
            .iter()
            .map(|n| Value::Object(row(n, trunc)).to_string() + "\n")
            .collect(),
        Output::Template {
            table: is_table,
            text,
        } => {
            let (template, keys) = template.expect("parsed above");
            let mut lines = Vec::new();
            if is_table {
                let header = Template::parse_header(&with_labels(&text, |_| go_quote("LABEL")))?;
                lines.push(header.render(&header_value())?);
            }
            for n in &networks {
                let mut r = row(n, trunc);
                for (i, k) in keys.iter().enumerate() {
                    let v = n.labels.get(k).cloned().unwrap_or_default();
                    r.insert(format!("{LABEL_FIELD}{i}"), Value::String(v));
                }
                lines.push(template.render(&Value::Object(r))?);
            }
            if is_table {
                let rows: Vec<Vec<String>> = lines
                    .iter()
                    .map(|l| l.split('\t').map(str::to_string).collect())
                    .collect();
                table(&rows)
            } else {
                lines.iter().map(|l| format!("{l}\n")).collect()
            }
        }
    };
    print!("{out}");
    Ok(0)
}

fn inspect(ctx: &Context, a: InspectArgs) -> anyhow::Result<i32> {
    let format = a.format.as_deref().filter(|f| !f.is_empty());
    if let Some(f) = format.filter(|f| *f != "json") {
        if let Err(e) = Template::parse(f) {
            eprintln!("{}", crate::error_chain(&e));
            return Ok(crate::commands::inspect::EXIT_BAD_TEMPLATE);
        }
    }
    let mut engine = ctx.engine()?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for n in &a.networks {
        match engine.networks().network_inspect(n) {
            Ok(v) => found.push(v),
            Err(e) => errors.push(format!("Error: {e}")),
        }
    }
    errors.extend(crate::commands::inspect::print_inspect(&found, format)?);
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

fn rm(ctx: &Context, a: RmArgs) -> anyhow::Result<i32> {
    let mut engine = ctx.engine()?;
    let mut failed = false;
    for n in &a.networks {
        match engine.networks().network_remove(n) {
            Ok(()) => println!("{n}"),
            Err(e) if a.force && e.kind() == coracle_core::ErrorKind::NotFound => {}
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

fn prune(ctx: &Context, a: PruneArgs) -> anyhow::Result<i32> {
    // docker checks the filter syntax before asking.
    parse_filters(&a.filter, "--filter")?;
    let filters: Vec<(String, String)> = a
        .filter
        .iter()
        .filter_map(|f| f.split_once('='))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    if !a.force {
        print!("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES") {
            return Ok(0);
        }
    }
    let removed = ctx.engine()?.networks().network_prune(&filters)?;
    print!("{}", prune_report(&removed));
    Ok(0)
}

/// "Deleted Networks:" and the names, then docker's blank line; nothing when none.
fn prune_report(removed: &[String]) -> String {
    if removed.is_empty() {
        return String::new();
    }
    let mut out = String::from("Deleted Networks:\n");
    for n in removed {
        out.push_str(n);
        out.push('\n');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(name: &str) -> NetworkSummary {
        NetworkSummary {
            id: "a1b2c3d4e5f6".repeat(5) + "abcd",
            name: name.into(),
            driver: "bridge".into(),
            scope: "local".into(),
            internal: true,
            ipv6: false,
            created: "2024-05-01T12:00:00.123400Z".into(),
            labels: BTreeMap::from([("b".into(), "2".into()), ("a".into(), "1".into())]),
        }
    }

    #[test]
    fn format_choice_follows_docker() {
        assert_eq!(output_for(None, false), Output::DefaultTable);
        assert_eq!(output_for(Some("table"), true), Output::Quiet);
        assert_eq!(output_for(None, true), Output::Quiet);
        assert_eq!(output_for(Some("json"), true), Output::Json);
        assert_eq!(
            output_for(Some("{{.Name}}"), true),
            Output::Template {
                table: false,
                text: "{{.Name}}".into()
            }
        );
        assert_eq!(
            output_for(Some("table {{.ID}}\\t{{.Name}}"), false),
            Output::Template {
                table: true,
                text: "{{.ID}}\t{{.Name}}".into()
            }
        );
        assert!(
            matches!(output_for(Some("raw"), false), Output::Template { table: false, text } if text == RAW_FORMAT)
        );
    }

    #[test]
    fn rows_as_docker() {
        let r = row(&summary("net1"), true);
        assert_eq!(r["ID"], "a1b2c3d4e5f6");
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["Internal"], "true");
        assert_eq!(r["IPv6"], "false");
        assert_eq!(r["CreatedAt"], "2024-05-01 12:00:00.1234 +0000 UTC");
        assert_eq!(row(&summary("n"), false)["ID"].as_str().unwrap().len(), 64);
        assert_eq!(go_time_string(""), "0001-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_time_string("2024-05-01T14:00:00+02:00"),
            "2024-05-01 12:00:00 +0000 UTC"
        );
    }

    #[test]
    fn table_template_has_docker_headers() {
        let text = "{{.ID}}\t{{.Name}}\t{{.Label \"a\"}}";
        let header = Template::parse_header(&with_labels(text, |_| go_quote("LABEL"))).unwrap();
        assert_eq!(
            header.render(&header_value()).unwrap(),
            "NETWORK ID\tNAME\tLABEL"
        );
        let (t, keys) = label_fields(text);
        let mut r = row(&summary("n"), true);
        r.insert(format!("{LABEL_FIELD}0"), json!("1"));
        assert_eq!(keys, ["a"]);
        assert_eq!(
            Template::parse(&t)
                .unwrap()
                .render(&Value::Object(r))
                .unwrap(),
            "a1b2c3d4e5f6\tn\t1"
        );
    }

    #[test]
    fn prune_output() {
        assert_eq!(prune_report(&[]), "");
        assert_eq!(
            prune_report(&["a".into(), "b".into()]),
            "Deleted Networks:\na\nb\n\n"
        );
    }

    #[test]
    fn labels_as_docker() {
        assert_eq!(
            labels_map(&["a=1".into(), "b".into(), "c=x=y".into()]),
            BTreeMap::from([
                ("a".into(), "1".into()),
                ("b".into(), String::new()),
                ("c".into(), "x=y".into())
            ])
        );
    }
}
