use crate::Context;
use clap::Args;
use coracle_engine::RemoveEvent;

#[derive(Args)]
pub struct RmiArgs {
    /// Images to remove, by name or id
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Force removal of an image tagged in several repositories
    #[arg(short, long)]
    pub force: bool,
    /// Accepted for docker compatibility: coracle keeps no untagged parents
    #[arg(long)]
    pub no_prune: bool,
}

/// Like docker: remove what can be removed, report each failure, exit 1 if any failed.
pub fn exec(ctx: &Context, args: RmiArgs) -> anyhow::Result<i32> {
    let mut engine = ctx.engine()?;
    let mut failed = false;
    for image in &args.images {
        match engine.images().remove_image(image, args.force) {
            Ok(events) => print_events(&events),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub fn print_events(events: &[RemoveEvent]) {
    for e in events {
        match e {
            RemoveEvent::Untagged(name) => println!("Untagged: {name}"),
            RemoveEvent::Deleted(id) => println!("Deleted: {id}"),
        }
    }
}
