use crate::Context;
use anyhow::Context as _;
use clap::Args;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(Args)]
pub struct SaveArgs {
    /// Images to save, by name or id
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to a file instead of standard output
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn exec(ctx: &Context, args: SaveArgs) -> anyhow::Result<i32> {
    let mut engine = ctx.engine()?;
    match &args.output {
        Some(path) => {
            // Written beside the target and renamed, so a failed save leaves no
            // half archive under the name the user asked for.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("create {}", path.display()))?;
            engine
                .images()
                .save_images(&args.images, tmp.as_file_mut())?;
            tmp.as_file_mut().flush()?;
            tmp.persist(path)
                .with_context(|| format!("write {}", path.display()))?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                return Err(crate::commands::UsageError(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
                )
                .into());
            }
            let mut out = std::io::stdout().lock();
            engine.images().save_images(&args.images, &mut out)?;
            out.flush()?;
        }
    }
    Ok(0)
}
