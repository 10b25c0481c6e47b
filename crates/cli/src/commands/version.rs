//! `version`: docker's `docker version` — a Client and a Server section (one binary
//! here: both are coracle), or `--format` over docker's field names (`.Client.Version`,
//! `.Server.Version`, `.Server.Components`, ...).

use crate::Context;
use clap::Args;
use serde_json::{json, Value};
use std::fmt::Write;

/// The Engine API version coracle's commands correspond to (docker 25's).
pub const API_VERSION: &str = "1.44";
/// The oldest API version docker 25 still serves.
const MIN_API_VERSION: &str = "1.24";

#[derive(Args)]
pub struct VersionArgs {
    /// Format output using a Go template, or 'json'
    #[arg(short, long)]
    pub format: Option<String>,
}

pub fn exec(ctx: &Context, args: VersionArgs) -> anyhow::Result<i32> {
    let format = args.format.as_deref().filter(|f| !f.is_empty());
    let template = match crate::commands::inspect::format_template(format) {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };
    let client = client();
    // As docker with no daemon: the client part still prints, the server's failure is
    // the error.
    let server = ctx.engine().and_then(|mut e| Ok(e.system().info()?));
    let value = json!({
        "Client": client,
        "Server": server.as_ref().ok().map(server_value),
    });
    match (format, template) {
        (Some("json"), _) => println!("{}", serde_json::to_string(&value)?),
        (_, Some(t)) => println!("{}", t.render(&value)?),
        _ => print!("{}", human(&value)),
    }
    server.map(|_| 0)
}

/// Go's GOARCH names, which docker prints in `OS/Arch`.
fn go_arch(machine: &str) -> &str {
    match machine {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "i686" | "i386" | "x86" => "386",
        "powerpc64" => "ppc64le",
        "arm" => "arm",
        other => other,
    }
}

fn client() -> Value {
    json!({
        "Platform": {"Name": "Coracle"},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION,
        "Os": std::env::consts::OS,
        "Arch": go_arch(std::env::consts::ARCH),
        "Context": "default",
    })
}

fn server_value(info: &coracle_engine::SystemInfo) -> Value {
    let arch = go_arch(&info.architecture);
    json!({
        "Platform": {"Name": "Coracle"},
        "Components": [{
            "Name": "Engine",
            "Version": info.server_version,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": info.os_type,
                "Arch": arch,
                "KernelVersion": info.kernel_version,
                "Experimental": "false",
            },
        }, {
            // The built-in runtime is youki's libcontainer, pinned at this version.
            "Name": info.default_runtime,
            "Version": "0.7.0",
            "Details": {"Path": "built-in (libcontainer)"},
        }],
        "Version": info.server_version,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "Os": info.os_type,
        "Arch": arch,
        "KernelVersion": info.kernel_version,
    })
}

/// docker's layout: `Client:` then `Server:` with one block per component.
fn human(v: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut o = String::new();
    let c = &v["Client"];
    let _ = writeln!(o, "Client: {}", s(&c["Platform"]["Name"]));
    let _ = writeln!(o, " Version:           {}", s(&c["Version"]));
    let _ = writeln!(o, " API version:       {}", s(&c["ApiVersion"]));
    let _ = writeln!(o, " OS/Arch:           {}/{}", s(&c["Os"]), s(&c["Arch"]));
    let _ = writeln!(o, " Context:           {}", s(&c["Context"]));
    let srv = &v["Server"];
    if srv.is_null() {
        return o;
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "Server: {}", s(&srv["Platform"]["Name"]));
    for comp in srv["Components"].as_array().into_iter().flatten() {
        let d = &comp["Details"];
        let _ = writeln!(o, " {}:", s(&comp["Name"]));
        let _ = writeln!(o, "  Version:          {}", s(&comp["Version"]));
        if comp["Name"] == "Engine" {
            let _ = writeln!(
                o,
                "  API version:      {} (minimum version {})",
                s(&d["ApiVersion"]),
                s(&d["MinAPIVersion"])
            );
            let _ = writeln!(o, "  OS/Arch:          {}/{}", s(&d["Os"]), s(&d["Arch"]));
            let _ = writeln!(o, "  Experimental:     {}", s(&d["Experimental"]));
        } else {
            let _ = writeln!(o, "  Path:             {}", s(&d["Path"]));
        }
    }
    o
}
