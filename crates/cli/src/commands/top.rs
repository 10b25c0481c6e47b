use crate::Context;
use clap::Args;

#[derive(Args)]
pub struct TopArgs {
    /// The container, by name or id
    pub container: String,
    /// Options for ps (default -ef)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ps OPTIONS"
    )]
    pub ps_options: Vec<String>,
}

/// `top CONTAINER [ps OPTIONS]`, printed as docker's CLI does: columns at least 20
/// wide, three spaces apart, the last one (the command) as it is.
pub fn exec(ctx: &Context, args: TopArgs) -> anyhow::Result<i32> {
    let mut engine = ctx.engine()?;
    let list = engine.containers().top(&args.container, &args.ps_options)?;
    let mut rows = vec![list.titles];
    rows.extend(list.processes);
    print!("{}", columns(&rows, 20, 3));
    Ok(0)
}

/// Go's tabwriter with `minwidth` and `padding`: every cell but a line's last is
/// padded to its column's width.
fn columns(rows: &[Vec<String>], minwidth: usize, padding: usize) -> String {
    let cols = rows
        .iter()
        .map(|r| r.len().saturating_sub(1))
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter(|r| c + 1 < r.len())
                .map(|r| r[c].chars().count() + padding)
                .max()
                .unwrap_or(0)
                .max(minwidth)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if c + 1 < row.len() {
                out.push_str(&" ".repeat(widths[c] - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_top_layout() {
        let rows = vec![
            vec!["UID".into(), "PID".into(), "CMD".into()],
            vec!["root".into(), "12345".into(), "sleep 1000".into()],
            vec!["a-very-long-user-name-x".into(), "7".into(), "sh".into()],
        ];
        assert_eq!(
            columns(&rows, 20, 3),
            format!(
                "UID{}PID{}CMD\nroot{}12345{}sleep 1000\na-very-long-user-name-x   7{}sh\n",
                " ".repeat(23),
                " ".repeat(17),
                " ".repeat(22),
                " ".repeat(15),
                " ".repeat(19),
            )
        );
    }
}
