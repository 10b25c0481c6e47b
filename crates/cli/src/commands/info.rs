//! `info`: docker's `docker info` — a Client and a Server section (one binary here:
//! both are coracle), or `--format` over docker's field names plus `ClientInfo`.

use crate::Context;
use clap::Args;
use coracle_engine::SystemInfo;
use serde_json::{json, Value};
use std::fmt::Write;

#[derive(Args)]
pub struct InfoArgs {
    /// Format output using a Go template, or 'json'
    #[arg(short, long)]
    pub format: Option<String>,
}

pub fn exec(ctx: &Context, args: InfoArgs) -> anyhow::Result<i32> {
    let format = args.format.as_deref().filter(|f| !f.is_empty());
    let template = match crate::commands::inspect::format_template(format) {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };
    let info = ctx.engine()?.system().info()?;
    let mut value = serde_json::to_value(&info)?;
    value["ClientInfo"] = client_info();
    match (format, template) {
        (Some("json"), _) => println!("{}", serde_json::to_string(&value)?),
        (_, Some(t)) => println!("{}", t.render(&value)?),
        _ => print!("{}", human(&info)),
    }
    Ok(0)
}

fn client_info() -> Value {
    json!({
        "Debug": false,
        "Version": env!("CARGO_PKG_VERSION"),
        "Context": "default",
        "Plugins": [],
        "Warnings": null,
    })
}

/// docker's layout, line for line where coracle has the fact.
fn human(i: &SystemInfo) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "Client:");
    let _ = writeln!(o, " Version:    {}", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(o, " Context:    default");
    let _ = writeln!(o, " Debug Mode: false");
    let _ = writeln!(o);
    let _ = writeln!(o, "Server:");
    let _ = writeln!(o, " Containers: {}", i.containers);
    let _ = writeln!(o, "  Running: {}", i.containers_running);
    let _ = writeln!(o, "  Paused: {}", i.containers_paused);
    let _ = writeln!(o, "  Stopped: {}", i.containers_stopped);
    let _ = writeln!(o, " Images: {}", i.images);
    let _ = writeln!(o, " Server Version: {}", i.server_version);
    let _ = writeln!(o, " Storage Driver: {}", i.driver);
    for [k, v] in &i.driver_status {
        let _ = writeln!(o, "  {k}: {v}");
    }
    let _ = writeln!(o, " Logging Driver: {}", i.logging_driver);
    let _ = writeln!(o, " Cgroup Driver: {}", i.cgroup_driver);
    let _ = writeln!(o, " Cgroup Version: {}", i.cgroup_version);
    let runtimes: Vec<&str> = i.runtimes.keys().map(String::as_str).collect();
    let _ = writeln!(o, " Runtimes: {}", runtimes.join(" "));
    let _ = writeln!(o, " Default Runtime: {}", i.default_runtime);
    o.push_str(&security_section(&i.security_options));
    let _ = writeln!(o, " Kernel Version: {}", i.kernel_version);
    let _ = writeln!(o, " Operating System: {}", i.operating_system);
    let _ = writeln!(o, " OSType: {}", i.os_type);
    let _ = writeln!(o, " Architecture: {}", i.architecture);
    let _ = writeln!(o, " CPUs: {}", i.ncpu);
    let _ = writeln!(o, " Total Memory: {}", bytes_size(i.mem_total));
    let _ = writeln!(o, " Name: {}", i.name);
    let _ = writeln!(o, " Root Dir: {}", i.docker_root_dir);
    o
}

/// docker prints `name=seccomp,profile=builtin` as `seccomp` then `Profile: builtin`.
/// Where the host has neither AppArmor nor SELinux, says so (docker lists nothing).
fn security_section(options: &[String]) -> String {
    let mut o = String::from(" Security Options:\n");
    let mut lsm = false;
    for opt in options {
        let mut name = "";
        let mut rest = Vec::new();
        for kv in opt.split(',') {
            match kv.split_once('=') {
                Some(("name", n)) => name = n,
                Some((k, v)) => rest.push((k, v)),
                None => {}
            }
        }
        lsm |= matches!(name, "apparmor" | "selinux");
        let _ = writeln!(o, "  {name}");
        for (k, v) in rest {
            let mut k = k.to_string();
            if let Some(first) = k.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            let _ = writeln!(o, "   {k}: {v}");
        }
    }
    if !lsm {
        o.push_str("  (no AppArmor or SELinux: neither is enabled on this host)\n");
    }
    o
}

/// go-units `BytesSize`: binary units, 4 significant digits (`%.4g`).
fn bytes_size(n: u64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    let int_digits = if v < 1.0 {
        1
    } else {
        v.log10().floor() as usize + 1
    };
    let decimals = 4usize.saturating_sub(int_digits);
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_go_units() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(1023), "1023B");
        assert_eq!(bytes_size(2048), "2KiB");
        assert_eq!(bytes_size(4_125_147_136), "3.842GiB");
        assert_eq!(bytes_size(16 * 1024 * 1024 * 1024), "16GiB");
    }

    #[test]
    fn security_section_like_docker() {
        let s = security_section(&[
            "name=seccomp,profile=builtin".into(),
            "name=cgroupns".into(),
        ]);
        assert_eq!(
            s,
            " Security Options:\n  seccomp\n   Profile: builtin\n  cgroupns\n  (no AppArmor or SELinux: neither is enabled on this host)\n"
        );
        let s = security_section(&[
            "name=apparmor".into(),
            "name=seccomp,profile=builtin".into(),
        ]);
        assert_eq!(
            s,
            " Security Options:\n  apparmor\n  seccomp\n   Profile: builtin\n"
        );
    }
}
