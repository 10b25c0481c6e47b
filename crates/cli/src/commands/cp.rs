use crate::format::human_size;
use crate::Context;
use clap::Args;
use coracle_engine::{CopyIn, CopyOptions, CopyOut, CopyReport};
use std::io::{IsTerminal, Write};

#[derive(Args)]
#[command(
    override_usage = "coracle cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       coracle cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
    after_help = "Use '-' as the source to read a tar archive from stdin and extract it to a \
                  directory destination in a container.\nUse '-' as the destination to stream \
                  a tar archive of a container source to stdout."
)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symlinks in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output during copy. Progress output is automatically
    /// suppressed if no terminal is attached
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(value_name = "SRC", allow_hyphen_values = true)]
    pub source: String,
    #[arg(value_name = "DEST", allow_hyphen_values = true)]
    pub destination: String,
}

/// docker's `splitCpArg`: `CONTAINER:PATH`, unless the argument is an absolute path or
/// starts with `.` (a local path with a colon in it, e.g. `./file:name.txt`).
fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, path)) if !c.starts_with('.') => ((!c.is_empty()).then_some(c), path),
        _ => (None, arg),
    }
}

/// docker's `copySummary`: the content's size, and what was transferred when that
/// differs.
fn summary(reported: u64, transferred: u64, dest: &str) -> String {
    if reported != transferred {
        format!(
            "Successfully copied {} (transferred {}) to {dest}",
            human_size(reported),
            human_size(transferred)
        )
    } else {
        format!("Successfully copied {} to {dest}", human_size(reported))
    }
}

pub fn exec(ctx: &Context, args: CpArgs) -> anyhow::Result<i32> {
    if args.source.is_empty() {
        anyhow::bail!("source can not be empty");
    }
    if args.destination.is_empty() {
        anyhow::bail!("destination can not be empty");
    }
    // docker shows its progress on stderr only when stdout is a terminal.
    let quiet = args.quiet || !std::io::stdout().is_terminal();
    let opts = CopyOptions {
        follow_link: args.follow_link,
        archive: args.archive,
    };
    let (src_container, src) = split_cp_arg(&args.source);
    let (dst_container, dst) = split_cp_arg(&args.destination);
    let mut engine = ctx.engine()?;
    match (src_container, dst_container) {
        (Some(c), None) => {
            if dst == "-" {
                let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
                engine
                    .containers()
                    .copy_from_container(c, src, CopyOut::Stream(&mut out), opts)?;
                out.flush()?;
                return Ok(0);
            }
            let r = engine
                .containers()
                .copy_from_container(c, src, CopyOut::Host(dst), opts)?;
            if !quiet {
                let reported = if r.source_is_dir {
                    r.archive_bytes
                } else {
                    r.content_bytes
                };
                eprintln!("{}", summary(reported, r.archive_bytes, &r.destination));
            }
        }
        (None, Some(c)) => {
            let r: CopyReport = if src == "-" {
                let mut input = std::io::stdin();
                engine
                    .containers()
                    .copy_to_container(c, CopyIn::Stream(&mut input), dst, opts)?
            } else {
                engine
                    .containers()
                    .copy_to_container(c, CopyIn::Host(src), dst, opts)?
            };
            if !quiet {
                let reported = if src == "-" {
                    r.archive_bytes
                } else {
                    r.content_bytes
                };
                eprintln!("{}", summary(reported, r.archive_bytes, &r.destination));
            }
        }
        (Some(_), Some(_)) => anyhow::bail!("copying between containers is not supported"),
        (None, None) => anyhow::bail!("must specify at least one container source"),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_argument_split() {
        assert_eq!(split_cp_arg("web:/etc/hosts"), (Some("web"), "/etc/hosts"));
        assert_eq!(split_cp_arg("web:rel"), (Some("web"), "rel"));
        assert_eq!(split_cp_arg("/abs:path"), (None, "/abs:path"));
        assert_eq!(split_cp_arg("./file:name.txt"), (None, "./file:name.txt"));
        assert_eq!(split_cp_arg("file.txt"), (None, "file.txt"));
        assert_eq!(split_cp_arg("-"), (None, "-"));
        // docker's quirk: an empty container name leaves the path after the colon.
        assert_eq!(split_cp_arg(":x"), (None, "x"));
    }

    #[test]
    fn docker_summary_line() {
        assert_eq!(
            summary(5, 2048, "/tmp/x"),
            "Successfully copied 5B (transferred 2.05kB) to /tmp/x"
        );
        assert_eq!(
            summary(3072, 3072, "c:/d"),
            "Successfully copied 3.07kB to c:/d"
        );
    }
}
