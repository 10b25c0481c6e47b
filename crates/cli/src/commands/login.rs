use crate::commands::UsageError;
use crate::Context;
use clap::Args;
use std::io::{BufRead, IsTerminal, Write};

#[derive(Args)]
pub struct LoginArgs {
    /// Registry host[:port] (default: docker.io)
    pub server: Option<String>,
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin: this one shows in the process list)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub tls: super::TlsArgs,
}

pub fn exec(_ctx: &Context, args: LoginArgs) -> anyhow::Result<i32> {
    if args.password.is_some() && args.password_stdin {
        return Err(
            UsageError("--password and --password-stdin are mutually exclusive".into()).into(),
        );
    }
    let server = args.server.clone().unwrap_or_else(|| "docker.io".into());
    let username = match args.username {
        Some(u) => u,
        None if args.password_stdin => {
            return Err(UsageError("Must provide --username with --password-stdin".into()).into())
        }
        None => prompt("Username: ")?,
    };
    let password = match (args.password, args.password_stdin) {
        (Some(p), _) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p
        }
        (None, true) => {
            let mut p = String::new();
            std::io::stdin().lock().read_line(&mut p)?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => prompt_password("Password: ")?,
    };
    if password.is_empty() {
        return Err(UsageError("password is required".into()).into());
    }
    coracle_engine::login(&server, &username, &password, args.tls.tls_verify)?;
    println!("Login Succeeded");
    Ok(0)
}

fn prompt(label: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "cannot ask for {} without a terminal; pass --username and --password-stdin",
            label.trim_end_matches([':', ' ']).to_lowercase()
        ))
        .into());
    }
    eprint!("{label}");
    std::io::stderr().flush()?;
    let mut s = String::new();
    std::io::stdin().lock().read_line(&mut s)?;
    Ok(s.trim().to_string())
}

/// Read a password with echo off.
fn prompt_password(label: &str) -> anyhow::Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return prompt(label);
    }
    let saved = tcgetattr(&stdin)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
    eprint!("{label}");
    std::io::stderr().flush()?;
    let mut s = String::new();
    let read = stdin.lock().read_line(&mut s);
    tcsetattr(&stdin, OptionalActions::Now, &saved)?;
    eprintln!();
    read?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}
