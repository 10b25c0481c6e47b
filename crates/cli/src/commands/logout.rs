use crate::Context;
use clap::Args;

#[derive(Args)]
pub struct LogoutArgs {
    /// Registry host[:port] (default: docker.io)
    pub server: Option<String>,
}

pub fn exec(_ctx: &Context, args: LogoutArgs) -> anyhow::Result<i32> {
    let server = args.server.unwrap_or_else(|| "docker.io".into());
    coracle_engine::logout(&server)?;
    println!("Removing login credentials for {server}");
    Ok(0)
}
