use crate::Context;
use anyhow::anyhow;
use clap::Args;
use coracle_engine::{parse_timestamp, LogsOptions};
use std::time::SystemTime;

#[derive(Args)]
pub struct LogsArgs {
    /// Follow log output (until the container stops)
    #[arg(short, long)]
    pub follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string", allow_hyphen_values = true)]
    pub until: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Number of lines to show from the end of the logs
    #[arg(
        short = 'n',
        long,
        value_name = "string",
        default_value = "all",
        allow_hyphen_values = true
    )]
    pub tail: String,
    /// The container, by name or id
    pub container: String,
}

/// dockerd's reading of `--tail`: a non-negative number, anything else (`all`, `-1`,
/// `x`) meaning the whole log.
fn parse_tail(s: &str) -> Option<usize> {
    s.parse::<i64>().ok().and_then(|n| usize::try_from(n).ok())
}

pub fn exec(ctx: &Context, args: LogsArgs) -> anyhow::Result<i32> {
    let now = SystemTime::now();
    let time = |name: &str, v: &Option<String>| {
        v.as_deref()
            // dockerd reads `until=0` as no limit.
            .filter(|v| name == "since" || *v != "0")
            .map(|v| {
                parse_timestamp(v, now).map_err(|e| anyhow!("invalid value for \"{name}\": {e}"))
            })
            .transpose()
    };
    let opts = LogsOptions {
        follow: args.follow,
        tail: parse_tail(&args.tail),
        since: time("since", &args.since)?,
        until: time("until", &args.until)?,
        timestamps: args.timestamps,
        details: args.details,
    };
    let mut engine = ctx.engine()?;
    engine.containers().logs(
        &args.container,
        &opts,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_as_dockerd_reads_it() {
        assert_eq!(parse_tail("all"), None);
        assert_eq!(parse_tail("10"), Some(10));
        assert_eq!(parse_tail("+3"), Some(3));
        assert_eq!(parse_tail("0"), Some(0));
        assert_eq!(parse_tail("-1"), None);
        assert_eq!(parse_tail("ten"), None);
    }

    #[derive(clap::Parser)]
    struct Cmd {
        #[command(flatten)]
        logs: LogsArgs,
    }

    #[test]
    fn values_may_start_with_a_dash_as_in_docker() {
        use clap::Parser;
        let c = Cmd::try_parse_from(["logs", "--since", "-1h", "-n", "-1", "-ft", "box"]).unwrap();
        assert_eq!(c.logs.since.as_deref(), Some("-1h"));
        assert_eq!(c.logs.tail, "-1");
        assert!(c.logs.follow && c.logs.timestamps);
        assert_eq!(c.logs.container, "box");
        let c = Cmd::try_parse_from(["logs", "box"]).unwrap();
        assert_eq!(c.logs.tail, "all");
    }
}
