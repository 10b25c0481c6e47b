use crate::Context;
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct LoadArgs {
    /// Read from a tar archive file (docker-archive, oci-archive) or an OCI layout
    /// directory, instead of standard input
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the progress output (the `Loaded image:` lines are still printed)
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn exec(ctx: &Context, args: LoadArgs) -> anyhow::Result<i32> {
    let mut engine = ctx.engine()?;
    let loaded = match &args.input {
        Some(path) => engine.images().load_images(path)?,
        None => {
            // The archive has to be seekable to read its index first; spool stdin.
            let mut tmp = tempfile::NamedTempFile::new_in(engine.paths().tmp())?;
            std::io::copy(&mut std::io::stdin().lock(), tmp.as_file_mut())?;
            engine.images().load_images(tmp.path())?
        }
    };
    // docker's -q suppresses only the progress bars: scripts read these lines.
    let _ = args.quiet;
    for name in loaded {
        println!("{name}");
    }
    Ok(0)
}
